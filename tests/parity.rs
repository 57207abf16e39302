//! crossenc against PyTorch on the tiny random fixtures (tools/make_fixtures.py):
//! token ids, every layer's hidden states, pooler output, logits and
//! sentence-transformers scores.
//!
//! Tolerance: 1e-4 absolute. Our kernels sum in a different order than
//! PyTorch's, which moves an f32 result by a few ulps per reduction (~1e-6
//! here); LayerNorm and a few layers amplify that by at most ~10x. A real bug
//! (a missed bias, a wrong mask, a swapped head) moves values by 1e-2 or more,
//! so 1e-4 separates the two with room on both sides.

mod common;

use common::{fixture_dir, max_abs_diff, reference, FIXTURES};
use crossenc::{CrossEncoder, Encoder, ScoreActivation, Truncation};

const TOL: f32 = 1e-4;

#[test]
fn token_ids_match_transformers() {
    for name in FIXTURES {
        let r = reference(name);
        let model = CrossEncoder::from_dir(fixture_dir(name)).unwrap();
        assert_eq!(model.max_length(), r.max_length, "{name}: max length");
        for (i, p) in r.pairs.iter().enumerate() {
            let e = model.encode_pair(&p.query, &p.document).unwrap();
            assert_eq!(e.input_ids, p.input_ids, "{name} pair {i}: input_ids");
            assert_eq!(
                e.token_type_ids, p.token_type_ids,
                "{name} pair {i}: token_type_ids"
            );
            assert_eq!(e.truncated, p.truncated, "{name} pair {i}: truncated");
        }
    }
}

