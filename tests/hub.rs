//! Hub model ids against a local HTTP server that serves the hub's URL layout
//! (`/{repo}/resolve/{revision}/{file}`, the `x-repo-commit` and `etag`
//! headers, ranged GETs) for the calls hf-hub makes. No test touches the
//! internet: HF_ENDPOINT points at 127.0.0.1.
#![cfg(feature = "hub")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::fixture_dir;
use sha2::Digest;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "org/tiny-reranker";

/// What the server does, and what it saw.
struct Hub {
    files: HashMap<String, Vec<u8>>,
    /// Requests per path, to check caching and retries.
    hits: Mutex<HashMap<String, usize>>,
    /// Full-body downloads of model.safetensors in the "flaky" repos so far.
    flaky_downloads: AtomicUsize,
}

fn serve(hub: Arc<Hub>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let hub = Arc::clone(&hub);
            std::thread::spawn(move || {
                let _ = handle(&hub, stream);
            });
        }
    });
    format!("http://{addr}")
}

fn handle(hub: &Hub, mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    *hub.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let respond =
        |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8], declared: usize| {
            let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {declared}\r\nConnection: close\r\n{extra}\r\n"
        );
            stream.write_all(head.as_bytes())?;
            stream.write_all(body)?;
            stream.flush()
        };
    // /{org}/{name}/resolve/{revision}/{file...}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() < 5 || parts[2] != "resolve" {
        return respond(&mut stream, "404 Not Found", "", b"", 0);
    }
    let (repo, file) = (format!("{}/{}", parts[0], parts[1]), parts[4].to_string());
    match repo.as_str() {
        "org/old-name" => {
            // A renamed repository: the hub redirects, relative to itself.
            let location = format!("/{REPO}/resolve/{}/{file}", parts[3]);
            return respond(
                &mut stream,
                "307 Temporary Redirect",
                &format!("Location: {location}\r\n"),
                b"",
                0,
            );
        }
        "org/private"
            if headers.get("authorization").map(String::as_str) != Some("Bearer secret") =>
        {
            return respond(&mut stream, "401 Unauthorized", "", b"", 0);
        }
        REPO | "org/private" | "org/truncated" | "org/corrupt" => {}
        _ => return respond(&mut stream, "404 Not Found", "", b"", 0),
    }
    let Some(content) = hub.files.get(&file) else {
        return respond(&mut stream, "404 Not Found", "", b"", 0);
    };
    let etag = hex(&sha2::Sha256::digest(content));
    let size = content.len();
    let start: usize = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let metadata_probe = headers.get("range").map(String::as_str) == Some("bytes=0-0");
    let end = if metadata_probe { 1 } else { size };
    let extra = format!(
        "x-repo-commit: {COMMIT}\r\netag: \"{etag}\"\r\nContent-Range: bytes {start}-{}/{size}\r\n",
        end.max(1) - 1
    );
    let mut body = content[start.min(size)..end].to_vec();
    let flaky = (repo == "org/truncated" || repo == "org/corrupt")
        && file == "model.safetensors"
        && !metadata_probe;
    if flaky && hub.flaky_downloads.fetch_add(1, Ordering::SeqCst) == 0 {
        if repo == "org/truncated" {
            // Promise the whole file, send half, hang up.
            let half = body.len() / 2;
            return respond(
                &mut stream,
                "206 Partial Content",
                &extra,
                &body[..half],
                body.len(),
            );
        }
        body[100] ^= 0xff; // a flipped byte: right length, wrong content
    }
    let len = body.len();
    respond(&mut stream, "206 Partial Content", &extra, &body, len)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_hub() -> (Arc<Hub>, String) {
    let dir = fixture_dir("bert-l2-h32");
    let files = [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
    .collect();
    let hub = Arc::new(Hub {
        files,
        hits: Mutex::new(HashMap::new()),
        flaky_downloads: AtomicUsize::new(0),
    });
    let url = serve(Arc::clone(&hub));
    (hub, url)
}

struct TempCache(PathBuf);

impl TempCache {
    fn new(tag: &str) -> TempCache {
        let dir = std::env::temp_dir().join(format!("crossenc-hub-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempCache(dir)
    }
}

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn crossenc(
    args: &[&str],
    endpoint: &str,
    cache: &Path,
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut cmd = common::crossenc_command();
    cmd.args(args)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("home"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PAIR: &[u8] = b"{\"query\": \"capital of France\", \"document\": \"Paris\"}\n";

#[test]
fn hub_id_downloads_into_the_python_cache_layout_and_scores_like_the_folder() {
    let (hub, url) = new_hub();
    let cache = TempCache::new("download");
    let out = crossenc(&["download", REPO], &url, &cache.0, &[], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let folder = PathBuf::from(text(&out.stdout).trim());
    let want = cache
        .0
        .join("models--org--tiny-reranker/snapshots")
        .join(COMMIT);
    assert_eq!(folder, want, "huggingface_hub's layout");
    assert!(cache
        .0
        .join("models--org--tiny-reranker/refs/main")
        .exists());
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert_eq!(std::fs::read(folder.join(f)).unwrap(), hub.files[f], "{f}");
    }
    // Scores through the hub id equal scores from the fixture folder.
    let fixture = fixture_dir("bert-l2-h32");
    let by_id = crossenc(&["score", "--model", REPO], &url, &cache.0, &[], PAIR);
    let by_dir = crossenc(
        &["score", "--model", fixture.to_str().unwrap()],
        &url,
        &cache.0,
        &[],
        PAIR,
    );
    assert!(by_id.status.success(), "{}", text(&by_id.stderr));
    assert_eq!(by_id.stdout, by_dir.stdout);
    // The second use reads the cache: no new download of the weights.
    let weights = format!("/{REPO}/resolve/main/model.safetensors");
    assert_eq!(
        hub.hits.lock().unwrap()[&weights],
        2,
        "one metadata probe + one download"
    );
}

#[test]
fn offline_mode_uses_the_cache_only() {
    let (_hub, url) = new_hub();
    let cache = TempCache::new("offline");
    let offline = [("HF_HUB_OFFLINE", "1")];
    let out = crossenc(&["score", "--model", REPO], &url, &cache.0, &offline, PAIR);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HF_HUB_OFFLINE"),
        "{}",
        text(&out.stderr)
    );
    assert!(crossenc(&["download", REPO], &url, &cache.0, &[], b"")
        .status
        .success());
    // Now the endpoint is dead, and offline mode still works from the cache.
    let out = crossenc(
        &["score", "--model", REPO],
        "http://127.0.0.1:9",
        &cache.0,
        &offline,
        PAIR,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn renamed_repository_follows_the_redirect() {
    let (_hub, url) = new_hub();
    let cache = TempCache::new("redirect");
    let out = crossenc(
        &["score", "--model", "org/old-name"],
        &url,
        &cache.0,
        &[],
        PAIR,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn missing_repository_or_file_is_a_clear_error() {
    let (_hub, url) = new_hub();
    let cache = TempCache::new("404");
    let out = crossenc(
        &["score", "--model", "org/nothing-here"],
        &url,
        &cache.0,
        &[],
        PAIR,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no config.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn private_repository_needs_hf_token() {
    let (_hub, url) = new_hub();
    let cache = TempCache::new("401");
    let out = crossenc(
        &["score", "--model", "org/private"],
        &url,
        &cache.0,
        &[],
        PAIR,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HF_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    let out = crossenc(
        &["score", "--model", "org/private"],
        &url,
        &cache.0,
        &[("HF_TOKEN", "secret")],
        PAIR,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn truncated_or_corrupt_downloads_are_fetched_again_never_used() {
    for repo in ["org/truncated", "org/corrupt"] {
        let (hub, url) = new_hub();
        let cache = TempCache::new(repo.trim_start_matches("org/"));
        let out = crossenc(&["download", repo], &url, &cache.0, &[], b"");
        assert!(out.status.success(), "{repo}: {}", text(&out.stderr));
        let folder = PathBuf::from(text(&out.stdout).trim());
        assert_eq!(
            std::fs::read(folder.join("model.safetensors")).unwrap(),
            hub.files["model.safetensors"]
        );
        assert!(
            hub.flaky_downloads.load(Ordering::SeqCst) >= 2,
            "{repo}: fetched again"
        );
    }
}

#[test]
fn no_network_says_what_to_do() {
    let cache = TempCache::new("nonet");
    let out = crossenc(
        &["score", "--model", REPO],
        "http://127.0.0.1:9",
        &cache.0,
        &[],
        PAIR,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("HF_HUB_OFFLINE") && err.contains("local model folder"),
        "{err}"
    );
}
