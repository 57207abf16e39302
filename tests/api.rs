//! The public API's promises: ranking order, thread safety.

mod common;

use std::sync::Arc;

use common::fixture_dir;
use crossenc::{rank_scores, CrossEncoder, Ranked};

#[test]
fn crossencoder_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CrossEncoder>();
    assert_send_sync::<crossenc::Encoder>();
}

#[test]
fn one_model_serves_many_threads() {
    let model = Arc::new(CrossEncoder::from_dir(fixture_dir("bert-l2-h32")).unwrap());
    let pairs: Vec<(String, String)> = (0..12)
        .map(|i| (format!("query {i}"), format!("document number {i}")))
        .collect();
    let want = model.predict(&pairs).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (model, pairs) = (Arc::clone(&model), pairs.clone());
            std::thread::spawn(move || model.predict(&pairs).unwrap())
        })
        .collect();
    for h in handles {
        let got = h.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-6));
    }
}

#[test]
fn rank_sorts_descending_with_stable_ties() {
    let scores = [0.5, 0.9, 0.5, 0.1, 0.9, 0.5];
    let ranked = rank_scores(&scores, None, f32::NEG_INFINITY);
    let order: Vec<usize> = ranked.iter().map(|r| r.index).collect();
    assert_eq!(order, [1, 4, 0, 2, 5, 3]);
    assert_eq!(rank_scores(&scores, Some(2), f32::NEG_INFINITY).len(), 2);
    let above: Vec<usize> = rank_scores(&scores, None, 0.5)
        .iter()
        .map(|r| r.index)
        .collect();
    assert_eq!(above, [1, 4, 0, 2, 5]);
    assert_eq!(rank_scores(&scores, Some(0), 0.0), Vec::<Ranked>::new());
}

#[test]
fn rank_matches_predict_and_keeps_duplicate_documents_in_order() {
    let model = CrossEncoder::from_dir(fixture_dir("bert-l2-h32")).unwrap();
    let docs = [
        "the same text",
        "another text",
        "the same text",
        "a third one",
        "the same text",
    ];
    let scores = model
        .predict(&docs.iter().map(|d| ("a query", *d)).collect::<Vec<_>>())
        .unwrap();
    let ranked = model.rank("a query", &docs, None).unwrap();
    assert_eq!(ranked.len(), docs.len());
    for w in ranked.windows(2) {
        assert!(w[0].score >= w[1].score);
        if w[0].score == w[1].score {
            assert!(
                w[0].index < w[1].index,
                "tie out of input order: {ranked:?}"
            );
        }
    }
    for r in &ranked {
        assert_eq!(r.score, scores[r.index]);
    }
    let same: Vec<usize> = ranked
        .iter()
        .filter(|r| docs[r.index] == "the same text")
        .map(|r| r.index)
        .collect();
    assert_eq!(same, [0, 2, 4]);
    let top = model
        .rank_with_threshold("a query", &docs, Some(2), ranked[1].score)
        .unwrap();
    assert_eq!(top, ranked[..2]);
}
