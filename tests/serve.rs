//! `crossenc serve` on loopback: every endpoint and error code, scores equal
//! to `crossenc score`'s under concurrency, SIGTERM with requests in flight,
//! clients that go away, oversized and trickling requests.
//!
//! Only 127.0.0.1, every loop bounded, every socket with a timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::fixture_dir;
use crossenc::serve::{ServeOptions, Server};
use crossenc::CrossEncoder;
use serde_json::{json, Value};

/// A socket timeout: a test that hangs fails instead.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn model() -> CrossEncoder {
    CrossEncoder::builder()
        .threads(2)
        .build(fixture_dir("bert-l2-h32"))
        .unwrap()
}

fn start(options: ServeOptions) -> Server {
    Server::start(model(), ServeOptions { port: 0, ..options }).unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: not JSON: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An error reply: its status and `{"error", "error_type"}` body.
    fn assert_error(&self, status: u16, error_type: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["error_type"], error_type, "{}", self.body);
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads one HTTP/1.1 response to the end of the connection.
fn read_reply(stream: TcpStream) -> Reply {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut body = String::new();
    reader.read_to_string(&mut body).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut stream = connect(addr);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    read_reply(stream)
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    request(addr, "POST", path, &body.to_string(), &[])
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, "", &[])
}

const QUERY: &str = "capital of France";
const DOCS: [&str; 4] = [
    "Paris is the capital of France",
    "Berlin is in Germany",
    "The Seine flows through Paris",
    "Berlin is in Germany",
];

/// The library's scores for (QUERY, d) (what `crossenc score` prints; the
/// concurrency test checks against the binary itself).
fn expected() -> Vec<f32> {
    let pairs: Vec<(&str, &str)> = DOCS.iter().map(|d| (QUERY, *d)).collect();
    model().predict(&pairs).unwrap()
}

