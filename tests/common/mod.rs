//! Shared helpers for the integration tests: fixture paths and the PyTorch
//! reference data written by tools/make_fixtures.py.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The fixtures tools/make_fixtures.py writes.
pub const FIXTURES: [&str; 8] = [
    "bert-l2-h32",
    "bert-3labels",
    "tinybert-h128",
    "bert-noprefix",
    "bert-f16",
    "bert-bf16",
    "xlmr-tiny",
    "electra-tiny",
];

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn fixture_dir(name: &str) -> PathBuf {
    data_dir().join("fixtures").join(name)
}

/// One pair of reference.json.
pub struct RefPair {
    pub query: String,
    pub document: String,
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub truncated: bool,
    /// `None` where transformers refuses `only_second` (the query alone is too long).
    pub only_second: Option<(Vec<u32>, Vec<u32>)>,
    pub logits: Vec<f32>,
    pub scores: Vec<f32>,
}

pub struct Reference {
    pub max_length: usize,
    pub num_labels: usize,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub activation: String,
    pub pairs: Vec<RefPair>,
    /// `hidden.{pair}.{layer}` and `pooled.{pair}`.
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

pub fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Reads every f32 tensor of a safetensors file.
pub fn read_tensors(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), data))
        })
        .collect()
}

pub fn reference(name: &str) -> Reference {
    let dir = fixture_dir(name);
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let pairs = json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| RefPair {
            query: p["query"].as_str().unwrap().to_string(),
            document: p["document"].as_str().unwrap().to_string(),
            input_ids: u32s(&p["input_ids"]),
            token_type_ids: u32s(&p["token_type_ids"]),
            truncated: p["truncated"].as_bool().unwrap(),
            only_second: (!p["only_second"].is_null()).then(|| {
                (
                    u32s(&p["only_second"]["input_ids"]),
                    u32s(&p["only_second"]["token_type_ids"]),
                )
            }),
            logits: f32s(&p["logits"]),
            scores: f32s(&p["scores"]),
        })
        .collect();
    Reference {
        max_length: json["max_length"].as_u64().unwrap() as usize,
        num_labels: json["num_labels"].as_u64().unwrap() as usize,
        num_layers: json["num_layers"].as_u64().unwrap() as usize,
        hidden_size: json["hidden_size"].as_u64().unwrap() as usize,
        activation: json["activation"].as_str().unwrap().to_string(),
        pairs,
        tensors: read_tensors(&dir.join("reference.safetensors")),
    }
}

/// Largest absolute difference, and where it is.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold(
            (0.0, 0),
            |best, cur| if cur.0 > best.0 { cur } else { best },
        )
}

/// A scratch copy of a fixture folder, removed on drop, for tests that break files.
pub struct ScratchModel {
    pub dir: PathBuf,
}

impl ScratchModel {
    pub fn copy_of(fixture: &str, tag: &str) -> ScratchModel {
        let dir = std::env::temp_dir().join(format!("crossenc-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        copy_dir(&fixture_dir(fixture), &dir);
        ScratchModel { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// Copies `from` into `to` with its subfolders (sentence-transformers' `1_Pooling/`).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Drop for ScratchModel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real all-MiniLM-L6-v2 folder (`bash tools/fetch_real_weights.sh`, or
/// `CROSSENC_REAL_MODEL_DIR`). `None`, with a `skipped:` line on stderr, when
/// it is not there, unless `CROSSENC_REQUIRE_REAL_WEIGHTS=1` (CI) makes that a
/// failure.
pub fn real_model_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CROSSENC_REAL_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("all-MiniLM-L6-v2"),
    };
    found_or_skip(dir, "bash tools/fetch_real_weights.sh")
}

/// The benchmark cross-encoder made from the real weights
/// (`python3 tools/make_bench_model.py`, into the same cache), as
/// [`real_model_dir`] finds it.
pub fn real_ce_model_dir() -> Option<PathBuf> {
    let dir = cache_dir().join("all-MiniLM-L6-v2-ce");
    found_or_skip(
        dir,
        "bash tools/fetch_real_weights.sh && python3 tools/make_bench_model.py",
    )
}

/// Where tools/fetch_real_weights.sh puts the weights. With neither
/// variable set it is a path that does not exist, so the caller still goes
/// through the skip-or-fail check rather than returning early.
fn cache_dir() -> PathBuf {
    std::env::var_os("CROSSENC_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/crossenc")))
        .unwrap_or_else(|| {
            PathBuf::from("/nonexistent/crossenc-cache: set HOME or CROSSENC_CACHE_DIR")
        })
}

fn found_or_skip(dir: PathBuf, how: &str) -> Option<PathBuf> {
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    if std::env::var("CROSSENC_REQUIRE_REAL_WEIGHTS").as_deref() == Ok("1") {
        panic!("real weights not found in {} (run: {how})", dir.display());
    }
    eprintln!(
        "skipped: real weights not in {} (run: {how})",
        dir.display()
    );
    None
}

/// The emulator this test binary runs under, if any: the cargo runner set for
/// a target of this architecture (`CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=
/// "qemu-aarch64 -cpu max"`, as .ci/run sets), or `CROSSENC_TEST_RUNNER`. A
/// binary the tests start (the CLI) must go through it too: without binfmt
/// support the kernel cannot execute a foreign binary ("Exec format error").
pub fn runner() -> Option<Vec<String>> {
    let words = |s: String| -> Option<Vec<String>> {
        let w: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        (!w.is_empty()).then_some(w)
    };
    if let Ok(runner) = std::env::var("CROSSENC_TEST_RUNNER") {
        return words(runner);
    }
    let arch = std::env::consts::ARCH.to_ascii_uppercase();
    std::env::vars()
        .filter(|(key, _)| {
            key.starts_with(&format!("CARGO_TARGET_{arch}_")) && key.ends_with("_RUNNER")
        })
        .find_map(|(_, value)| words(value))
}

/// Whether the tests run under an emulator (~100x slower): slow loops then do
/// fewer rounds, and say so on stderr.
pub fn emulated() -> bool {
    runner().is_some()
}

/// A `Command` for the `crossenc` binary built with these tests, through the
/// emulator when there is one.
pub fn crossenc_command() -> std::process::Command {
    // option_env: `common` is in every test binary, built with or without the CLI.
    let Some(exe) = option_env!("CARGO_BIN_EXE_crossenc") else {
        panic!("this test needs the crossenc binary (feature cli)");
    };
    match runner() {
        Some(words) => {
            let mut cmd = std::process::Command::new(&words[0]);
            cmd.args(&words[1..]).arg(exe);
            cmd
        }
        None => std::process::Command::new(exe),
    }
}
