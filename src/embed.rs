//! Sentence embeddings, as sentence-transformers' `SentenceTransformer`
//! computes them: the encoder, a pooling of its last hidden state
//! (`1_Pooling/config.json`) and, if `modules.json` lists it, L2 normalisation.

use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;

use crate::config::tokenizer_max_length;
use crate::error::{read, Error, Result};
use crate::model::{Bert, Scratch};
use crate::{load_encoder, pack, BertConfig, ModelFolder, Truncation, DEFAULT_TOKEN_BUDGET};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over every token, `[CLS]` and `[SEP]` included.
    Mean,
    /// The first token's vector.
    Cls,
    /// Element-wise maximum over every token.
    Max,
    /// Sum over the tokens divided by the square root of their number.
    MeanSqrtLen,
}

/// A sentence-transformers embedding model (e.g. all-MiniLM-L6-v2). `Send + Sync`.
pub struct SentenceEmbedder {
    bert: Bert,
    tokenizer: crate::tokenize::PairTokenizer,
    pooling: Pooling,
    normalize: bool,
    max_length: usize,
    scratch: Mutex<Vec<Scratch>>,
}

impl SentenceEmbedder {
    /// Loads a sentence-transformers folder; `max_length` overrides
    /// `sentence_bert_config.json`'s `max_seq_length`.
    pub fn from_dir(dir: impl AsRef<Path>, max_length: Option<usize>) -> Result<SentenceEmbedder> {
        let dir = dir.as_ref();
        let modules = read_json_if_exists(&dir.join("modules.json"))?;
        let mut pooling_dir = dir.join("1_Pooling");
        let mut normalize = false;
        if let Some(Value::Array(modules)) = &modules {
            for m in modules {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
                if kind.ends_with("Pooling") {
                    if let Some(path) = m.get("path").and_then(Value::as_str) {
                        pooling_dir = dir.join(path);
                    }
                } else if kind.ends_with("Normalize") {
                    normalize = true;
                }
            }
        }
        let pooling = match read_json_if_exists(&pooling_dir.join("config.json"))? {
            Some(config) => pooling_mode(&config)?,
            None => Pooling::Mean, // sentence-transformers' default for a bare transformer
        };
        let st_max = read_json_if_exists(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.get("max_seq_length").and_then(Value::as_u64))
            .map(|n| n as usize);
        let max_length = match (max_length, st_max) {
            (Some(n), _) => Some(n),
            (None, Some(n)) => Some(n),
            (None, None) => tokenizer_max_length(&dir.join("tokenizer_config.json"))?,
        };
        let load = |config: &BertConfig| load_encoder(dir, config);
        let (folder, bert) =
            ModelFolder::open_with(dir, max_length, Truncation::LongestFirst, load).or_else(
                |e| match (e, max_length) {
                    // sentence_bert_config may say more than the positions allow
                    // (an error of the config step, before any loading); use what fits.
                    (Error::InvalidOption { .. }, Some(_)) => {
                        ModelFolder::open_with(dir, None, Truncation::LongestFirst, load)
                    }
                    (e, _) => Err(e),
                },
            )?;
        // As for `CrossEncoder`: pool threads size their packing buffers now.
        rayon::broadcast(|_| crossenc_kernels::gemm::reserve_thread_buffers());
        Ok(SentenceEmbedder {
            bert,
            tokenizer: folder.tokenizer,
            pooling,
            normalize,
            max_length: folder.max_length,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Length of an embedding.
    pub fn dimension(&self) -> usize {
        self.bert.config.hidden_size
    }

    /// The pooling in use.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether embeddings are L2-normalised.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// Texts are truncated to this many tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// One embedding per text, in order.
    pub fn embed<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Result<Vec<Vec<f32>>> {
        let encoded = self.tokenizer.encode_texts(texts)?;
        let mut scratch = self
            .scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let h = self.dimension();
        let mut out = Vec::with_capacity(texts.len());
        let mut rest = &encoded[..];
        while !rest.is_empty() {
            let mut tokens = 0;
            let n = rest
                .iter()
                .take_while(|e| {
                    tokens += e.input_ids.len();
                    tokens <= DEFAULT_TOKEN_BUDGET
                })
                .count()
                .max(1);
            let batch = pack(&rest[..n]);
            self.bert.check(&batch)?;
            self.bert.forward(&batch, &mut scratch, None);
            for s in 0..batch.sequences() {
                let range = batch.range(s);
                let rows = &scratch.hidden[range.start * h..range.end * h];
                out.push(self.pool(rows));
            }
            rest = &rest[n..];
        }
        self.scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(scratch);
        Ok(out)
    }

    /// `rows: [tokens, hidden]` -> `[hidden]`.
    fn pool(&self, rows: &[f32]) -> Vec<f32> {
        let h = self.dimension();
        let len = rows.len() / h;
        let mut v = match self.pooling {
            Pooling::Cls => rows[..h].to_vec(),
            Pooling::Max => {
                let mut v = vec![f32::NEG_INFINITY; h];
                for row in rows.chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(m, &x)| *m = m.max(x));
                }
                v
            }
            Pooling::Mean | Pooling::MeanSqrtLen => {
                let mut sum = vec![0.0f32; h];
                for row in rows.chunks_exact(h) {
                    sum.iter_mut().zip(row).for_each(|(s, &x)| *s += x);
                }
                let div = if self.pooling == Pooling::Mean {
                    len as f32
                } else {
                    (len as f32).sqrt()
                };
                sum.iter_mut().for_each(|s| *s /= div);
                sum
            }
        };
        if self.normalize {
            // torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12)
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

fn read_json_if_exists(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read(path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!("malformed JSON: {e}"),
        })
}

/// The pooling a `1_Pooling/config.json` asks for: sentence-transformers 6's
/// `"pooling_mode"`, or the older `pooling_mode_*_tokens` flags (exactly one set).
fn pooling_mode(config: &Value) -> Result<Pooling> {
    let by_name = |name: &str| match name {
        "mean" | "mean_tokens" => Some(Pooling::Mean),
        "cls" | "cls_token" => Some(Pooling::Cls),
        "max" | "max_tokens" => Some(Pooling::Max),
        "mean_sqrt_len_tokens" => Some(Pooling::MeanSqrtLen),
        _ => None,
    };
    if let Some(mode) = config.get("pooling_mode").and_then(Value::as_str) {
        return by_name(mode).ok_or_else(|| Error::Unsupported {
            key: "1_Pooling/config.json pooling_mode".into(),
            value: format!("{mode:?}"),
            supported: "mean, cls, max, mean_sqrt_len_tokens".into(),
        });
    }
    let set: Vec<Pooling> = [
        "cls_token",
        "mean_tokens",
        "max_tokens",
        "mean_sqrt_len_tokens",
    ]
    .iter()
    .filter(|flag| {
        config
            .get(format!("pooling_mode_{flag}"))
            .and_then(Value::as_bool)
            == Some(true)
    })
    .filter_map(|flag| by_name(flag))
    .collect();
    match set.as_slice() {
        [one] => Ok(*one),
        _ => Err(Error::Unsupported {
            key: "1_Pooling/config.json pooling_mode_*".into(),
            value: format!("{} modes set", set.len()),
            supported: "exactly one of cls_token, mean_tokens, max_tokens, mean_sqrt_len_tokens"
                .into(),
        }),
    }
}
