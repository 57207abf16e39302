//! The `crossenc` command line: its JSON contract, and its errors.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::{fixture_dir, reference};
use serde_json::Value;

fn crossenc(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = common::crossenc_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A process that refuses its arguments exits without reading stdin.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
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
    let cases: [(&[&str], &[u8], &str); 5] = [
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
    let mut child = common::crossenc_command()
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
    assert_eq!(
        stderr(&out).matches("unknown instruction set").count(),
        1,
        "said once: {}",
        stderr(&out)
    );
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

#[test]
fn rerank_passes_every_input_field_through() {
    let dir = fixture_dir("bert-l2-h32");
    let docs = concat!(
        r#"{"id": "7", "text": "Paris is the capital of France", "score": 0.78, "url": "https://a.example/p", "meta": {"lang": "en", "tags": [1, 2]}}"#,
        "\n",
        r#"{"id": 8, "text": "Berlin is in Germany", "score": 0.91}"#,
        "\n",
        r#"{"text": "a document with no score", "index": "mine"}"#,
        "\n",
    );
    let lines = json_lines(&crossenc(
        &[
            "rerank",
            "--model",
            dir.to_str().unwrap(),
            "--query",
            "capital of France",
        ],
        docs.as_bytes(),
    ));
    assert_eq!(lines.len(), 3);
    let inputs: Vec<Value> = docs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let model = crossenc::CrossEncoder::from_dir(&dir).unwrap();
    for line in &lines {
        // Which input this is: by its text, which must come back unchanged.
        let (i, input) = inputs
            .iter()
            .enumerate()
            .find(|(_, d)| d["text"] == line["text"])
            .unwrap();
        for (key, value) in input.as_object().unwrap() {
            match key.as_str() {
                "score" => assert_eq!(&line["original_score"], value, "input {i}"),
                _ => assert_eq!(&line[key], value, "input {i}: field {key}"),
            }
        }
        if input.get("score").is_none() {
            assert!(line.get("original_score").is_none(), "input {i}");
        }
        let want = model
            .predict(&[("capital of France", input["text"].as_str().unwrap())])
            .unwrap()[0];
        assert_eq!(
            line["score"].as_f64().unwrap() as f32,
            want,
            "input {i}: new score"
        );
        let index = if i == 2 {
            Value::from("mine")
        } else {
            Value::from(i)
        };
        assert_eq!(line["index"], index, "an input's own index is kept");
    }
}

#[test]
fn rerank_fallback_keeps_the_input_order_when_the_model_fails() {
    let docs = concat!(
        r#"{"id": "a", "text": "first", "score": 0.2}"#,
        "\n",
        r#"{"id": "b", "text": "second", "score": 0.9, "url": "u"}"#,
        "\n",
        r#"{"id": "c", "text": "third"}"#,
        "\n",
    );
    let missing = std::env::temp_dir().join("crossenc-no-such-model");
    let multi = fixture_dir("bert-3labels");
    // A model that cannot be loaded, and one that cannot rerank (3 labels).
    for model in [missing.to_str().unwrap(), multi.to_str().unwrap()] {
        let args = ["rerank", "--model", model, "--query", "q", "--fallback"];
        let out = crossenc(&args, docs.as_bytes());
        let lines = json_lines(&out);
        let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"], "{model}: input order");
        assert_eq!(lines[0]["score"], 0.2);
        assert_eq!(lines[0]["original_score"], 0.2);
        assert_eq!(lines[1]["score"], 0.9);
        assert_eq!(lines[1]["url"], "u");
        assert_eq!(lines[2]["score"], Value::Null);
        assert!(
            stderr(&out).contains("--fallback"),
            "{model}: the reason goes to stderr: {}",
            stderr(&out)
        );
        // --top-k still holds.
        let top = json_lines(&crossenc(
            &[&args[..], &["--top-k", "2"]].concat(),
            docs.as_bytes(),
        ));
        assert_eq!(top, lines[..2]);
        // Without the flag, the error stays an error.
        let err = crossenc(&args[..5], docs.as_bytes());
        assert!(!err.status.success(), "{model}: no --fallback, no rescue");
        assert!(err.stdout.is_empty());
    }
    // Malformed input is not the model failing: still an error.
    let bad = crossenc(
        &["rerank", "--model", "x", "--query", "q", "--fallback"],
        b"{not json\n",
    );
    assert!(!bad.status.success() && stderr(&bad).contains("line 1"));
}

#[test]
fn long_docs_in_score_and_rerank() {
    let dir = fixture_dir("bert-l2-h32");
    let model = dir.to_str().unwrap();
    let long = "paris is the capital of france and its largest city ".repeat(6);
    let pair = serde_json::json!({"query": "a question about paris", "document": long});
    let input = format!(
        "{pair}\n{}\n",
        serde_json::json!({"query": "q", "document": "short"})
    );
    let base = ["score", "--model", model, "--max-length", "32"];
    let first = json_lines(&crossenc(&base, input.as_bytes()));
    assert!(first[0].get("windows").is_none());
    assert_eq!(first[0]["truncated"], true);
    let lib = crossenc::CrossEncoder::builder()
        .max_length(32)
        .long_docs(crossenc::LongDocs::Max)
        .window_stride(5)
        .build(&dir)
        .unwrap();
    let want = lib
        .predict_all(&[("a question about paris", long.as_str())])
        .unwrap();
    let max = json_lines(&crossenc(
        &[&base[..], &["--long-docs", "max", "--window-stride", "5"]].concat(),
        input.as_bytes(),
    ));
    assert_eq!(max.len(), 2, "one line per input pair");
    assert_eq!(max[0]["windows"], want[0].windows);
    assert!(want[0].windows > 1);
    assert_eq!(
        max[0]["logits"][0].as_f64().unwrap() as f32,
        want[0].logits[0]
    );
    assert!(
        max[1].get("windows").is_none(),
        "a pair that fits has no windows field"
    );
    assert_eq!(max[1], first[1], "a pair that fits scores as before");
    let docs = format!("{}\n", serde_json::json!({"text": long}));
    let ranked = json_lines(&crossenc(
        &[
            "rerank",
            "--model",
            model,
            "--max-length",
            "32",
            "--query",
            "a question about paris",
            "--long-docs",
            "max",
            "--window-stride",
            "5",
        ],
        docs.as_bytes(),
    ));
    assert_eq!(ranked[0]["windows"], want[0].windows);
    assert_eq!(
        ranked[0]["score"].as_f64().unwrap() as f32,
        want[0].scores[0]
    );
}

#[test]
fn cli_behaves_in_pipelines() {
    let dir = fixture_dir("bert-l2-h32");
    let model = dir.to_str().unwrap();
    // Empty input: nothing to do, nothing written, success (for every command).
    for args in [
        &["score", "--model", model][..],
        &["rerank", "--model", model, "--query", "q"],
        &["embed", "--model", fixture_dir("st-mean").to_str().unwrap()],
    ] {
        let out = crossenc(args, b"\n\n");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A byte-order mark before the first line is not malformed JSON.
    let bom = b"\xef\xbb\xbf{\"query\": \"q\", \"document\": \"d\"}\n";
    assert_eq!(
        json_lines(&crossenc(&["score", "--model", model], bom)).len(),
        1
    );
    // Negative thresholds (raw logits) are values, not flags.
    let docs = b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n";
    let args = [
        "rerank",
        "--model",
        model,
        "--query",
        "q",
        "--activation",
        "identity",
    ];
    let all = json_lines(&crossenc(&args, docs));
    let low = json_lines(&crossenc(
        &[&args[..], &["--threshold", "-1000"]].concat(),
        docs,
    ));
    assert_eq!(low, all);
    // Values that would silently drop everything are refused.
    for bad in [&["--threshold", "nan"][..], &["--top-k", "0"]] {
        let out = crossenc(&[&args[..], bad].concat(), docs);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    use std::io::Read;
    // 2,000 pairs; the reader takes one line and goes away.
    let input: String = (0..2000)
        .map(|i| format!("{{\"query\": \"q{i}\", \"document\": \"document {i}\"}}\n"))
        .collect();
    let mut child = common::crossenc_command()
        .args([
            "score",
            "--model",
            fixture_dir("bert-l2-h32").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    writer.join().unwrap().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}, stderr: {err}");
    assert!(err.is_empty(), "stderr: {err}");
}

#[test]
fn messages_and_numbers_read_well() {
    // The hint follows the error it explains.
    let out = crossenc(
        &[
            "rerank",
            "--model",
            fixture_dir("bert-l2-h32").to_str().unwrap(),
            "--query",
            "q",
        ],
        b"plain text\n",
    );
    let err = stderr(&out);
    assert!(
        err.find("line 1").unwrap() < err.find("--format lines").unwrap(),
        "{err}"
    );
    // Embeddings are f32s: each number as the shortest decimal of its f32
    // (at most 9 significant digits), not an f64's 17.
    let out = crossenc(
        &["embed", "--model", fixture_dir("st-mean").to_str().unwrap()],
        b"{\"text\": \"a sentence\"}\n",
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let numbers = line
        .trim()
        .trim_start_matches("{\"embedding\":[")
        .trim_end_matches("]}")
        .split(',')
        .collect::<Vec<_>>();
    assert_eq!(numbers.len(), 32);
    for n in numbers {
        let mantissa = n.split(['e', 'E']).next().unwrap();
        let digits = mantissa
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        let significant = digits.trim_start_matches('0').len();
        assert!(significant <= 9, "{n} has {significant} significant digits");
        let x: f32 = n.parse().unwrap();
        assert_eq!(x.to_string().parse::<f32>().unwrap(), x);
    }
}

#[test]
fn model_paths_never_go_to_the_hub() {
    // A mistyped folder under an existing one, a relative ./ path, a file:
    // each gets a local message, and nothing is looked up on the network.
    let existing_parent = fixture_dir("no-such-model");
    let file = fixture_dir("bert-l2-h32").join("config.json");
    for (model, says) in [
        (existing_parent.to_str().unwrap(), "not found"),
        ("tests/data/fixtures/no-such-model", "not found"),
        ("./no-such-model", "not found"),
        (file.to_str().unwrap(), "is a file"),
    ] {
        let out = crossenc(
            &["score", "--model", model],
            b"{\"query\": \"q\", \"document\": \"d\"}\n",
        );
        let err = stderr(&out);
        assert!(!out.status.success(), "{model}");
        assert!(err.contains(says), "{model}: {err}");
        assert!(
            !err.to_lowercase().contains("hub"),
            "{model} went to the hub: {err}"
        );
    }
}

#[test]
fn rerank_no_text_leaves_the_documents_out() {
    let docs =
        b"{\"id\": 1, \"text\": \"Paris\", \"url\": \"u\"}\n{\"id\": 2, \"text\": \"Rome\"}\n";
    let model = fixture_dir("bert-l2-h32");
    let args = ["rerank", "--model", model.to_str().unwrap(), "--query", "q"];
    let with = json_lines(&crossenc(&args, docs));
    let without = json_lines(&crossenc(&[&args[..], &["--no-text"]].concat(), docs));
    assert_eq!(without.len(), 2);
    for (w, wo) in with.iter().zip(&without) {
        assert!(wo.get("text").is_none(), "{wo}");
        let mut w = w.clone();
        w.as_object_mut().unwrap().remove("text");
        assert_eq!(&w, wo, "everything else as before");
    }
}

#[test]
fn max_length_too_small_for_a_pair_is_refused() {
    // BERT's template adds [CLS] and two [SEP]: a pair with one token of
    // each text needs 5.
    let ce = fixture_dir("bert-l2-h32");
    let st = fixture_dir("st-mean");
    let pair = b"{\"query\": \"q\", \"document\": \"d\"}\n";
    let cases: [(&[&str], &[u8]); 3] = [
        (&["score", "--model", ce.to_str().unwrap()], pair),
        (
            &["rerank", "--model", ce.to_str().unwrap(), "--query", "q"],
            b"{\"text\": \"d\"}\n",
        ),
        (
            &["embed", "--model", st.to_str().unwrap()],
            b"{\"text\": \"t\"}\n",
        ),
    ];
    for (args, input) in cases {
        for n in ["1", "2", "3", "4"] {
            let out = crossenc(&[args, &["--max-length", n]].concat(), input);
            assert!(!out.status.success(), "{args:?} --max-length {n} accepted");
            let err = stderr(&out);
            assert!(
                err.contains("max_length") && err.contains("at least 5"),
                "{args:?} --max-length {n}: {err}"
            );
        }
        let out = crossenc(&[args, &["--max-length", "5"]].concat(), input);
        assert_eq!(json_lines(&out).len(), 1, "{args:?} --max-length 5");
    }
}

#[test]
fn truncated_whenever_a_token_is_cut() {
    let dir = fixture_dir("bert-l2-h32");
    let long = "word ".repeat(1000);
    let input = serde_json::json!({"query": "q", "document": long}).to_string()
        + "\n{\"query\": \"q\", \"document\": \"d\"}\n";
    for n in ["5", "6", "7", "64"] {
        let lines = json_lines(&crossenc(
            &["score", "--model", dir.to_str().unwrap(), "--max-length", n],
            input.as_bytes(),
        ));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["truncated"], true, "--max-length {n}");
        assert_eq!(lines[1]["truncated"], false, "--max-length {n}");
    }
}

#[test]
fn verbose_progress_goes_to_stderr_when_it_is_not_a_terminal() {
    let ce = fixture_dir("bert-l2-h32");
    let pairs: String = (0..40)
        .map(|i| format!("{{\"query\": \"q{i}\", \"document\": \"d {i}\"}}\n"))
        .collect();
    let texts: String = (0..40)
        .map(|i| format!("{{\"text\": \"t {i}\"}}\n"))
        .collect();
    let st = fixture_dir("st-mean");
    let cases = [
        (
            vec!["score", "--model", ce.to_str().unwrap()],
            &pairs,
            "pairs",
            40,
        ),
        (
            vec!["embed", "--model", st.to_str().unwrap()],
            &texts,
            "texts",
            40,
        ),
    ];
    for (args, input, unit, total) in cases {
        // Without -v, stderr stays empty.
        let args = [args.as_slice(), &["--batch-size", "4"]].concat();
        let quiet = crossenc(&args, input.as_bytes());
        assert_eq!(json_lines(&quiet).len(), total);
        assert_eq!(stderr(&quiet), "", "{unit}: progress without -v");
        let out = crossenc(&[args.as_slice(), &["-v"]].concat(), input.as_bytes());
        assert_eq!(json_lines(&out).len(), total);
        let err = stderr(&out);
        let progress: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(&format!("/{total} {unit}")))
            .collect();
        // Ten batches: a line at each tenth at least, the last at 100%.
        assert!(progress.len() >= 10, "{unit}: {err}");
        assert!(
            progress
                .last()
                .unwrap()
                .contains(&format!("{total}/{total} {unit} (100%)")),
            "{unit}: {err}"
        );
        assert!(
            !err.contains('\r'),
            "{unit}: a bar's carriage return in a log: {err:?}"
        );
    }
}

/// `bench gemm`: a row per BERT shape, each with its share of the peak as the
/// median of its paired rounds and their range; `--rounds 0` is refused.
#[test]
fn bench_gemm_pairs_each_shape_with_the_peak() {
    let out = crossenc(
        &[
            "bench",
            "gemm",
            "--threads",
            "1",
            "--rounds",
            "3",
            "--precision",
            "int8",
            "--json",
        ],
        b"",
    );
    let rows = json_lines(&out);
    let shapes: Vec<(u64, u64, u64)> = [64u64, 512, 2048]
        .into_iter()
        .flat_map(|m| [(384, 1152), (384, 384), (384, 1536), (1536, 384)].map(|(k, n)| (m, k, n)))
        .collect();
    assert_eq!(rows.len(), shapes.len(), "{rows:?}");
    for (row, (m, k, n)) in rows.iter().zip(shapes) {
        let int = |key: &str| row[key].as_u64().unwrap();
        let num = |key: &str| row[key].as_f64().unwrap();
        assert_eq!((int("m"), int("k"), int("n"), int("threads")), (m, k, n, 1));
        assert_eq!(row["precision"], "int8");
        for key in ["gflops", "peak_gflops", "pct_peak", "matrixmultiply_gflops"] {
            assert!(num(key).is_finite() && num(key) > 0.0, "{key}: {row}");
        }
        assert!(
            num("pct_peak_min") <= num("pct_peak") && num("pct_peak") <= num("pct_peak_max"),
            "{row}"
        );
        // The median round's share is its rate over the peak samples around
        // it: the cell's medians of each can differ from it, not by much.
        let ratio = 100.0 * num("gflops") / num("peak_gflops");
        assert!(
            (ratio / num("pct_peak") - 1.0).abs() < 0.5,
            "{ratio} against {row}"
        );
    }
    let out = crossenc(&["bench", "gemm", "--rounds", "0"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--rounds"), "{}", stderr(&out));
}
