//! model.safetensors: any bytes, loaded for the bert-l2-h32 fixture's config
//! and run on one pair, give logits or an error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn config() -> &'static crossenc::BertConfig {
    static CONFIG: OnceLock<crossenc::BertConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let json = include_bytes!("../../tests/data/fixtures/bert-l2-h32/config.json");
        crossenc::fuzz::config(json).expect("the fixture's config loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = crossenc::fuzz::weights(config(), data);
});
