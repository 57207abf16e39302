//! Replays every input under tests/data/fuzz/<target>/ through the entry
//! point its fuzz target (fuzz/fuzz_targets/<target>.rs) calls: each once
//! made a loader panic, and must now give a result or an error. A new crash
//! from `cargo +nightly fuzz run <target>` goes into that folder with a name
//! that says what broke.

mod common;

use std::path::PathBuf;

#[path = "../src/bin/crossenc/input.rs"]
#[allow(dead_code)]
mod input;

/// The regression inputs of `target`, by name.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = common::data_dir().join("fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            eprintln!("replaying {} ({} bytes)", p.display(), bytes.len());
            (p, bytes)
        })
        .collect()
}

#[test]
fn config_regressions() {
    for (_, data) in inputs("config") {
        let _ = crossenc::fuzz::config(&data);
    }
}

#[test]
fn safetensors_regressions() {
    let json = std::fs::read(common::fixture_dir("bert-l2-h32").join("config.json")).unwrap();
    let config = crossenc::fuzz::config(&json).unwrap();
    for (_, data) in inputs("safetensors") {
        let _ = crossenc::fuzz::weights(&config, &data);
    }
}

#[test]
fn tokenizer_regressions() {
    for (path, data) in inputs("tokenizer") {
        assert!(
            crossenc::fuzz::tokenizer_input(&data).is_some(),
            "{}: not framed as the tokenizer target reads its input",
            path.display()
        );
    }
}

#[test]
fn jsonl_regressions() {
    for (_, data) in inputs("jsonl") {
        let _ = input::pairs(data.as_slice());
        let _ = input::texts(data.as_slice());
        let _ = input::documents(data.as_slice(), false);
        let _ = input::documents(data.as_slice(), true);
    }
}
