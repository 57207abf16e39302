//! The one runner under every head: each head gives the same results however
//! its inputs are cut into batches and chunks (batch size, token budget,
//! more inputs than one tokenization chunk), reports progress up to the
//! total, and a malformed `PackedBatch` is an error, never a score.

mod common;

use common::{emulated, fixture_dir};
use crossenc::{
    CrossEncoder, Encoder, Error, PackedBatch, Precision, Progress, Scratch, SentenceEmbedder,
};

/// 1,100 short texts: more than two tokenization chunks (512).
fn texts() -> Vec<String> {
    (0..1100)
        .map(|i| {
            format!(
                "text number {i} about {}",
                ["paris", "rivers", "the sea"][i % 3]
            )
        })
        .collect()
}

#[test]
fn cross_encoder_scores_do_not_depend_on_batching() {
    let dir = fixture_dir("bert-l2-h32");
    let texts = texts();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| ("a query", t.as_str())).collect();
    let base = CrossEncoder::from_dir(&dir)
        .unwrap()
        .predict_all(&pairs)
        .unwrap();
    for (batch_size, budget) in [(1, 2048), (7, 64), (256, 100_000)] {
        let model = CrossEncoder::builder()
            .batch_size(batch_size)
            .token_budget(budget)
            .build(&dir)
            .unwrap();
        let mut reports: Vec<Progress> = Vec::new();
        let got = model
            .predict_all_with_progress(&pairs, |p| reports.push(p))
            .unwrap();
        assert_eq!(got, base, "batch size {batch_size}, budget {budget}");
        assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
        assert_eq!(
            reports.last().map(|p| (p.done, p.total)),
            Some((1100, 1100))
        );
        if batch_size == 1 {
            assert_eq!(reports.len(), 1100, "one report per batch");
        }
    }
}

#[test]
fn embedder_and_encoder_do_not_depend_on_batching() {
    // In int8 (and bf16) a batch goes through the layers one group of
    // sequences at a time, in f32 all at once (encoder::pass_tokens): both
    // must give every text the same bits whatever batch it is in.
    for precision in [Precision::F32, Precision::Int8] {
        embedder_and_encoder_in(precision);
    }
}

fn embedder_and_encoder_in(precision: Precision) {
    let texts = texts();
    let dir = fixture_dir("st-mean");
    let base = SentenceEmbedder::builder()
        .precision(precision)
        .build(&dir)
        .unwrap()
        .embed(&texts)
        .unwrap();
    assert_eq!(base.len(), texts.len());
    let small = SentenceEmbedder::builder()
        .precision(precision)
        .batch_size(3)
        .token_budget(50)
        .build(&dir)
        .unwrap();
    assert_eq!(small.embed(&texts).unwrap(), base, "{precision:?}");
    let mut streamed = Vec::new();
    let mut last = None;
    small
        .embed_each(&texts, |p| last = Some(p), |i, v| streamed.push((i, v)))
        .unwrap();
    assert!(
        streamed.iter().enumerate().all(|(n, (i, _))| n == *i),
        "in order"
    );
    assert!(streamed
        .into_iter()
        .map(|(_, v)| v)
        .eq(base.iter().cloned()));
    assert_eq!(
        last,
        Some(Progress {
            done: 1100,
            total: 1100
        })
    );

    let encoder = Encoder::builder()
        .precision(precision)
        .build(fixture_dir("bert-l2-h32"))
        .unwrap();
    let all = encoder.encode_texts(&texts).unwrap();
    assert!(all.iter().all(|o| o.pooler_output.is_some()), "a pooler");
    let small = Encoder::builder()
        .precision(precision)
        .token_budget(40)
        .batch_size(5)
        .build(fixture_dir("bert-l2-h32"))
        .unwrap();
    assert_eq!(small.encode_texts(&texts).unwrap(), all, "{precision:?}");
    for i in [0, 511, 512, 1099] {
        let alone = encoder.encode_texts(&[&texts[i]]).unwrap();
        assert_eq!(alone[0], all[i], "text {i} alone, {precision:?}");
    }
}

