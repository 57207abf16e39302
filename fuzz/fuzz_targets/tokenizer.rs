//! tokenizer.json + encode: the input is framed as
//! `crossenc::fuzz::tokenizer_input` reads it (a max length byte, query,
//! 0xff, document, 0xff, tokenizer.json); any bytes give encodings or an
//! error, never a panic that reaches the caller.
#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // crossenc catches the panics of tokenizers itself (tokenize.rs,
        // `guarded`); libfuzzer-sys's hook would abort before they unwind to
        // it. One line per panic site instead: a panic that escapes still
        // aborts the run (libfuzzer-sys catches it at the top), with its
        // message above.
        static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
        std::panic::set_hook(Box::new(|info| {
            let site = info.location().map(|l| l.to_string()).unwrap_or_default();
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(site) {
                eprintln!("panic (first at this site): {info}");
            }
        }));
    },
    |data: &[u8]| {
        let _ = crossenc::fuzz::tokenizer_input(data);
    }
);
