//! Entry points for the fuzz targets in `fuzz/` and for the test that replays
//! what they found (`tests/fuzz_regressions.rs`): each runs one loader on
//! untrusted bytes, as far as a model load would take them. Not API: hidden
//! from the docs, with no stability promise.

use std::path::Path;

use crossenc_kernels::Kernels;

use crate::config::BertConfig;
use crate::error::Result;
use crate::load::Precision;
use crate::model::{Bert, ClassificationHead, PackedBatch, Rows, Scratch};
use crate::tokenize::{PairTokenizer, Truncation, Windowing};
use crate::weights::SafetensorsFile;

/// `config.json` from bytes, checked as a load checks it.
pub fn config(bytes: &[u8]) -> Result<BertConfig> {
    BertConfig::from_slice(Path::new("config.json"), bytes)
}

/// `model.safetensors` from bytes, loaded for `config` as a cross-encoder
/// (encoder and classification head) and run on one short pair.
pub fn weights(config: &BertConfig, bytes: &[u8]) -> Result<Vec<f32>> {
    let file = SafetensorsFile::from_bytes(Path::new("model.safetensors"), bytes)?;
    let w = file.tensors()?;
    let kernels = Kernels::detect()?;
    let bert = Bert::load(config.clone(), kernels, &w, Rows::Cls, Precision::F32)?;
    let head = ClassificationHead::load(config, &kernels, &w)?;
    // [CLS] q [SEP] d [SEP], with ids and types the tables have.
    let len = config.max_positions().min(5);
    let ids: Vec<u32> = (0..len).map(|i| (i % config.vocab_size) as u32).collect();
    let types: Vec<u32> = (0..len)
        .map(|i| u32::from(i >= 3) % config.type_vocab_size as u32)
        .collect();
    let batch = PackedBatch::from_parts(ids, types, vec![0, len])?;
    bert.check(&batch)?;
    let (labels, h) = (config.num_labels(), config.hidden_size);
    let mut s = Scratch::new();
    bert.forward_cls(&batch, &mut s, labels);
    head.forward(
        &kernels,
        1,
        &s.cls[..h],
        &mut s.pooled[..h],
        &mut s.logits[..labels],
    );
    Ok(s.logits[..labels].to_vec())
}

/// `tokenizer.json` from bytes, set up for `max_length` as a load sets it
/// up, then used on `(query, document)` as a pair, as windows over the
/// document, and on the query alone. Returns the largest token id it can emit.
pub fn tokenizer(json: &[u8], max_length: usize, query: &str, document: &str) -> Result<u32> {
    let tokenizer = PairTokenizer::from_bytes(
        Path::new("tokenizer.json"),
        json,
        max_length,
        Truncation::LongestFirst,
        true,
    )?;
    tokenizer.encode_pairs(&[(query, document)], 0)?;
    tokenizer.encode_texts(&[query], 0)?;
    tokenizer.encode_windows(query, document, Windowing { stride: None }, 0)?;
    Ok(tokenizer.max_token_id())
}

/// The `tokenizer` fuzz target's input: a max length byte, then the query,
/// 0xff, the document, 0xff and tokenizer.json (0xff never occurs in UTF-8).
/// `None` when `data` is not framed so.
pub fn tokenizer_input(data: &[u8]) -> Option<Result<u32>> {
    let (&max_length, rest) = data.split_first()?;
    let mut parts = rest.splitn(3, |&b| b == 0xff);
    let query = std::str::from_utf8(parts.next()?).ok()?;
    let document = std::str::from_utf8(parts.next()?).ok()?;
    let json = parts.next()?;
    Some(tokenizer(json, usize::from(max_length), query, document))
}