#[test]
fn only_second_truncation_matches_transformers() {
    for name in FIXTURES {
        let r = reference(name);
        let model = CrossEncoder::builder()
            .truncation(Truncation::OnlySecond)
            .build(fixture_dir(name))
            .unwrap();
        for (i, p) in r.pairs.iter().enumerate() {
            let got = model.encode_pair(&p.query, &p.document);
            match (&p.only_second, got) {
                (Some((ids, types)), Ok(e)) => {
                    assert_eq!(&e.input_ids, ids, "{name} pair {i}");
                    assert_eq!(&e.token_type_ids, types, "{name} pair {i}");
                    assert!(e.input_ids.starts_with(&p.input_ids[..1]));
                }
                (None, Err(crossenc::Error::QueryTooLong { max_length, .. })) => {
                    assert_eq!(max_length, r.max_length)
                }
                (want, got) => panic!("{name} pair {i}: want {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn hidden_states_match_pytorch_layer_by_layer() {
    for name in FIXTURES {
        let r = reference(name);
        let model = CrossEncoder::from_dir(fixture_dir(name)).unwrap();
        let mut worst = 0.0f32;
        for (i, p) in r.pairs.iter().enumerate() {
            let layers = model.hidden_states(&p.query, &p.document).unwrap();
            assert_eq!(layers.len(), r.num_layers + 1, "{name}: layer count");
            // The first layer that diverges names the bug's place.
            for (l, ours) in layers.iter().enumerate() {
                let (shape, want) = &r.tensors[&format!("hidden.{i}.{l}")];
                assert_eq!(shape, &[p.input_ids.len(), r.hidden_size]);
                let (diff, at) = max_abs_diff(ours, want);
                assert!(
                    diff <= TOL,
                    "{name} pair {i}: layer {l} diverges: |diff| {diff:e} at {at} (ours {}, torch {})",
                    ours[at],
                    want[at]
                );
                worst = worst.max(diff);
            }
        }
        println!("{name}: hidden states, max |diff| over all layers and pairs = {worst:.2e}");
    }
}

#[test]
fn pooler_output_matches_pytorch() {
    for name in FIXTURES {
        let r = reference(name);
        let encoder = Encoder::from_dir(fixture_dir(name), None).unwrap();
        let pairs: Vec<(&str, &str)> = r
            .pairs
            .iter()
            .map(|p| (p.query.as_str(), p.document.as_str()))
            .collect();
        let out = encoder.encode_pairs(&pairs).unwrap();
        let mut worst = 0.0f32;
        for (i, o) in out.iter().enumerate() {
            // Only BERT has a pooler; XLM-R and ELECTRA heads start from h[0] directly.
            if let Some((_, want)) = r.tensors.get(&format!("pooled.{i}")) {
                let (diff, _) = max_abs_diff(o.pooler_output.as_ref().unwrap(), want);
                assert!(diff <= TOL, "{name} pair {i}: pooler |diff| {diff:e}");
                worst = worst.max(diff);
            } else {
                assert!(
                    o.pooler_output.is_none(),
                    "{name}: no pooler in the checkpoint"
                );
            }
            let (_, last) = &r.tensors[&format!("hidden.{i}.{}", r.num_layers)];
            let (diff, _) = max_abs_diff(&o.last_hidden_state, last);
            assert!(
                diff <= TOL,
                "{name} pair {i}: last hidden state |diff| {diff:e}"
            );
        }
        println!("{name}: pooler max |diff| = {worst:.2e}");
    }
}

#[test]
fn logits_and_scores_match_pytorch_and_sentence_transformers() {
    for name in FIXTURES {
        let r = reference(name);
        let model = CrossEncoder::from_dir(fixture_dir(name)).unwrap();
        assert_eq!(
            model.activation().name(),
            r.activation,
            "{name}: default activation"
        );
        assert_eq!(model.config().num_labels(), r.num_labels);
        let pairs: Vec<(&str, &str)> = r
            .pairs
            .iter()
            .map(|p| (p.query.as_str(), p.document.as_str()))
            .collect();
        let got = model.predict_all(&pairs).unwrap();
        assert_eq!(got.len(), r.pairs.len(), "{name}: one prediction per pair");
        let (mut worst_logit, mut worst_score) = (0.0f32, 0.0f32);
        for (i, (g, p)) in got.iter().zip(&r.pairs).enumerate() {
            let (dl, _) = max_abs_diff(&g.logits, &p.logits);
            let (ds, _) = max_abs_diff(&g.scores, &p.scores);
            assert!(
                dl <= TOL,
                "{name} pair {i}: logits {:?} vs torch {:?}",
                g.logits,
                p.logits
            );
            assert!(
                ds <= TOL,
                "{name} pair {i}: scores {:?} vs sentence-transformers {:?}",
                g.scores,
                p.scores
            );
            assert_eq!(g.truncated, p.truncated, "{name} pair {i}: truncated");
            worst_logit = worst_logit.max(dl);
            worst_score = worst_score.max(ds);
        }
        println!(
            "{name}: first logits {:?} (torch {:?}); max |logit diff| {worst_logit:.2e}, max |score diff| {worst_score:.2e}",
            got[0].logits, r.pairs[0].logits
        );
    }
}

#[test]
fn activation_override_applies_to_logits() {
    let name = "bert-l2-h32";
    let r = reference(name);
    let pairs: Vec<(&str, &str)> = r
        .pairs
        .iter()
        .map(|p| (p.query.as_str(), p.document.as_str()))
        .collect();
    // (Softmax over this one-label model is refused: tests/errors.rs.)
    for act in [ScoreActivation::Identity, ScoreActivation::Sigmoid] {
        let model = CrossEncoder::builder()
            .activation(act)
            .build(fixture_dir(name))
            .unwrap();
        let got = model.predict_all(&pairs).unwrap();
        assert_eq!(got.len(), r.pairs.len());
        for (g, p) in got.iter().zip(&r.pairs) {
            let want = match act {
                ScoreActivation::Identity => p.logits[0],
                _ => 1.0 / (1.0 + (-p.logits[0]).exp()),
            };
            assert!(
                (g.scores[0] - want).abs() <= TOL,
                "{act:?}: {} vs {want}",
                g.scores[0]
            );
        }
    }
}

#[test]
fn scores_do_not_depend_on_batching_order_or_threads() {
    let name = "bert-l2-h32";
    let r = reference(name);
    let pairs: Vec<(&str, &str)> = r
        .pairs
        .iter()
        .map(|p| (p.query.as_str(), p.document.as_str()))
        .collect();
    let base = CrossEncoder::from_dir(fixture_dir(name))
        .unwrap()
        .predict(&pairs)
        .unwrap();
    // (pairs per batch, tokens per batch, threads): from one pair at a time to everything at once.
    for (batch, budget, threads) in [
        (1, 2048, 1),
        (3, 2048, 2),
        (7, 1, 1),
        (64, 100, 2),
        (64, 1 << 20, 2),
    ] {
        let model = CrossEncoder::builder()
            .batch_size(batch)
            .token_budget(budget)
            .threads(threads)
            .build(fixture_dir(name))
            .unwrap();
        let got = model.predict(&pairs).unwrap();
        let (diff, at) = max_abs_diff(&got, &base);
        assert!(
            diff <= 1e-5,
            "batch {batch}, budget {budget}, threads {threads}: pair {at} moved by {diff:e}"
        );
        let reversed: Vec<_> = pairs.iter().rev().copied().collect();
        let mut back = model.predict(&reversed).unwrap();
        back.reverse();
        let (diff, at) = max_abs_diff(&back, &base);
        assert!(diff <= 1e-5, "reversed order: pair {at} moved by {diff:e}");
    }
}
