//! config.json: any bytes give a config or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = crossenc::fuzz::config(data) {
        // What the model derives from a config that passed.
        let _ = (config.max_positions(), config.head_dim(), config.num_labels());
    }
});