#[test]
fn rerank_endpoints_answer_best_first_with_the_libraries_scores() {
    let server = start(ServeOptions::default());
    let addr = server.addr();
    let want = expected();
    let mut order: Vec<usize> = (0..DOCS.len()).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
    // Documents 1 and 3 are equal: equal scores keep input order.
    assert_eq!(want[1], want[3]);

    // TEI
    let reply = post(
        addr,
        "/rerank",
        &json!({"query": QUERY, "texts": DOCS, "return_text": true}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.header("x-request-id").is_some());
    let got = reply.json();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), DOCS.len());
    for (entry, &i) in got.iter().zip(&order) {
        assert_eq!(entry["index"], i);
        assert_eq!(entry["score"].as_f64().unwrap() as f32, want[i]);
        assert_eq!(entry["text"], DOCS[i]);
    }
    // raw_scores: the logits; no text unless asked.
    let logits = model()
        .predict_all(&DOCS.iter().map(|d| (QUERY, *d)).collect::<Vec<_>>())
        .unwrap();
    let raw = post(
        addr,
        "/rerank",
        &json!({"query": QUERY, "texts": DOCS, "raw_scores": true}),
    )
    .json();
    for entry in raw.as_array().unwrap() {
        let i = entry["index"].as_u64().unwrap() as usize;
        assert_eq!(entry["score"].as_f64().unwrap() as f32, logits[i].logits[0]);
        assert!(entry.get("text").is_none());
    }

    // Cohere / Jina: strings or {"text"}, top_n, return_documents, usage.
    for path in ["/v1/rerank", "/v2/rerank"] {
        let docs = json!([DOCS[0], {"text": DOCS[1]}, DOCS[2], {"text": DOCS[3]}]);
        let reply = post(
            addr,
            path,
            &json!({"model": "m", "query": QUERY, "documents": docs, "top_n": 2, "return_documents": true}),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "top_n");
        for (entry, &i) in results.iter().zip(&order) {
            assert_eq!(entry["index"], i);
            assert_eq!(entry["relevance_score"].as_f64().unwrap() as f32, want[i]);
            assert_eq!(entry["document"]["text"], DOCS[i]);
        }
        let tokens: usize = logits.iter().map(|p| p.tokens).sum();
        assert_eq!(body["usage"]["total_tokens"], tokens);
        assert_eq!(body["meta"]["tokens"]["input_tokens"], tokens);
        assert!(body["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(body["model"], "m");
    }

    // TEI /predict: one pair -> its labels; several -> one list each.
    let one = post(addr, "/predict", &json!({"inputs": [QUERY, DOCS[0]]})).json();
    assert_eq!(one[0]["label"], "LABEL_0");
    assert_eq!(one[0]["score"].as_f64().unwrap() as f32, want[0]);
    let many = post(
        addr,
        "/predict",
        &json!({"inputs": [[QUERY, DOCS[0]], [QUERY, DOCS[2]]], "raw_scores": true}),
    )
    .json();
    assert_eq!(many.as_array().unwrap().len(), 2);
    assert_eq!(
        many[1][0]["score"].as_f64().unwrap() as f32,
        logits[2].logits[0]
    );

    // health, info, metrics
    assert_eq!(get(addr, "/health").status, 200);
    let info = get(addr, "/info").json();
    assert_eq!(info["precision"], "f32");
    assert_eq!(info["max_client_batch_size"], 1000);
    assert_eq!(info["max_input_length"], 48);
    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    for line in [
        "crossenc_requests_total{endpoint=\"/rerank\",status=\"200\"} 2",
        "crossenc_queue_size ",
        "crossenc_batch_pairs_bucket{le=\"+Inf\"}",
        "crossenc_inference_duration_seconds_count",
        "crossenc_queue_duration_seconds_count",
        "crossenc_tokenization_duration_seconds_count",
    ] {
        assert!(
            metrics.body.contains(line),
            "{line} not in\n{}",
            metrics.body
        );
    }
    server.shutdown().unwrap();
}

#[test]
fn client_errors_are_json_with_their_status() {
    let server = start(ServeOptions {
        max_client_batch_size: 3,
        payload_limit: 10_000,
        ..ServeOptions::default()
    });
    let addr = server.addr();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "/rerank",
            "{\"query\": \"q\", \"texts\": [".into(),
            400,
            "invalid_json",
        ),
        ("/rerank", "not json".into(), 400, "invalid_json"),
        (
            "/rerank",
            json!({"query": "q", "texts": []}).to_string(),
            422,
            "validation",
        ),
        (
            "/rerank",
            json!({"query": "q", "texts": [1, 2]}).to_string(),
            422,
            "validation",
        ),
        (
            "/rerank",
            json!({"query": "q"}).to_string(),
            422,
            "validation",
        ),
        (
            "/rerank",
            json!({"texts": ["a"]}).to_string(),
            422,
            "validation",
        ),
        (
            "/rerank",
            json!({"query": "q", "texts": ["a"], "truncation_direction": "left"}).to_string(),
            422,
            "validation",
        ),
        (
            "/rerank",
            json!({"query": "q", "texts": ["a", "b", "c", "d"]}).to_string(),
            413,
            "validation",
        ),
        (
            "/rerank",
            json!({"query": "q", "texts": ["x".repeat(20_000)]}).to_string(),
            413,
            "payload_too_large",
        ),
        (
            "/v1/rerank",
            json!({"query": "q", "documents": []}).to_string(),
            422,
            "validation",
        ),
        (
            "/v1/rerank",
            json!({"query": "q", "documents": [{"txt": "a"}]}).to_string(),
            422,
            "validation",
        ),
        (
            "/v1/rerank",
            json!({"query": "q", "documents": ["a"], "top_n": 0}).to_string(),
            422,
            "validation",
        ),
        (
            "/predict",
            json!({"inputs": []}).to_string(),
            422,
            "validation",
        ),
        (
            "/predict",
            json!({"inputs": ["only one"]}).to_string(),
            422,
            "validation",
        ),
        ("/nowhere", "{}".into(), 404, "not_found"),
    ];
    for (path, body, status, kind) in &cases {
        let reply = request(addr, "POST", path, body, &[]);
        eprintln!("{path} {:.60} -> {} {}", body, reply.status, reply.body);
        reply.assert_error(*status, kind);
    }
    // A long document with truncation refused (TEI's truncate: false).
    let long = "paris is the capital of france ".repeat(20);
    post(
        addr,
        "/rerank",
        &json!({"query": "q", "texts": [long], "truncate": false}),
    )
    .assert_error(422, "validation");
    assert_eq!(
        post(
            addr,
            "/rerank",
            &json!({"query": "q", "texts": [long], "truncate": true})
        )
        .status,
        200
    );
    // Still serving after all that.
    assert_eq!(
        post(addr, "/rerank", &json!({"query": "q", "texts": ["a"]})).status,
        200
    );
    server.shutdown().unwrap();
}

