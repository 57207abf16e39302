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
    for_each_line(reader, |line_no, line| {
        let mut map = parse_object(line_no, line, WHAT)?;
        pairs.push((
            string_field(&mut map, "query", line_no, WHAT)?,
            string_field(&mut map, "document", line_no, WHAT)?,
        ));
        Ok(())
    })?;
    Ok(pairs)
}

/// `rerank`'s input: objects with a string `"text"` (other fields pass
/// through), or with `lines`, one document's text per line. Each document
/// comes back as an object whose `"text"` is a string.
pub fn documents(reader: impl BufRead, lines: bool) -> Result<Vec<Map<String, Value>>> {
    const WHAT: &str = r#"{"text": string, ...any other fields}"#;
    let mut docs = Vec::new();
    for_each_line(reader, |line_no, line| {
        let doc = if lines {
            Map::from_iter([("text".to_string(), Value::String(line.to_string()))])
        } else {
            let map = parse_object(line_no, line, WHAT).map_err(|e| {
                anyhow::anyhow!("{e} (use --format lines for plain text, one document per line)")
            })?;
            check_string(&map, "text", line_no, WHAT)?;
            map
        };
        docs.push(doc);
        Ok(())
    })?;
    Ok(docs)
}

/// `embed`'s input: `{"text": ...}` per line.
pub fn texts(reader: impl BufRead) -> Result<Vec<String>> {
    const WHAT: &str = r#"{"text": string}"#;
    let mut texts = Vec::new();
    for_each_line(reader, |line_no, line| {
        let mut map = parse_object(line_no, line, WHAT)?;
        texts.push(string_field(&mut map, "text", line_no, WHAT)?);
        Ok(())
    })?;
    Ok(texts)
}

/// Hands `f` each non-blank line of the input with its 1-based line number,
/// checked as UTF-8, one at a time: only what `f` keeps of a line outlives it
/// (a whole input's raw lines, held until the last was read, stayed resident
/// as a hole in the heap through the run: ~1.3 MB for 1,000 pairs).
fn for_each_line(
    mut reader: impl BufRead,
    mut f: impl FnMut(usize, &str) -> Result<()>,
) -> Result<()> {
    let mut bytes = Vec::new();
    let mut line_no = 0;
    loop {
        line_no += 1;
        bytes.clear();
        if reader
            .read_until(b'\n', &mut bytes)
            .context("cannot read the input")?
            == 0
        {
            return Ok(());
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| anyhow::anyhow!("line {line_no}: not valid UTF-8 ({e})"))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        // A byte-order mark some editors write at the start of a file.
        let text = if line_no == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if !text.trim().is_empty() {
            f(line_no, text)?;
        }
    }
}

fn parse_object(line_no: usize, line: &str, what: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("line {line_no}: expected a JSON object {what}"),
        Err(e) => bail!("line {line_no}: malformed JSON ({e}); expected {what}"),
    }
}

/// Takes the string `key` out of `map`.
fn string_field(
    map: &mut Map<String, Value>,
    key: &str,
    line_no: usize,
    what: &str,
) -> Result<String> {
    check_string(map, key, line_no, what)?;
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => unreachable!("checked above"),
    }
}

/// Fails unless `map` has a string `key`.
fn check_string(map: &Map<String, Value>, key: &str, line_no: usize, what: &str) -> Result<()> {
    match map.get(key) {
        Some(Value::String(_)) => Ok(()),
        Some(_) => bail!("line {line_no}: `{key}` must be a string; expected {what}"),
        None => bail!("line {line_no}: missing `{key}`; expected {what}"),
    }
}
