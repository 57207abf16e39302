//! tokenizer.json + encode: the input is framed as
//! `crossenc::fuzz::tokenizer_input` reads it (a max length byte, query,
//! 0xff, document, 0xff, tokenizer.json); any bytes give encodings or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = crossenc::fuzz::tokenizer_input(data);
});