#[test]
fn malformed_packed_batch_is_refused() {
    // (what, input_ids, token_type_ids, starts, what the error says)
    type Case = (&'static str, Vec<u32>, Vec<u32>, Vec<usize>, &'static str);
    let cases: [Case; 5] = [
        (
            "one type id short",
            vec![101, 5, 102],
            vec![0, 0],
            vec![0, 3],
            "type ids",
        ),
        (
            "starts not at 0",
            vec![101, 102],
            vec![0, 0],
            vec![1, 2],
            "begin at 0",
        ),
        (
            "starts decrease",
            vec![101, 5, 102],
            vec![0; 3],
            vec![0, 2, 1, 3],
            "decreases",
        ),
        (
            "starts end early",
            vec![101, 5, 102],
            vec![0; 3],
            vec![0, 2],
            "end at the token count",
        ),
        ("starts empty", vec![], vec![], vec![], "begin at 0"),
    ];
    for (what, ids, types, starts, says) in cases {
        match PackedBatch::from_parts(ids, types, starts) {
            Err(e @ Error::InvalidBatch { .. }) => {
                assert!(e.to_string().contains(says), "{what}: {e}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let mut batch = PackedBatch::new();
    assert!(matches!(
        batch.push(&[101, 102], &[0]),
        Err(Error::InvalidBatch { .. })
    ));
    assert_eq!(
        batch,
        PackedBatch::new(),
        "a refused push leaves the batch as it was"
    );

    // Well-formed parts the model cannot read are refused by `forward`.
    let model = CrossEncoder::from_dir(fixture_dir("bert-l2-h32")).unwrap();
    let mut scratch = Scratch::new();
    let empty_sequence =
        PackedBatch::from_parts(vec![101, 102], vec![0, 0], vec![0, 0, 2]).unwrap();
    assert!(matches!(
        model.forward(&empty_sequence, &mut scratch),
        Err(Error::InvalidBatch { .. })
    ));
    let too_long = PackedBatch::from_parts(vec![101; 600], vec![0; 600], vec![0, 600]).unwrap();
    assert!(matches!(
        model.forward(&too_long, &mut scratch),
        Err(Error::InvalidBatch { .. })
    ));
    let bad_type = PackedBatch::from_parts(vec![101, 102], vec![0, 9], vec![0, 2]).unwrap();
    assert!(matches!(
        model.forward(&bad_type, &mut scratch),
        Err(Error::TokenOutOfRange { .. })
    ));
    // The same tokens through `from_parts` and `push` score the same.
    let e = model.encode_pair("a query", "a document").unwrap();
    let n = e.input_ids.len();
    let parts =
        PackedBatch::from_parts(e.input_ids.clone(), e.token_type_ids.clone(), vec![0, n]).unwrap();
    let mut pushed = PackedBatch::new();
    pushed.push(&e.input_ids, &e.token_type_ids).unwrap();
    assert_eq!(parts, pushed);
    let want = model.predict_all(&[("a query", "a document")]).unwrap()[0]
        .logits
        .clone();
    assert_eq!(model.forward(&parts, &mut scratch).unwrap(), &want[..]);
}

#[test]
fn reduced_precision_scores_do_not_depend_on_batch_order_or_threads() {
    // int8 activations are quantized per token, never per batch, bf16 ones
    // rounded element by element, and both GEMMs sum in an order that does
    // not depend on a row's neighbours or the thread count: so must the
    // scores be.
    // Under an emulator (~100x slower) 24 pairs: still 4 batches of up to 7.
    let n = if emulated() { 24 } else { 300 };
    if n < 300 {
        eprintln!("emulated: {n} pairs instead of 300");
    }
    for precision in [Precision::Int8, Precision::Bf16] {
        let dir = fixture_dir("tinybert-h128");
        let texts = texts();
        let pairs: Vec<(&str, &str)> = texts[..n].iter().map(|t| ("a query", t.as_str())).collect();
        let build = |threads: usize, batch_size: usize, budget: usize| {
            CrossEncoder::builder()
                .precision(precision)
                .threads(threads)
                .batch_size(batch_size)
                .token_budget(budget)
                .build(&dir)
                .unwrap()
        };
        let base = build(1, 256, 2048).predict_all(&pairs).unwrap();
        let reversed: Vec<(&str, &str)> = pairs.iter().rev().copied().collect();
        for (threads, batch_size, budget) in [(2, 1, 2048), (3, 7, 64), (2, 256, 100_000)] {
            let model = build(threads, batch_size, budget);
            assert_eq!(
                model.predict_all(&pairs).unwrap(),
                base,
                "{threads} threads, batch {batch_size}"
            );
            let mut back = model.predict_all(&reversed).unwrap();
            back.reverse();
            assert_eq!(back, base, "reversed order, {threads} threads");
        }
        // And the reduced precision is not f32 in disguise.
        let f32 = CrossEncoder::from_dir(&dir)
            .unwrap()
            .predict_all(&pairs)
            .unwrap();
        assert_ne!(f32, base, "{}", precision.name());
    }
}

#[test]
fn predictions_stream_out_as_their_batches_finish() {
    // Each pair is handed out right after the batch that completes it, not
    // at the end of the call (or of a tokenization chunk).
    let model = CrossEncoder::builder()
        .batch_size(4)
        .build(fixture_dir("bert-l2-h32"))
        .unwrap();
    let texts = texts();
    let pairs: Vec<(&str, &str)> = texts[..40].iter().map(|t| ("q", t.as_str())).collect();
    let events = std::sync::Mutex::new(Vec::new());
    model
        .predict_each(
            &pairs,
            |p| events.lock().unwrap().push(("progress", p.done)),
            |i, _| events.lock().unwrap().push(("pair", i)),
        )
        .unwrap();
    let events = events.into_inner().unwrap();
    let pairs_out: Vec<usize> = events
        .iter()
        .filter(|e| e.0 == "pair")
        .map(|e| e.1)
        .collect();
    assert_eq!(
        pairs_out,
        (0..40).collect::<Vec<_>>(),
        "every pair once, in order"
    );
    // 10 batches of 4: after each, its 4 pairs, then the progress report.
    let mut want = Vec::new();
    for b in 0..10 {
        want.extend((4 * b..4 * b + 4).map(|i| ("pair", i)));
        want.push(("progress", 4 * b + 4));
    }
    assert_eq!(events, want);
    let all = model.predict_all(&pairs).unwrap();
    let mut each = Vec::new();
    model
        .predict_each(&pairs, |_| {}, |_, p| each.push(p))
        .unwrap();
    assert_eq!(each, all);
}
