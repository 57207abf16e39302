//! The CLI's JSON Lines readers (score's pairs, rerank's documents in both
//! formats, embed's texts): any bytes give inputs or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/bin/crossenc/input.rs"]
#[allow(dead_code)]
mod input;

fuzz_target!(|data: &[u8]| {
    let _ = input::pairs(data);
    let _ = input::texts(data);
    if let Ok(docs) = input::documents(data, false) {
        // rerank reads every document's text as a string.
        assert!(docs.iter().all(|d| d["text"].is_string()));
    }
    let _ = input::documents(data, true);
});
