//! The `crossenc` command line: its JSON contract, and its errors.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{fixture_dir, reference};
use serde_json::Value;

fn crossenc(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crossenc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn score_matches_sentence_transformers() {
    let r = reference("bert-l2-h32");
    let input: String = r
        .pairs
        .iter()
        .map(|p| serde_json::json!({"query": p.query, "document": p.document}).to_string() + "\n")
        .collect();
    let dir = fixture_dir("bert-l2-h32");
    let lines = json_lines(&crossenc(
        &[
            "score",
            "--model",
            dir.to_str().unwrap(),
            "--batch-size",
            "5",
        ],
        input.as_bytes(),
    ));
    assert_eq!(lines.len(), r.pairs.len());
    for (line, p) in lines.iter().zip(&r.pairs) {
        assert!((line["score"].as_f64().unwrap() as f32 - p.scores[0]).abs() <= 1e-4);
        assert!((line["logits"][0].as_f64().unwrap() as f32 - p.logits[0]).abs() <= 1e-4);
        assert_eq!(line["truncated"].as_bool().unwrap(), p.truncated);
    }
}

#[test]
fn score_options_and_input_file() {
    let dir = fixture_dir("bert-l2-h32");
    let path = std::env::temp_dir().join(format!("crossenc-cli-{}.jsonl", std::process::id()));
    std::fs::write(&path, "{\"query\": \"a\", \"document\": \"b\"}\r\n\n{\"query\": \"c\", \"document\": \"d d d d d d\"}\n").unwrap();
    let args = [
        "score",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        path.to_str().unwrap(),
        "--activation",
        "identity",
        "--max-length",
        "6",
        "--truncation",
        "only-second",
        "--threads",
        "1",
    ];
    let lines = json_lines(&crossenc(&args, b""));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(lines.len(), 2, "blank lines are skipped");
    assert_eq!(
        lines[0]["score"], lines[0]["logits"][0],
        "identity: score is the logit"
    );
    assert_eq!(lines[1]["truncated"], true);
}

#[test]
fn score_multi_label_names_the_label() {
    let dir = fixture_dir("bert-3labels");
    let lines = json_lines(&crossenc(
        &["score", "--model", dir.to_str().unwrap()],
        b"{\"query\": \"a\", \"document\": \"b\"}\n",
    ));
    let labels = ["contradiction", "entailment", "neutral"];
    let scores: Vec<f64> = lines[0]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let logits: Vec<f64> = lines[0]["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 3);
    // auto = softmax for an NLI model that names no activation: probabilities.
    assert!(
        (scores.iter().sum::<f64>() - 1.0).abs() < 1e-5,
        "{scores:?}"
    );
    let best = (0..3)
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    assert_eq!(lines[0]["label"], labels[best]);
    assert_eq!(lines[0]["score"].as_f64().unwrap(), scores[best]);
}

#[test]
fn rerank_sorts_and_filters() {
    let dir = fixture_dir("bert-l2-h32");
    let docs = "{\"text\": \"Paris is in France\", \"id\": \"p\"}\n{\"text\": \"Rome\", \"id\": 7}\n{\"text\": \"Berlin\"}\n";
    let model = dir.to_str().unwrap();
    let all = json_lines(&crossenc(
        &["rerank", "--model", model, "--query", "capital of France"],
        docs.as_bytes(),
    ));
    assert_eq!(all.len(), 3);
    for w in all.windows(2) {
        assert!(w[0]["score"].as_f64() >= w[1]["score"].as_f64());
    }
    for line in &all {
        let expected_id = match line["index"].as_u64().unwrap() {
            0 => serde_json::json!("p"),
            1 => serde_json::json!(7),
            _ => Value::Null,
        };
        assert_eq!(line["id"], expected_id);
        assert!(line["text"].is_string());
    }
    let top = json_lines(&crossenc(
        &[
            "rerank",
            "--model",
            model,
            "--query",
            "capital of France",
            "--top-k",
            "1",
        ],
        docs.as_bytes(),
    ));
    assert_eq!(top, all[..1]);
    let cut = all[1]["score"].as_f64().unwrap().to_string();
    let above = json_lines(&crossenc(
        &[
            "rerank",
            "--model",
            model,
            "--query",
            "capital of France",
            "--threshold",
            &cut,
        ],
        docs.as_bytes(),
    ));
    assert_eq!(above, all[..2]);
    let plain = json_lines(&crossenc(
        &[
            "rerank",
            "--model",
            model,
            "--query",
            "capital of France",
            "--format",
            "lines",
        ],
        b"Paris is in France\nRome\nBerlin\n",
    ));
    let scores = |v: &[Value]| {
        v.iter()
            .map(|l| (l["index"].clone(), l["score"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&plain), scores(&all));
}

#[test]
fn malformed_input_is_reported_with_its_line_number() {
    let dir = fixture_dir("bert-l2-h32");
    let model = dir.to_str().unwrap();
    let cases: [(&[&str], &[u8], &str); 6] = [
        (
            &["score"],
            b"{\"query\": \"a\", \"document\": \"b\"}\n{\"query\": \"a\",\n",
            "line 2",
        ),
        (
            &["score"],
            b"{\"query\": \"a\", \"document\": 3}\n",
            "line 1",
        ),
        (
            &["score"],
            b"{\"query\": \"a\", \"document\": \"b\"}\n\n[1]\n",
            "line 3",
        ),
        (
            &["score"],
            b"{\"query\": \"a\", \"document\": \"b\xff\"}\n",
            "line 1: not valid UTF-8",
        ),
        (
            &["rerank", "--query", "q"],
            b"plain text\n",
            "--format lines",
        ),
        (&["score"], b"", "no input pairs"),
    ];
    for (args, input, expected) in cases {
        let mut full = args.to_vec();
        full.extend(["--model", model]);
        let out = crossenc(&full, input);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "nothing is written on failure");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn model_errors_exit_non_zero_with_a_message() {
    let out = crossenc(
        &["score", "--model", "/nonexistent"],
        b"{\"query\": \"a\", \"document\": \"b\"}\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let dir = fixture_dir("bert-3labels");
    let out = crossenc(
        &["rerank", "--model", dir.to_str().unwrap(), "--query", "q"],
        b"{\"text\": \"t\"}\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("3 labels"), "{}", stderr(&out));
}

#[test]
fn unknown_isa_is_a_clear_error() {
    let dir = fixture_dir("bert-l2-h32");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crossenc"))
        .args(["score", "--model", dir.to_str().unwrap()])
        .env("CROSSENC_ISA", "sse9")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"query\": \"a\", \"document\": \"b\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sse9"), "{}", stderr(&out));
}

#[test]
fn embed_writes_one_vector_per_text() {
    let dir = fixture_dir("st-mean");
    let out = crossenc(
        &["embed", "--model", dir.to_str().unwrap()],
        b"{\"text\": \"a\"}\n\n{\"text\": \"\"}\n",
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let v: Vec<f64> = line["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(v.len(), 32);
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "st-mean normalises: {norm}");
    }
    let bad = crossenc(
        &["embed", "--model", dir.to_str().unwrap()],
        b"{\"txt\": \"a\"}\n",
    );
    assert!(!bad.status.success() && stderr(&bad).contains("line 1"));
}
