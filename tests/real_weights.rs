//! The real sentence-transformers/all-MiniLM-L6-v2 weights against PyTorch:
//! last hidden state and pooler output on 24 texts and 12 pairs at 128
//! tokens, and on 3 long pairs (232, 438 and 512 tokens: several attention
//! key blocks) at 512, from tests/data/real (written by
//! tools/make_real_reference.py).
//!
//! The weights come from `bash tools/fetch_real_weights.sh` (which .ci/run
//! calls) into `${CROSSENC_CACHE_DIR:-~/.cache/crossenc}/all-MiniLM-L6-v2`, or
//! from `CROSSENC_REAL_MODEL_DIR`. Without them the test says it skipped,
//! unless `CROSSENC_REQUIRE_REAL_WEIGHTS=1` (set by CI) makes that a failure.
//!
//! Tolerance 1e-4 absolute, as in tests/parity.rs: six layers of hidden 384
//! sum in a different order than PyTorch; measured differences are ~1e-5.

mod common;

use common::{data_dir, emulated, max_abs_diff, read_tensors, real_model_dir};
use crossenc::Encoder;
use serde_json::Value;

#[test]
fn all_minilm_l6_v2_matches_pytorch() {
    let Some(dir) = real_model_dir() else { return };
    check(&dir, "all-MiniLM-L6-v2", 20, 10);
}

#[test]
fn all_minilm_l6_v2_matches_pytorch_on_long_pairs() {
    let Some(dir) = real_model_dir() else { return };
    check(&dir, "all-MiniLM-L6-v2-long", 0, 3);
}

/// Compares reference file `name` (at least `min_texts` texts and
/// `min_pairs` pairs) with our encoder on the weights in `dir`. Where an input
/// lists `rows`, the reference keeps only those rows of the last hidden state.
fn check(dir: &std::path::Path, name: &str, min_texts: usize, min_pairs: usize) {
    let json: Value = serde_json::from_slice(
        &std::fs::read(data_dir().join(format!("real/{name}.json"))).unwrap(),
    )
    .unwrap();
    let tensors = read_tensors(&data_dir().join(format!("real/{name}.safetensors")));
    let max_length = json["max_length"].as_u64().unwrap() as usize;
    let has_pooler = json["has_pooler"].as_bool().unwrap();
    let encoder = Encoder::from_dir(dir, Some(max_length)).unwrap();
    assert_eq!(encoder.config().hidden_size, 384);

    let all = json["inputs"].as_array().unwrap();
    // Under an emulator (~100x slower) a handful of inputs: the first 3 texts
    // and the first 2 pairs (the references are indexed, so any subset checks).
    let inputs: Vec<&Value> = if emulated() {
        let (mut texts, mut pairs) = (0, 0);
        let kept: Vec<&Value> = all
            .iter()
            .filter(|i| {
                let n = if i.get("text").is_some() {
                    &mut texts
                } else {
                    &mut pairs
                };
                *n += 1;
                *n <= if i.get("text").is_some() { 3 } else { 2 }
            })
            .collect();
        eprintln!("emulated: {name}: {} of {} inputs", kept.len(), all.len());
        kept
    } else {
        all.iter().collect()
    };
    let (mut texts, mut pairs) = (Vec::new(), Vec::new());
    for input in &inputs {
        match input.get("text") {
            Some(t) => texts.push(t.as_str().unwrap()),
            None => pairs.push((
                input["query"].as_str().unwrap(),
                input["document"].as_str().unwrap(),
            )),
        }
    }
    assert!(emulated() || (texts.len() >= min_texts && pairs.len() >= min_pairs));
    let mut outputs = encoder.encode_texts(&texts).unwrap();
    outputs.extend(encoder.encode_pairs(&pairs).unwrap());
    // The reference lists texts first, then pairs; keep that order.
    let ordered: Vec<&Value> = inputs
        .iter()
        .filter(|i| i.get("text").is_some())
        .chain(inputs.iter().filter(|i| i.get("text").is_none()))
        .copied()
        .collect();
    // The index in the whole reference, which names its tensors.
    let index_of = |want: &Value| all.iter().position(|i| std::ptr::eq(i, want)).unwrap();

    assert_eq!(outputs.len(), ordered.len(), "one output per input");
    let (mut worst_hidden, mut worst_pooler) = (0.0f32, 0.0f32);
    for (out, input) in outputs.iter().zip(ordered) {
        let i = index_of(input);
        let ids: Vec<u32> = input["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(out.encoded.input_ids, ids, "input {i}: token ids");
        let rows: Vec<usize> = match input.get("rows") {
            Some(rows) => rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap() as usize)
                .collect(),
            None => (0..ids.len()).collect(),
        };
        let got: Vec<f32> = rows
            .iter()
            .flat_map(|&r| &out.last_hidden_state[r * 384..(r + 1) * 384])
            .copied()
            .collect();
        let (shape, want) = &tensors[&format!("last_hidden.{i}")];
        assert_eq!(shape, &[rows.len(), 384]);
        let (diff, at) = max_abs_diff(&got, want);
        assert!(
            diff <= 1e-4,
            "input {i}: last hidden |diff| {diff:e} at {at}"
        );
        worst_hidden = worst_hidden.max(diff);
        if has_pooler {
            let (_, want) = &tensors[&format!("pooler.{i}")];
            let (diff, _) = max_abs_diff(out.pooler_output.as_ref().unwrap(), want);
            assert!(diff <= 1e-4, "input {i}: pooler |diff| {diff:e}");
            worst_pooler = worst_pooler.max(diff);
        }
    }
    println!(
        "{name}: {} inputs of up to {} tokens; max |diff| last hidden {worst_hidden:.2e}, pooler {worst_pooler:.2e}",
        outputs.len(),
        outputs.iter().map(|o| o.encoded.input_ids.len()).max().unwrap_or(0)
    );
}
