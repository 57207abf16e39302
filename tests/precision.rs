//! Reduced precision against f32, on the real all-MiniLM-L6-v2 weights and
//! the corpora in tests/data/precision (1,000 paragraphs of CPython's
//! documentation, 20 queries; tools/make_precision_reference.py wrote them
//! with PyTorch's f32 results): the figures issue 12 sets.
//!
//! - sentence embeddings: every text's cosine to f32 at least 0.999 (int8)
//!   or 0.9999 (bf16); retrieval (20 queries x 1,000 documents by cosine):
//!   int8's mean top-10 overlap with f32 >= 9.7, no query below 9, mean
//!   Spearman >= 0.999; bf16's top-10 identical on every query but one
//!   (a near-tie that PyTorch's own bf16 rounding breaks too: see below);
//! - the cross-encoder (the benchmark head on the same encoder) ranking
//!   1,000 documents: Spearman >= 0.998 and top-10 overlap >= 9 (int8),
//!   Spearman >= 0.9999 and the same top-10 (bf16).
//!
//! Our f32 is checked against the same PyTorch results first (cosine at
//! least 0.99999), so the reduced-precision figures measure their own error.
//! bf16 is measured on the path this CPU runs (`vdpbf16ps`, which rounds the
//! activations to bf16 too, or the widening path, which keeps them f32).

mod common;

use std::collections::HashMap;

use common::{data_dir, read_tensors, real_ce_model_dir, real_model_dir};
use crossenc::{CrossEncoder, Precision, SentenceEmbedder};
use serde_json::Value;

struct Corpus {
    queries: Vec<String>,
    documents: Vec<String>,
    rank_query: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

fn corpus() -> Corpus {
    let dir = data_dir().join("precision");
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("corpus.json")).unwrap()).unwrap();
    let strings = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let c = Corpus {
        queries: strings("queries"),
        documents: strings("documents"),
        rank_query: json["rank_query"].as_str().unwrap().to_string(),
        tensors: read_tensors(&dir.join("f32.safetensors")),
    };
    assert_eq!((c.queries.len(), c.documents.len()), (20, 1000));
    c
}

fn rows(t: &(Vec<usize>, Vec<f32>)) -> Vec<Vec<f32>> {
    t.1.chunks_exact(t.0[1]).map(<[f32]>::to_vec).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        for &o in &order[i..=j] {
            r[o] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 + 1.0) / 2.0;
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        num += (x - mean) * (y - mean);
        da += (x - mean).powi(2);
        db += (y - mean).powi(2);
    }
    num / (da * db).sqrt()
}

fn top10(x: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[b].total_cmp(&x[a]));
    order.truncate(10);
    order
}

fn overlap(a: &[usize], b: &[usize]) -> usize {
    a.iter().filter(|i| b.contains(i)).count()
}

/// Retrieval by cosine: per query, (top-10 overlap, Spearman) of `got` against `want`.
fn retrieval(
    want: (&[Vec<f32>], &[Vec<f32>]),
    got: (&[Vec<f32>], &[Vec<f32>]),
) -> Vec<(usize, f64)> {
    want.0
        .iter()
        .zip(got.0)
        .map(|(wq, gq)| {
            let w: Vec<f64> = want.1.iter().map(|d| cosine(wq, d)).collect();
            let g: Vec<f64> = got.1.iter().map(|d| cosine(gq, d)).collect();
            let top = overlap(&top10(&w), &top10(&g));
            if top < 10 {
                report_changed_top10("a query's", "cosines", &w, top);
            }
            (top, spearman(&w, &g))
        })
        .collect()
}

/// How close the reference itself came to a different top-10, for a
/// ranking whose top-10 changed: its scores at ranks 10 and 11.
fn report_changed_top10(what: &str, scores: &str, want: &[f64], kept: usize) {
    let mut sorted = want.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    eprintln!(
        "  {what} top-10 changed ({kept} of 10 kept); f32 {scores} at ranks 10 and 11: {:.6} and {:.6} (gap {:.1e})",
        sorted[9],
        sorted[10],
        sorted[9] - sorted[10]
    );
}

fn embed(dir: &std::path::Path, precision: Precision, texts: &[String]) -> Vec<Vec<f32>> {
    let embedder = SentenceEmbedder::builder()
        .precision(precision)
        .build(dir)
        .unwrap();
    assert_eq!(embedder.max_length(), 256);
    embedder.embed(texts).unwrap()
}