#[test]
fn api_key_is_required_when_set() {
    let server = start(ServeOptions {
        api_key: Some("s3cret".into()),
        ..ServeOptions::default()
    });
    let addr = server.addr();
    let body = json!({"query": "q", "texts": ["a"]}).to_string();
    request(addr, "POST", "/rerank", &body, &[]).assert_error(401, "unauthorized");
    request(
        addr,
        "POST",
        "/rerank",
        &body,
        &[("Authorization", "Bearer wrong!")],
    )
    .assert_error(401, "unauthorized");
    request(addr, "GET", "/info", "", &[]).assert_error(401, "unauthorized");
    let ok = request(
        addr,
        "POST",
        "/rerank",
        &body,
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(get(addr, "/health").status, 200, "health stays open");
    server.shutdown().unwrap();
}

#[test]
fn request_id_is_echoed_or_made() {
    let server = start(ServeOptions::default());
    let addr = server.addr();
    let echoed = request(addr, "GET", "/health", "", &[("X-Request-Id", "abc-123")]);
    assert_eq!(echoed.header("x-request-id"), Some("abc-123"));
    let a = get(addr, "/health");
    let b = get(addr, "/health");
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    server.shutdown().unwrap();
}

/// Sends the head of a POST with a body of `length` bytes and only `sent` of them.
fn partial_post(addr: SocketAddr, path: &str, length: usize, sent: &[u8]) -> TcpStream {
    let mut stream = connect(addr);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream
}

#[test]
fn slow_clients_time_out_and_cannot_crowd_out_others() {
    let server = start(ServeOptions {
        request_timeout: Duration::from_secs(2),
        max_concurrent_requests: 1,
        ..ServeOptions::default()
    });
    let addr = server.addr();
    let body = json!({"query": "q", "texts": ["a", "b"]}).to_string();
    // A client trickles its body: it holds the one request slot...
    let start = Instant::now();
    let mut slow = partial_post(addr, "/rerank", body.len(), &body.as_bytes()[..5]);
    // Time for the server to read its head and let it in (the timeout is 2 s).
    std::thread::sleep(Duration::from_millis(1000));
    // ...so another request is refused with 429 meanwhile...
    request(addr, "POST", "/rerank", &body, &[]).assert_error(429, "overloaded");
    // ...until the trickler is cut off by the timeout (408), well before IO_TIMEOUT.
    for _ in 0..5 {
        if slow.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    read_reply(slow).assert_error(408, "timeout");
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(20),
        "timed out after {waited:?}"
    );
    assert_eq!(request(addr, "POST", "/rerank", &body, &[]).status, 200);
    server.shutdown().unwrap();
}

#[test]
fn clients_that_disconnect_mid_request_do_not_disturb_the_server() {
    let server = start(ServeOptions::default());
    let addr = server.addr();
    let big: Vec<String> = (0..200)
        .map(|i| format!("document number {i} about paris"))
        .collect();
    let body = json!({"query": "q", "texts": big}).to_string();
    for _ in 0..10 {
        // Half a body, then gone.
        drop(partial_post(
            addr,
            "/rerank",
            body.len(),
            &body.as_bytes()[..body.len() / 2],
        ));
        // A whole request, gone before the answer.
        let mut stream = partial_post(addr, "/rerank", body.len(), body.as_bytes());
        stream.flush().unwrap();
        drop(stream);
    }
    let reply = post(addr, "/rerank", &json!({"query": QUERY, "texts": DOCS}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json().as_array().unwrap().len(), DOCS.len());
    server.shutdown().unwrap();
}

/// `crossenc score` on the pairs, through the binary.
fn cli_scores(pairs: &[(String, String)]) -> Vec<f32> {
    let input: String = pairs
        .iter()
        .map(|(q, d)| format!("{}\n", json!({"query": q, "document": d})))
        .collect();
    let mut child = common::crossenc_command()
        .args([
            "score",
            "--model",
            fixture_dir("bert-l2-h32").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap() as f32
        })
        .collect()
}

#[test]
fn concurrent_clients_get_the_clis_scores() {
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 20;
    let server = start(ServeOptions {
        max_batch_tokens: 2048,
        ..ServeOptions::default()
    });
    let addr = server.addr();
    // Each client's requests differ (query and document count), so batches mix them.
    let request_pairs = |c: usize, r: usize| -> (String, Vec<String>) {
        let query = format!(
            "query {} about {}",
            c % 5,
            ["paris", "rivers", "berlin"][r % 3]
        );
        let docs = (0..1 + (c + r) % 6)
            .map(|i| {
                format!(
                    "document {i} of client {c}: the seine flows through paris {}",
                    "x ".repeat(r % 7)
                )
            })
            .collect();
        (query, docs)
    };
    let mut all = Vec::new();
    for c in 0..CLIENTS {
        for r in 0..REQUESTS {
            let (q, docs) = request_pairs(c, r);
            all.extend(docs.into_iter().map(|d| (q.clone(), d)));
        }
    }
    let want = cli_scores(&all);
    let got: Vec<Vec<(usize, f32)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                scope.spawn(move || {
                    let mut scores = Vec::new();
                    for r in 0..REQUESTS {
                        let (q, docs) = request_pairs(c, r);
                        let reply = post(addr, "/rerank", &json!({"query": q, "texts": docs}));
                        assert_eq!(reply.status, 200, "{}", reply.body);
                        let mut by_index = vec![0f32; docs.len()];
                        for entry in reply.json().as_array().unwrap() {
                            by_index[entry["index"].as_u64().unwrap() as usize] =
                                entry["score"].as_f64().unwrap() as f32;
                        }
                        scores.extend(by_index.into_iter().map(|s| (r, s)));
                    }
                    scores
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let got: Vec<f32> = got.into_iter().flatten().map(|(_, s)| s).collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "pair {i}: server {g} vs crossenc score {w}"
        );
    }
    let metrics = get(addr, "/metrics").body;
    eprintln!(
        "{} pairs in {} requests from {CLIENTS} clients, all equal to `crossenc score`; batches:\n{}",
        want.len(),
        CLIENTS * REQUESTS,
        metrics
            .lines()
            .filter(|l| l.starts_with("crossenc_batch_pairs_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    server.shutdown().unwrap();
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let mut child = common::crossenc_command()
        .args([
            "serve",
            "--model",
            fixture_dir("bert-l2-h32").to_str().unwrap(),
            "--port",
            "0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The startup line names the address.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let body = json!({
        "query": "q",
        "texts": (0..300).map(|i| format!("document {i} about the river seine in paris")).collect::<Vec<_>>(),
    })
    .to_string();
    // 8 requests in flight, each written whole before the signal.
    let streams: Vec<TcpStream> = (0..8)
        .map(|_| partial_post(addr, "/rerank", body.len(), body.as_bytes()))
        .collect();
    // Time for the server to accept them and read their requests.
    std::thread::sleep(Duration::from_millis(500));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for stream in streams {
        let reply = read_reply(stream);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json().as_array().unwrap().len(), 300);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}; stderr: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
    // And it no longer listens.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn embed_serves_sentence_transformers_folders() {
    // st-mean normalizes (modules.json lists Normalize); st-cls does not.
    for (fixture, normalizes) in [("st-mean", true), ("st-cls", false)] {
        let dir = fixture_dir(fixture);
        let embedder = crossenc::SentenceEmbedder::from_dir(&dir, None).unwrap();
        assert_eq!(embedder.normalize(), normalizes);
        let texts = ["Paris is the capital of France", "Berlin is in Germany"];
        let want = embedder.embed(&texts).unwrap();
        let server = Server::start_embedder(
            crossenc::SentenceEmbedder::from_dir(&dir, None).unwrap(),
            ServeOptions {
                port: 0,
                ..ServeOptions::default()
            },
        )
        .unwrap();
        let addr = server.addr();
        let floats = |v: &Value| -> Vec<Vec<f32>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    e.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect()
        };
        // normalize: false -> exactly the library's (and `crossenc embed`'s) vectors.
        let raw = post(
            addr,
            "/embed",
            &json!({"inputs": texts, "normalize": false}),
        );
        assert_eq!(raw.status, 200, "{}", raw.body);
        assert_eq!(floats(&raw.json()), want, "{fixture}");
        // TEI's default, normalize: true -> unit vectors.
        let one = floats(&post(addr, "/embed", &json!({"inputs": texts[0]})).json());
        assert_eq!(one.len(), 1);
        let norm = one[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{fixture}: norm {norm}");
        if normalizes {
            assert_eq!(one[0], want[0]);
        }
        assert_eq!(get(addr, "/info").json()["model_type"], "embedding");
        post(addr, "/rerank", &json!({"query": "q", "texts": ["a"]}))
            .assert_error(404, "not_found");
        post(addr, "/embed", &json!({"inputs": []})).assert_error(422, "validation");
        server.shutdown().unwrap();
    }
    // And a reranker has no /embed.
    let server = start(ServeOptions::default());
    post(server.addr(), "/embed", &json!({"inputs": "a"})).assert_error(404, "not_found");
    server.shutdown().unwrap();
}

#[test]
fn long_documents_are_windowed_as_in_process() {
    // MaxP: a document longer than the max length is scored in windows; the
    // server (which tokenizes in the handler) gives the library's scores.
    let build = || {
        CrossEncoder::builder()
            .threads(2)
            .long_docs(crossenc::LongDocs::Max)
            .build(fixture_dir("bert-l2-h32"))
            .unwrap()
    };
    let docs: Vec<String> = (1..6)
        .map(|n| "the seine flows through paris and the capital of france ".repeat(n * 3))
        .collect();
    let pairs: Vec<(&str, &str)> = docs.iter().map(|d| (QUERY, d.as_str())).collect();
    let want = build().predict_all(&pairs).unwrap();
    assert!(
        want.iter().any(|p| p.windows > 1),
        "some documents need windows"
    );
    let server = Server::start(
        build(),
        ServeOptions {
            port: 0,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let reply = post(
        server.addr(),
        "/rerank",
        &json!({"query": QUERY, "texts": docs}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    for entry in reply.json().as_array().unwrap() {
        let i = entry["index"].as_u64().unwrap() as usize;
        assert_eq!(
            entry["score"].as_f64().unwrap() as f32,
            want[i].scores[0],
            "document {i}"
        );
    }
    server.shutdown().unwrap();
}
