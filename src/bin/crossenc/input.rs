//! The CLI's JSON Lines readers: input bytes -> pairs, documents or texts,
//! with errors that name the line. Also compiled into the `jsonl` fuzz target
//! (fuzz/fuzz_targets/jsonl.rs), so it depends on std, anyhow and serde_json only.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// `score`'s input: `{"query": ..., "document": ...}` per line.
pub fn pairs(reader: impl BufRead) -> Result<Vec<(String, String)>> {
    const WHAT: &str = r#"{"query": string, "document": string}"#;
    let mut pairs = Vec::new();
    for (line_no, line) in read_lines(reader)? {
        let map = parse_object(line_no, &line, WHAT)?;
        pairs.push((
            string_field(&map, "query", line_no, WHAT)?,
            string_field(&map, "document", line_no, WHAT)?,
        ));
    }
    Ok(pairs)
}

/// `rerank`'s input: objects with a string `"text"` (other fields pass
/// through), or with `lines`, one document's text per line. Each document
/// comes back as an object whose `"text"` is a string.
pub fn documents(reader: impl BufRead, lines: bool) -> Result<Vec<Map<String, Value>>> {
    const WHAT: &str = r#"{"text": string, ...any other fields}"#;
    let mut docs = Vec::new();
    for (line_no, line) in read_lines(reader)? {
        let doc = if lines {
            Map::from_iter([("text".to_string(), Value::String(line))])
        } else {
            let map = parse_object(line_no, &line, WHAT).map_err(|e| {
                anyhow::anyhow!("{e} (use --format lines for plain text, one document per line)")
            })?;
            string_field(&map, "text", line_no, WHAT)?;
            map
        };
        docs.push(doc);
    }
    Ok(docs)
}

/// `embed`'s input: `{"text": ...}` per line.
pub fn texts(reader: impl BufRead) -> Result<Vec<String>> {
    const WHAT: &str = r#"{"text": string}"#;
    let mut texts = Vec::new();
    for (line_no, line) in read_lines(reader)? {
        let map = parse_object(line_no, &line, WHAT)?;
        texts.push(string_field(&map, "text", line_no, WHAT)?);
    }
    Ok(texts)
}

/// The input's non-blank lines with their 1-based line numbers, checked as UTF-8.
fn read_lines(reader: impl BufRead) -> Result<Vec<(usize, String)>> {
    let mut lines = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = line.context("cannot read the input")?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("line {line_no}: not valid UTF-8 ({e})"))?;
        let text = text.strip_suffix('\r').unwrap_or(&text);
        // A byte-order mark some editors write at the start of a file.
        let text = if line_no == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        }
        .to_string();
        if !text.trim().is_empty() {
            lines.push((line_no, text));
        }
    }
    Ok(lines)
}

fn parse_object(line_no: usize, line: &str, what: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("line {line_no}: expected a JSON object {what}"),
        Err(e) => bail!("line {line_no}: malformed JSON ({e}); expected {what}"),
    }
}

fn string_field(map: &Map<String, Value>, key: &str, line_no: usize, what: &str) -> Result<String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => bail!("line {line_no}: `{key}` must be a string; expected {what}"),
        None => bail!("line {line_no}: missing `{key}`; expected {what}"),
    }
}