#[test]
fn reduced_precision_sentence_embeddings_keep_retrieval() {
    let Some(dir) = real_model_dir() else { return };
    let c = corpus();
    let want_q = rows(&c.tensors["query_embeddings"]);
    let want_d = rows(&c.tensors["document_embeddings"]);
    for precision in [Precision::F32, Precision::Int8, Precision::Bf16] {
        let got_q = embed(&dir, precision, &c.queries);
        let got_d = embed(&dir, precision, &c.documents);
        assert_eq!((got_q.len(), got_d.len()), (want_q.len(), want_d.len()));
        let worst = want_q
            .iter()
            .chain(&want_d)
            .zip(got_q.iter().chain(&got_d))
            .map(|(w, g)| cosine(w, g))
            .fold(f64::INFINITY, f64::min);
        let per_query = retrieval((&want_q, &want_d), (&got_q, &got_d));
        let n = per_query.len() as f64;
        let mean_overlap = per_query.iter().map(|p| p.0 as f64).sum::<f64>() / n;
        let min_overlap = per_query.iter().map(|p| p.0).min().unwrap();
        let mean_spearman = per_query.iter().map(|p| p.1).sum::<f64>() / n;
        eprintln!(
            "{}: worst cosine to PyTorch f32 {worst:.6} over 1,020 texts; retrieval top-10 overlap mean {mean_overlap:.2}, min {min_overlap}; mean Spearman {mean_spearman:.5}",
            precision.name()
        );
        match precision {
            Precision::F32 => {
                assert!(worst >= 0.99999, "f32 cosine {worst}");
                assert_eq!(min_overlap, 10);
            }
            Precision::Int8 => {
                assert!(worst >= 0.999, "int8 cosine {worst}");
                assert!(
                    mean_overlap >= 9.7,
                    "int8 mean top-10 overlap {mean_overlap}"
                );
                assert!(min_overlap >= 9, "int8 min top-10 overlap {min_overlap}");
                assert!(mean_spearman >= 0.999, "int8 mean Spearman {mean_spearman}");
            }
            Precision::Bf16 => {
                assert!(worst >= 0.9999, "bf16 cosine {worst}");
                // Issue 12 asks for the identical top-10 on every query. bf16
                // weights alone cannot give it here: PyTorch itself, with the
                // encoder's linear weights rounded to bf16 and everything else
                // f32 (tools/bf16_fake_quant.py), keeps 9 of 10 on one query
                // (its 10th and 11th documents are 7.5e-5 apart in cosine)
                // and 10 on the other 19, as we do on both bf16 paths.
                assert!(min_overlap >= 9, "bf16 min top-10 overlap {min_overlap}");
                assert!(
                    mean_overlap >= 9.95,
                    "bf16 mean top-10 overlap {mean_overlap}"
                );
                assert!(
                    mean_spearman >= 0.9999,
                    "bf16 mean Spearman {mean_spearman}"
                );
            }
        }
    }
}

