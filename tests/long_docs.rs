//! Long documents scored in windows (`LongDocs::Max` / `Mean`) against
//! PyTorch: the windows' token ids and types, each window's count, and the
//! combined logits, from tests/data/long_docs.json (written by
//! tools/make_long_reference.py, which builds the windows from transformers'
//! tokenizer and runs each through `AutoModelForSequenceClassification`).
//!
//! Tolerance 1e-4 absolute on logits, as in tests/parity.rs: each window is
//! an ordinary forward pass (measured differences ~1e-6 on the fixtures,
//! ~5e-6 on the real weights at 512 tokens); max and mean add no error of
//! their own beyond float32 rounding of a mean of at most 22 values.

mod common;

use common::{data_dir, f32s, fixture_dir, max_abs_diff, real_ce_model_dir, u32s};
use crossenc::{CrossEncoder, LongDocs};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join("long_docs.json")).unwrap()).unwrap()
}

/// Checks every case of `model` (an entry of long_docs.json) against the
/// folder `dir`; returns the largest logit difference.
fn check(dir: &std::path::Path, model: &Value) -> f32 {
    let name = model["name"].as_str().unwrap();
    let max_length = model["max_length"].as_u64().unwrap() as usize;
    let mut worst = 0.0f32;
    for (c, case) in model["cases"].as_array().unwrap().iter().enumerate() {
        let (query, document) = (
            case["query"].as_str().unwrap(),
            case["document"].as_str().unwrap(),
        );
        let windows = case["windows"].as_array().unwrap();
        for mode in [LongDocs::Max, LongDocs::Mean] {
            let mut builder = CrossEncoder::builder()
                .max_length(max_length)
                .long_docs(mode)
                .batch_size(7); // windows of one document span several batches
            if let Some(stride) = case["stride"].as_u64() {
                builder = builder.window_stride(stride as usize);
            }
            let model = builder.build(dir).unwrap();
            let what = format!("{name} case {c} ({})", mode.name());
            let encoded = model.encode_windows(query, document).unwrap();
            assert_eq!(encoded.len(), windows.len(), "{what}: window count");
            for (w, (e, r)) in encoded.iter().zip(windows).enumerate() {
                assert_eq!(e.input_ids, u32s(&r["input_ids"]), "{what}: window {w} ids");
                assert_eq!(
                    e.token_type_ids,
                    u32s(&r["token_type_ids"]),
                    "{what}: window {w} token types"
                );
            }
            // The pair among short ones, so that its windows share batches with them.
            let pairs = [
                ("a short query", "a short document"),
                (query, document),
                ("another query", "another short document"),
            ];
            let got = model.predict_all(&pairs).unwrap();
            let p = &got[1];
            let want = f32s(&case[mode.name()]);
            let (diff, _) = max_abs_diff(&p.logits, &want);
            eprintln!(
                "{what}: {} window(s), logits {:?} vs torch {:?}, max |diff| {diff:.2e}",
                p.windows,
                &p.logits[..p.logits.len().min(3)],
                &want[..want.len().min(3)]
            );
            assert!(diff <= TOLERANCE, "{what}: logits differ by {diff}");
            assert_eq!(p.windows, windows.len(), "{what}: windows");
            let truncated = case["truncated_query"].as_bool().unwrap();
            assert_eq!(p.truncated, truncated, "{what}: truncated");
            assert_eq!(p.scores, model.activation().apply(&p.logits), "{what}");
            // Each window alone, as the plain forward pass scores it.
            for (w, r) in windows.iter().enumerate() {
                let mut batch = crossenc::PackedBatch::new();
                batch
                    .push(&encoded[w].input_ids, &encoded[w].token_type_ids)
                    .unwrap();
                let logits = model
                    .forward(&batch, &mut crossenc::Scratch::new())
                    .unwrap()
                    .to_vec();
                let (d, _) = max_abs_diff(&logits, &f32s(&r["logits"]));
                assert!(d <= TOLERANCE, "{what}: window {w} logits differ by {d}");
            }
            worst = worst.max(diff);
        }
    }
    worst
}

fn model_entry<'a>(json: &'a Value, path: &str) -> &'a Value {
    json["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in long_docs.json"))
}

#[test]
fn windows_match_pytorch_on_bert_and_xlmr_fixtures() {
    let json = reference();
    for fixture in ["bert-l2-h32", "xlmr-tiny"] {
        let worst = check(
            &fixture_dir(fixture),
            model_entry(&json, &format!("fixture:{fixture}")),
        );
        eprintln!("{fixture}: worst |logit diff| {worst:.2e}");
    }
}

#[test]
fn windows_match_pytorch_on_real_weights_up_to_3000_tokens() {
    let Some(dir) = real_ce_model_dir() else {
        return;
    };
    let json = reference();
    let worst = check(&dir, model_entry(&json, "real:all-MiniLM-L6-v2-ce"));
    eprintln!("all-MiniLM-L6-v2-ce: worst |logit diff| {worst:.2e}");
}

#[test]
fn first_is_the_default_and_scores_the_truncated_pair() {
    let dir = fixture_dir("bert-l2-h32");
    let long = "paris is the capital of france and its largest city ".repeat(6);
    let pairs = [("a question about paris", long.as_str())];
    let plain = CrossEncoder::builder().max_length(32).build(&dir).unwrap();
    assert_eq!(plain.long_docs(), LongDocs::First);
    let first = CrossEncoder::builder()
        .max_length(32)
        .long_docs(LongDocs::First)
        .build(&dir)
        .unwrap();
    let a = plain.predict_all(&pairs).unwrap();
    let b = first.predict_all(&pairs).unwrap();
    assert_eq!(a, b);
    assert_eq!((a[0].windows, a[0].truncated), (1, true));
    // A pair that fits is scored identically in every mode.
    let short = [("a question", "a short answer")];
    for mode in [LongDocs::Max, LongDocs::Mean] {
        let m = CrossEncoder::builder()
            .max_length(32)
            .long_docs(mode)
            .build(&dir)
            .unwrap();
        assert_eq!(
            m.predict_all(&short).unwrap(),
            plain.predict_all(&short).unwrap()
        );
    }
}

#[test]
fn window_stride_zero_is_refused_by_name() {
    let err = CrossEncoder::builder()
        .long_docs(LongDocs::Max)
        .window_stride(0)
        .build(fixture_dir("bert-l2-h32"))
        .err()
        .expect("stride 0 refused");
    assert!(err.to_string().contains("window_stride"), "{err}");
}
