//! Bad input: every failure class gives a clear error, none panics.

mod common;

use common::{fixture_dir, ScratchModel};
use crossenc::{CrossEncoder, Error};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// Loads `dir` and returns the error, which must exist.
fn load_err(dir: &std::path::Path) -> Error {
    match CrossEncoder::from_dir(dir) {
        Ok(_) => panic!("{} loaded, but should not have", dir.display()),
        Err(e) => {
            println!("{}: {e}", dir.display());
            e
        }
    }
}

/// Rewrites model.safetensors, letting `edit` change, drop or keep each tensor.
fn edit_tensors(
    m: &ScratchModel,
    edit: impl Fn(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<(Dtype, Vec<usize>, Vec<u8>)>,
) {
    let path = m.path("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter_map(|(name, v)| {
            edit(&name, v.dtype(), v.shape().to_vec(), v.data().to_vec())
                .map(|(d, s, b)| (name, d, s, b))
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = kept
        .iter()
        .map(|(name, d, s, b)| (name.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Pads model.safetensors' JSON header with `extra` spaces, so every tensor's
/// data starts `extra` bytes later: misaligned for f32 when `extra % 4 != 0`.
fn pad_header(m: &ScratchModel, extra: usize) {
    let path = m.path("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut padded = ((n + extra) as u64).to_le_bytes().to_vec();
    padded.extend_from_slice(&bytes[8..8 + n]);
    padded.extend(std::iter::repeat_n(b' ', extra));
    padded.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(&path, padded).unwrap();
}

#[test]
fn missing_folder_and_files() {
    let e = load_err(std::path::Path::new("/nonexistent/model"));
    assert!(matches!(e, Error::MissingFile { .. }), "{e:?}");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        let m = ScratchModel::copy_of("bert-l2-h32", &format!("missing-{file}"));
        std::fs::remove_file(m.path(file)).unwrap();
        let e = load_err(&m.dir);
        assert!(
            matches!(&e, Error::MissingFile { path } if path.ends_with(file)),
            "{e:?}"
        );
        assert!(e.to_string().contains(file));
    }
}

#[test]
fn malformed_config_json() {
    let m = ScratchModel::copy_of("bert-l2-h32", "bad-config");
    std::fs::write(m.path("config.json"), b"{\"model_type\": \"bert\", ").unwrap();
    let e = load_err(&m.dir);
    assert!(
        matches!(e, Error::Config { .. }) && e.to_string().contains("malformed JSON"),
        "{e}"
    );
    std::fs::write(m.path("config.json"), b"[1, 2]").unwrap();
    assert!(matches!(load_err(&m.dir), Error::Config { .. }));
}

/// Replaces one config key's value.
fn with_config(key: &str, value: serde_json::Value, tag: &str) -> ScratchModel {
    let m = ScratchModel::copy_of("bert-l2-h32", tag);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path("config.json")).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(m.path("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    m
}

#[test]
fn unsupported_config_values_are_named() {
    let cases = [
        ("model_type", serde_json::json!("gpt2"), "model_type"),
        ("hidden_act", serde_json::json!("swish"), "hidden_act"),
        (
            "position_embedding_type",
            serde_json::json!("relative_key"),
            "position_embedding_type",
        ),
        (
            "sbert_ce_default_activation_function",
            serde_json::json!("torch.nn.modules.activation.Tanh"),
            "sbert_ce_default_activation_function",
        ),
    ];
    for (i, (key, value, named)) in cases.into_iter().enumerate() {
        let m = with_config(key, value.clone(), &format!("unsupported-{i}"));
        let e = load_err(&m.dir);
        assert!(matches!(e, Error::Unsupported { .. }), "{key}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(named) && msg.contains(value.as_str().unwrap()),
            "{msg}"
        );
    }
    // A key of the wrong type, and a required key missing.
    let m = with_config("hidden_size", serde_json::json!("32"), "wrong-type");
    assert!(load_err(&m.dir).to_string().contains("hidden_size"));
    let m = with_config("num_attention_heads", serde_json::json!(5), "heads");
    assert!(load_err(&m.dir).to_string().contains("not a multiple"));
}

#[test]
fn truncated_or_garbage_safetensors() {
    let m = ScratchModel::copy_of("bert-l2-h32", "truncated");
    let bytes = std::fs::read(m.path("model.safetensors")).unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(m.path("model.safetensors"), &bytes[..cut]).unwrap();
        let e = load_err(&m.dir);
        assert!(
            matches!(e, Error::Safetensors { .. }),
            "cut at {cut}: {e:?}"
        );
    }
    std::fs::write(
        m.path("model.safetensors"),
        b"\xff\x00\x00\x00\x00\x00\x00\x00garbage!",
    )
    .unwrap();
    assert!(matches!(load_err(&m.dir), Error::Safetensors { .. }));
}

#[test]
fn missing_tensor_is_named() {
    let m = ScratchModel::copy_of("bert-l2-h32", "missing-tensor");
    edit_tensors(&m, |name, d, s, b| {
        (!name.ends_with("layer.1.attention.self.key.weight")).then_some((d, s, b))
    });
    let e = load_err(&m.dir);
    assert!(
        matches!(&e, Error::MissingTensor { name, .. } if name == "encoder.layer.1.attention.self.key.weight"),
        "{e:?}"
    );
    // An encoder without a classifier is not a cross-encoder; the error says so.
    let m = ScratchModel::copy_of("bert-l2-h32", "no-classifier");
    edit_tensors(&m, |name, d, s, b| {
        (!name.starts_with("classifier")).then_some((d, s, b))
    });
    let e = load_err(&m.dir);
    assert!(e.to_string().contains("classification head"), "{e}");
}

#[test]
fn wrong_shape_gives_expected_and_found() {
    let m = ScratchModel::copy_of("bert-l2-h32", "wrong-shape");
    edit_tensors(&m, |name, d, s, b| {
        if name.ends_with("pooler.dense.bias") {
            Some((d, vec![16], b[..b.len() / 2].to_vec()))
        } else {
            Some((d, s, b))
        }
    });
    let e = load_err(&m.dir);
    match &e {
        Error::TensorShape {
            name,
            expected,
            found,
        } => {
            assert!(name.ends_with("pooler.dense.bias"));
            assert_eq!(
                (expected.as_slice(), found.as_slice()),
                (&[32][..], &[16][..])
            );
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn integer_typed_weights_are_refused() {
    let m = ScratchModel::copy_of("bert-l2-h32", "int-weights");
    edit_tensors(&m, |name, d, s, b| {
        if name.ends_with("embeddings.LayerNorm.weight") {
            Some((Dtype::I32, s, b))
        } else {
            Some((d, s, b))
        }
    });
    let e = load_err(&m.dir);
    assert!(
        matches!(&e, Error::TensorDtype { dtype, .. } if dtype == "I32"),
        "{e:?}"
    );
}

#[test]
fn non_finite_weights_are_refused() {
    // Decision: a NaN or infinite weight makes every score NaN, silently; we
    // refuse the model at load and name the tensor instead.
    for (tag, bad) in [("nan", f32::NAN), ("inf", f32::INFINITY)] {
        let m = ScratchModel::copy_of("bert-l2-h32", tag);
        edit_tensors(&m, |name, d, s, mut b| {
            if name.ends_with("layer.0.output.dense.weight") {
                b[12..16].copy_from_slice(&bad.to_le_bytes());
            }
            Some((d, s, b))
        });
        let e = load_err(&m.dir);
        assert!(
            matches!(&e, Error::NonFiniteWeight { index: 3, .. }),
            "{e:?}"
        );
    }
}

#[test]
fn non_finite_embeddings_are_refused_in_place_or_copied() {
    // The word embeddings are read in place from the map when aligned and
    // copied when not; both ways check them.
    for extra in [0, 1] {
        let m = ScratchModel::copy_of("bert-l2-h32", &format!("nan-emb-{extra}"));
        edit_tensors(&m, |name, d, s, mut b| {
            if name.ends_with("word_embeddings.weight") {
                b[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
            }
            Some((d, s, b))
        });
        pad_header(&m, extra);
        let e = load_err(&m.dir);
        assert!(
            matches!(&e, Error::NonFiniteWeight { name, index: 10 } if name.ends_with("word_embeddings.weight")),
            "{e:?}"
        );
    }
}

#[test]
fn misaligned_tensor_data_scores_the_same() {
    // safetensors writers pad the header so f32 data is aligned, and then we
    // read it in place; a file without that padding is copied instead.
    let pairs = [
        ("capital of France", "Paris is the capital of France."),
        ("how do tides work", "The moon's gravity pulls the oceans."),
    ];
    let expected = CrossEncoder::from_dir(fixture_dir("bert-l2-h32"))
        .unwrap()
        .predict(&pairs)
        .unwrap();
    for extra in [1, 2, 3, 4] {
        let m = ScratchModel::copy_of("bert-l2-h32", &format!("pad-{extra}"));
        pad_header(&m, extra);
        let scores = CrossEncoder::from_dir(&m.dir)
            .unwrap()
            .predict(&pairs)
            .unwrap();
        assert_eq!(scores, expected, "header padded by {extra} bytes");
    }
}

#[test]
fn empty_pair_list_gives_empty_result() {
    // An empty batch is valid input for the library (as in sentence-transformers);
    // the CLI refuses empty input with a message (tests/cli.rs).
    let model = CrossEncoder::from_dir(fixture_dir("bert-l2-h32")).unwrap();
    let none: [(&str, &str); 0] = [];
    assert!(model.predict(&none).unwrap().is_empty());
    let no_docs: [&str; 0] = [];
    assert!(model.rank("q", &no_docs, Some(3)).unwrap().is_empty());
}

#[test]
fn bad_options_are_refused() {
    let dir = fixture_dir("bert-l2-h32");
    let e = CrossEncoder::builder()
        .max_length(65)
        .build(&dir)
        .err()
        .unwrap();
    assert!(e.to_string().contains("max_position_embeddings"), "{e}");
    for e in [
        CrossEncoder::builder()
            .max_length(0)
            .build(&dir)
            .err()
            .unwrap(),
        CrossEncoder::builder()
            .batch_size(0)
            .build(&dir)
            .err()
            .unwrap(),
        CrossEncoder::builder()
            .threads(0)
            .build(&dir)
            .err()
            .unwrap(),
    ] {
        assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    }
}

#[test]
fn multi_label_models_have_no_single_score() {
    let model = CrossEncoder::from_dir(fixture_dir("bert-3labels")).unwrap();
    assert!(matches!(
        model.predict(&[("a", "b")]),
        Err(Error::MultiLabel { num_labels: 3 })
    ));
    assert!(matches!(
        model.rank("a", &["b"], None),
        Err(Error::MultiLabel { num_labels: 3 })
    ));
    assert_eq!(model.predict_all(&[("a", "b")]).unwrap()[0].scores.len(), 3);
    assert_eq!(model.labels(), ["contradiction", "entailment", "neutral"]);
}

#[test]
fn odd_text_scores_without_error() {
    let model = CrossEncoder::from_dir(fixture_dir("bert-l2-h32")).unwrap();
    let huge = "word ".repeat(200_000);
    let pairs = [
        ("", ""),
        ("\u{0}\u{7}\u{1b}", "\u{200d}\u{feff}"),
        ("🦀🦀🦀", "\u{10ffff}"),
        (huge.as_str(), huge.as_str()),
        ("   ", "\t\n"),
    ];
    let got = model.predict_all(&pairs).unwrap();
    assert!(got.iter().all(|p| p.scores[0].is_finite()));
    assert!(got[3].truncated);
}

#[test]
fn tokenizer_vocab_larger_than_model_is_an_error() {
    let m = with_config("vocab_size", serde_json::json!(900), "small-vocab");
    // The embedding table no longer matches the config: a shape error at load.
    assert!(matches!(load_err(&m.dir), Error::TensorShape { .. }));
}

#[test]
fn malformed_tokenizer_json() {
    let m = ScratchModel::copy_of("bert-l2-h32", "bad-tokenizer");
    std::fs::write(
        m.path("tokenizer.json"),
        b"{\"version\": \"1.0\", \"model\": 3}",
    )
    .unwrap();
    let e = load_err(&m.dir);
    assert!(
        matches!(e, Error::Tokenizer { .. }) && e.to_string().contains("tokenizer.json"),
        "{e}"
    );
}

#[test]
fn softmax_on_one_label_is_refused() {
    let err = crossenc::CrossEncoder::builder()
        .activation(crossenc::ScoreActivation::Softmax)
        .build(common::fixture_dir("bert-l2-h32"))
        .err()
        .expect("softmax over one label refused");
    assert!(err.to_string().contains("option activation"), "{err}");
    // Over several labels it is what NLI models use.
    crossenc::CrossEncoder::builder()
        .activation(crossenc::ScoreActivation::Softmax)
        .build(common::fixture_dir("bert-3labels"))
        .unwrap();
}

#[test]
fn config_values_no_model_can_run_are_refused_at_load() {
    // (key, value, what the message names)
    let cases = [
        ("id2label", serde_json::json!({}), "id2label"),
        ("layer_norm_eps", serde_json::json!(0.0), "layer_norm_eps"),
        (
            "layer_norm_eps",
            serde_json::json!(-1e-12),
            "layer_norm_eps",
        ),
        ("layer_norm_eps", serde_json::json!(1e-60), "layer_norm_eps"),
        ("layer_norm_eps", serde_json::json!(1e300), "layer_norm_eps"),
        ("num_labels", serde_json::json!(0), "num_labels"),
    ];
    for (i, (key, value, named)) in cases.into_iter().enumerate() {
        let m = with_config(key, value.clone(), &format!("refused-{i}"));
        if key == "num_labels" {
            // num_labels counts only without id2label.
            let path = m.path("config.json");
            let mut config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            config.as_object_mut().unwrap().remove("id2label");
            config.as_object_mut().unwrap().remove("label2id");
            std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        }
        let e = load_err(&m.dir);
        assert!(matches!(e, Error::Config { .. }), "{key} = {value}: {e:?}");
        assert!(e.to_string().contains(named), "{key} = {value}: {e}");
    }
}

#[test]
fn huge_sizes_in_config_are_a_shape_error_not_an_allocation() {
    // 3·h·h floats would be 2^65 bytes: the fused QKV must check the shape
    // before it reserves anything.
    let m = with_config("hidden_size", serde_json::json!(1u64 << 31), "huge-hidden");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path("config.json")).unwrap()).unwrap();
    config["num_attention_heads"] = serde_json::json!(1);
    std::fs::write(m.path("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::TensorShape { .. }), "{e:?}");
}

#[test]
fn token_types_the_model_lacks_are_refused_at_load() {
    // One token type in the config and the table, but a BERT pair tokenizer
    // that gives the document type 1: refused at load, naming the key.
    let m = with_config("type_vocab_size", serde_json::json!(1), "one-type");
    edit_tensors(&m, |name, d, shape, bytes| {
        if name.ends_with("token_type_embeddings.weight") {
            let row = bytes.len() / shape[0];
            Some((d, vec![1, shape[1]], bytes[..row].to_vec()))
        } else {
            Some((d, shape, bytes))
        }
    });
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("type_vocab_size"), "{e}");
    // The same model reads single texts (type 0 only) as an encoder.
    crossenc::Encoder::from_dir(&m.dir, None).unwrap();
}

#[test]
fn model_paths_that_are_not_model_folders() {
    // A file: say so, not "not found".
    let file = common::fixture_dir("bert-l2-h32").join("config.json");
    let e = load_err(&file);
    assert!(matches!(e, Error::ModelPath { .. }), "{e:?}");
    assert!(e.to_string().contains("is a file"), "{e}");
    // PyTorch pickles only: say how to convert.
    let m = ScratchModel::copy_of("bert-l2-h32", "pickles-only");
    std::fs::rename(m.path("model.safetensors"), m.path("pytorch_model.bin")).unwrap();
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::ModelPath { .. }), "{e:?}");
    assert!(e.to_string().contains("safe_serialization=True"), "{e}");
}

/// Rewrites tokenizer.json through `edit`.
fn edit_tokenizer(m: &ScratchModel, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = m.path("tokenizer.json");
    let mut tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut tokenizer);
    std::fs::write(&path, serde_json::to_vec(&tokenizer).unwrap()).unwrap();
}

/// Writes a safetensors file from a raw JSON header and data bytes, so that
/// headers the safetensors crate would never write can be tried.
fn write_raw_safetensors(m: &ScratchModel, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(m.path("model.safetensors"), bytes).unwrap();
}

#[test]
fn pad_token_id_outside_the_vocabulary_is_refused() {
    // 2^32 + 1 once wrapped to 1 on its way to u32.
    for (i, pad) in [1000u64, (1 << 32) + 1].into_iter().enumerate() {
        let m = with_config("pad_token_id", serde_json::json!(pad), &format!("pad-{i}"));
        let e = load_err(&m.dir);
        assert!(matches!(e, Error::Config { .. }), "{pad}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("pad_token_id") && msg.contains(&pad.to_string()),
            "{msg}"
        );
    }
}

#[test]
fn num_labels_beyond_the_bound_is_refused_before_any_allocation() {
    let m = with_config("num_labels", serde_json::json!(1u64 << 50), "many-labels");
    let path = m.path("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("id2label");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("num_labels"), "{e}");
}

#[test]
fn labels_that_do_not_match_the_classifier_are_a_shape_error() {
    let m = with_config(
        "id2label",
        serde_json::json!({"0": "no", "1": "yes"}),
        "two-labels",
    );
    match load_err(&m.dir) {
        Error::TensorShape {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "classifier.weight");
            assert_eq!((expected, found), (vec![2, 32], vec![1, 32]));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn tokenizer_ids_beyond_vocab_size_are_refused_at_load() {
    // A consistent model of 900 rows, but a tokenizer with ids up to 999.
    let m = with_config("vocab_size", serde_json::json!(900), "vocab-900");
    edit_tensors(&m, |name, d, shape, bytes| {
        if name.ends_with("word_embeddings.weight") {
            let row = bytes.len() / shape[0];
            Some((d, vec![900, shape[1]], bytes[..900 * row].to_vec()))
        } else {
            Some((d, shape, bytes))
        }
    });
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("vocab_size is 900") && msg.contains("999"),
        "{msg}"
    );
    // The same for a special token of the pair template outside the vocabulary.
    let m = ScratchModel::copy_of("bert-l2-h32", "special-id");
    edit_tokenizer(&m, |t| {
        t["post_processor"]["special_tokens"]["[SEP]"]["ids"] = serde_json::json!([5000]);
    });
    let e = load_err(&m.dir);
    assert!(e.to_string().contains("token id 5000"), "{e}");
}

#[test]
fn max_length_too_small_for_a_pair_is_refused() {
    // BERT's template adds 3 special tokens: [CLS] q [SEP] d [SEP] needs 5.
    let dir = fixture_dir("bert-l2-h32");
    for n in 1..5 {
        let e = CrossEncoder::builder()
            .max_length(n)
            .build(&dir)
            .err()
            .unwrap_or_else(|| panic!("max_length {n} accepted"));
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    name: "max_length",
                    ..
                }
            ),
            "{n}: {e:?}"
        );
        assert!(e.to_string().contains("at least 5"), "{n}: {e}");
        let e = crossenc::SentenceEmbedder::builder()
            .max_length(n)
            .build(fixture_dir("st-mean"))
            .err()
            .unwrap_or_else(|| panic!("embedder: max_length {n} accepted"));
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    name: "max_length",
                    ..
                }
            ),
            "{n}: {e:?}"
        );
    }
    CrossEncoder::builder().max_length(5).build(&dir).unwrap();
}

#[test]
fn truncated_is_set_whenever_a_token_is_cut() {
    let dir = fixture_dir("bert-l2-h32");
    let long = "word ".repeat(200);
    for n in 5..20 {
        let model = CrossEncoder::builder().max_length(n).build(&dir).unwrap();
        for (q, d) in [
            ("q", long.as_str()),
            (long.as_str(), "d"),
            (long.as_str(), long.as_str()),
        ] {
            let pair = model.encode_pairs(&[(q, d)]).unwrap().remove(0);
            assert!(pair.truncated, "max_length {n}: not marked truncated");
            assert_eq!(pair.input_ids.len(), n, "max_length {n}");
        }
        let pair = model.encode_pairs(&[("q", "d")]).unwrap().remove(0);
        assert!(
            !pair.truncated,
            "max_length {n}: a short pair marked truncated"
        );
    }
}

#[test]
fn truncation_in_tokenizer_json_is_replaced_not_trusted() {
    // A max_length of 1 in tokenizer.json must never be used: tokenizers
    // subtracts the special tokens from it unchecked (the load now encodes
    // the pair template before it sets its own truncation).
    let m = ScratchModel::copy_of("bert-l2-h32", "tokenizer-truncation");
    edit_tokenizer(&m, |t| {
        t["truncation"] = serde_json::json!({
            "direction": "Right", "max_length": 1, "strategy": "LongestFirst", "stride": 0
        });
    });
    let model = CrossEncoder::from_dir(&m.dir).unwrap();
    assert!(model.predict(&[("q", "d")]).unwrap()[0].is_finite());
}

#[test]
fn safetensors_headers_that_do_not_add_up_are_refused() {
    let m = ScratchModel::copy_of("bert-l2-h32", "raw-header");
    let cases = [
        // (what, header, data bytes)
        (
            "byte length differs from the shape",
            r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
            12,
        ),
        (
            "overlapping tensors",
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
        ),
        (
            "a gap between tensors",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
            12,
        ),
        (
            "a duplicate name (the first entry is dropped, leaving a gap)",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        ),
        (
            "offsets past the end of the file",
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            8,
        ),
        (
            "a shape whose element count overflows",
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#,
            0,
        ),
        (
            "an unknown dtype",
            r#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#,
            4,
        ),
        ("a header that is not an object", "[]", 0),
    ];
    for (what, header, data) in cases {
        write_raw_safetensors(&m, header, &vec![0; data]);
        let e = load_err(&m.dir);
        assert!(matches!(e, Error::Safetensors { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("model.safetensors"), "{what}: {e}");
    }
}

#[test]
fn every_unsupported_dtype_is_named() {
    for dtype in [Dtype::F64, Dtype::I8, Dtype::U8, Dtype::I64, Dtype::BOOL] {
        let m = ScratchModel::copy_of("bert-l2-h32", &format!("dtype-{dtype:?}"));
        edit_tensors(&m, |name, d, s, b| {
            if name.ends_with("embeddings.LayerNorm.bias") {
                let bytes = s.iter().product::<usize>() * dtype.bitsize() / 8;
                Some((dtype, s, vec![0; bytes]))
            } else {
                Some((d, s, b))
            }
        });
        let e = load_err(&m.dir);
        assert!(
            matches!(&e, Error::TensorDtype { name, dtype: found } if name.ends_with("LayerNorm.bias") && *found == format!("{dtype:?}")),
            "{dtype:?}: {e:?}"
        );
    }
}

#[test]
fn id2label_that_is_not_a_map_is_refused() {
    let m = with_config(
        "id2label",
        serde_json::json!(["no", "yes"]),
        "id2label-list",
    );
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("id2label"), "{e}");
}

/// Rewrites a JSON file of a scratch copy through `edit`.
fn edit_json(path: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
}

#[test]
fn sentence_transformers_modules_are_checked() {
    let embedder_err = |m: &ScratchModel| match crossenc::SentenceEmbedder::from_dir(&m.dir, None) {
        Ok(_) => panic!("{} loaded, but should not have", m.dir.display()),
        Err(e) => e,
    };
    // A module path outside the model folder.
    for (i, path) in ["../1_Pooling", "/etc"].into_iter().enumerate() {
        let m = ScratchModel::copy_of("st-mean", &format!("module-path-{i}"));
        edit_json(&m.path("modules.json"), |modules| {
            modules[1]["path"] = serde_json::json!(path)
        });
        let e = embedder_err(&m);
        assert!(matches!(e, Error::Config { .. }), "{path}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains("modules.json") && msg.contains(path), "{msg}");
    }
    // A pooling saved for another width.
    let m = ScratchModel::copy_of("st-mean", "pooling-width");
    edit_json(&m.path("1_Pooling/config.json"), |c| {
        c["word_embedding_dimension"] = serde_json::json!(64)
    });
    let e = embedder_err(&m);
    let msg = e.to_string();
    assert!(
        msg.contains("word_embedding_dimension") && msg.contains("64") && msg.contains("32"),
        "{msg}"
    );
    // The untouched copy loads.
    let m = ScratchModel::copy_of("st-mean", "st-intact");
    crossenc::SentenceEmbedder::from_dir(&m.dir, None).unwrap();
}

#[test]
fn required_sizes_that_are_null_are_refused() {
    // Regression (fuzz/config): `"num_attention_heads": null` read as 0 and
    // divided hidden_size by zero.
    for key in [
        "hidden_size",
        "num_attention_heads",
        "num_hidden_layers",
        "intermediate_size",
        "vocab_size",
    ] {
        let m = with_config(key, serde_json::Value::Null, &format!("null-{key}"));
        let e = load_err(&m.dir);
        assert!(matches!(e, Error::Config { .. }), "{key}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(key) && msg.contains("null"), "{msg}");
    }
}

#[test]
fn malformed_json_inside_a_tokenizer_decoder_is_an_error() {
    // Regression (fuzz/tokenizer): a control character in a string of the
    // decoder made tokenizers 0.23 panic (`expect("Helper")`).
    let m = ScratchModel::copy_of("bert-l2-h32", "decoder-control-char");
    let json = std::fs::read_to_string(m.path("tokenizer.json")).unwrap();
    let decoder = "\"prefix\": \"##\"";
    assert!(json.contains(decoder), "the fixture's WordPiece decoder");
    let broken = json.replacen(decoder, "\"prefix\": \"#\u{1}#\"", 1);
    std::fs::write(m.path("tokenizer.json"), broken).unwrap();
    let e = load_err(&m.dir);
    assert!(matches!(e, Error::Tokenizer { .. }), "{e:?}");
    assert!(e.to_string().contains("malformed JSON"), "{e}");
}

#[test]
fn tokenizer_json_that_makes_tokenizers_panic_is_an_error() {
    // tokenizers 0.23 panics on these instead of returning an error
    // (huggingface/tokenizers#2151); a load must not.
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 2] = [
        (
            "a template naming a special token it does not define",
            |t| {
                t["post_processor"]["special_tokens"]
                    .as_object_mut()
                    .unwrap()
                    .remove("[SEP]");
            },
        ),
        ("a FixedLength pre-tokenizer of length 0", |t| {
            t["pre_tokenizer"] = serde_json::json!({"type": "FixedLength", "length": 0});
        }),
    ];
    for (i, (what, edit)) in cases.into_iter().enumerate() {
        let m = ScratchModel::copy_of("bert-l2-h32", &format!("tokenizers-panic-{i}"));
        edit_tokenizer(&m, edit);
        match CrossEncoder::from_dir(&m.dir) {
            // Refused at load, or at the first text that reaches the panic.
            Err(e) => assert!(matches!(e, Error::Tokenizer { .. }), "{what}: {e:?}"),
            Ok(model) => {
                let e = model.predict(&[("a query", "a document")]).unwrap_err();
                assert!(matches!(e, Error::Tokenizer { .. }), "{what}: {e:?}");
            }
        }
    }
}

#[test]
fn max_length_below_a_single_text_template_is_refused_not_a_panic() {
    // A template that adds more around a single text (7) than around a pair
    // (3): tokenizers would subtract 7 from a max length of 5.
    let m = ScratchModel::copy_of("bert-l2-h32", "long-single-template");
    edit_tokenizer(&m, |t| {
        let sep = serde_json::json!({"SpecialToken": {"id": "[SEP]", "type_id": 0}});
        let single = t["post_processor"]["single"].as_array_mut().unwrap();
        single.extend(std::iter::repeat_n(sep, 5));
    });
    let e = CrossEncoder::builder()
        .max_length(5)
        .build(&m.dir)
        .err()
        .expect("max_length 5 refused");
    assert!(e.to_string().contains("at least 8"), "{e}");
    CrossEncoder::builder().max_length(8).build(&m.dir).unwrap();
}