/// The 27 texts of tests/data/real/all-MiniLM-L6-v2-embeddings.json
/// (sentence-transformers' f32 embeddings, by
/// tools/make_embedding_reference.py): the empty and whitespace-only texts,
/// one letter, mixed scripts, long ones. In a text of a few tokens the
/// special tokens make up most of the mean, so int8's error on them is not
/// averaged away: before int8 smoothed the linears reading a layer norm
/// (src/model/linear.rs, SMOOTH_ALPHA) the empty text's cosine was 0.99781.
#[test]
fn reduced_precision_keeps_short_and_odd_texts() {
    let Some(dir) = real_model_dir() else { return };
    let json: Value = serde_json::from_slice(
        &std::fs::read(data_dir().join("real/all-MiniLM-L6-v2-embeddings.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<String> = serde_json::from_value(json["texts"].clone()).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(json["embeddings"].clone()).unwrap();
    assert_eq!((texts.len(), want.len()), (27, 27));
    for (precision, bound) in [(Precision::Int8, 0.999), (Precision::Bf16, 0.9999)] {
        let got = embed(&dir, precision, &texts);
        let (worst, text) = want
            .iter()
            .zip(&got)
            .zip(&texts)
            .map(|((w, g), t)| (cosine(w, g), t))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap();
        eprintln!(
            "{}: worst cosine to PyTorch f32 {worst:.6} over the 27 texts ({text:?})",
            precision.name()
        );
        assert!(
            worst >= bound,
            "{}: cosine {worst} on {text:?}",
            precision.name()
        );
    }
}

#[test]
fn reduced_precision_cross_encoder_keeps_the_ranking() {
    let Some(dir) = real_ce_model_dir() else {
        return;
    };
    let c = corpus();
    let want: Vec<f64> = c.tensors["rank_logits"]
        .1
        .iter()
        .map(|&x| x as f64)
        .collect();
    let pairs: Vec<(&str, &str)> = c
        .documents
        .iter()
        .map(|d| (c.rank_query.as_str(), d.as_str()))
        .collect();
    for precision in [Precision::F32, Precision::Int8, Precision::Bf16] {
        let model = CrossEncoder::builder()
            .precision(precision)
            .build(&dir)
            .unwrap();
        let got: Vec<f64> = model
            .predict_all(&pairs)
            .unwrap()
            .iter()
            .map(|p| p.logits[0] as f64)
            .collect();
        assert_eq!(got.len(), want.len());
        let rho = spearman(&want, &got);
        let top = overlap(&top10(&want), &top10(&got));
        let diffs: Vec<f64> = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).collect();
        let mean_diff = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let max_diff = diffs.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "{}: cross-encoder ranking of 1,000 documents: Spearman {rho:.5}, top-10 overlap {top}; |logit - f32| mean {mean_diff:.1e}, max {max_diff:.1e}",
            precision.name()
        );
        if top < 10 {
            report_changed_top10("the", "logits", &want, top);
        }
        match precision {
            Precision::F32 => assert!(rho >= 0.99999 && top == 10, "f32: {rho} {top}"),
            Precision::Int8 => {
                assert!(rho >= 0.998, "int8 Spearman {rho}");
                assert!(top >= 9, "int8 top-10 overlap {top}");
            }
            Precision::Bf16 => {
                assert!(rho >= 0.9999, "bf16 Spearman {rho}");
                assert_eq!(top, 10, "bf16 top-10 overlap {top}");
            }
        }
    }
}

#[test]
fn reduced_precision_error_layer_by_layer() {
    // Where int8's and bf16's error enters and how it grows: the hidden state
    // after every layer, against f32, on three real pairs (relative RMS error
    // and worst token cosine). It grows with depth but stays small; what is
    // asserted is the last layer's worst cosine, which the embedding figures
    // above depend on.
    let Some(dir) = real_ce_model_dir() else {
        return;
    };
    let c = corpus();
    let f32 = CrossEncoder::from_dir(&dir).unwrap();
    for precision in [Precision::Int8, Precision::Bf16] {
        let reduced = CrossEncoder::builder()
            .precision(precision)
            .build(&dir)
            .unwrap();
        let name = precision.name();
        let h = f32.config().hidden_size;
        let layers = f32.config().num_hidden_layers + 1;
        let (mut rel, mut worst) = (vec![0.0f64; layers], vec![1.0f64; layers]);
        for d in &c.documents[..3] {
            let a = f32.hidden_states(&c.rank_query, d).unwrap();
            let b = reduced.hidden_states(&c.rank_query, d).unwrap();
            assert_eq!((a.len(), b.len()), (layers, layers));
            for l in 0..layers {
                let (mut err, mut norm) = (0.0, 0.0);
                for (x, y) in a[l].iter().zip(&b[l]) {
                    err += (*x as f64 - *y as f64).powi(2);
                    norm += (*x as f64).powi(2);
                }
                rel[l] = rel[l].max((err / norm).sqrt());
                for (x, y) in a[l].chunks_exact(h).zip(b[l].chunks_exact(h)) {
                    worst[l] = worst[l].min(cosine(x, y));
                }
            }
        }
        for l in 0..layers {
            eprintln!(
                "{name} after {}: relative RMS error {:.2e}, worst token cosine {:.6}",
                if l == 0 {
                    "embeddings".to_string()
                } else {
                    format!("layer {l}")
                },
                rel[l],
                worst[l]
            );
        }
        assert_eq!(rel[0], 0.0, "the embeddings are f32 in every precision");
        assert!(
            worst[layers - 1] >= 0.99,
            "{name}: last layer worst token cosine {}",
            worst[layers - 1]
        );
    }
}
