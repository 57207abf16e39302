//! Hugging Face `config.json` -> typed config; anything we cannot run is refused by name.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{read, Error, Result};

/// The feed-forward activation (`hidden_act`).
pub use crossenc_kernels::Activation as HiddenAct;

/// What turns a logit into a score, as sentence-transformers' `CrossEncoder` applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreActivation {
    /// Scores are the raw logits.
    Identity,
    /// `1 / (1 + e^-x)` per logit.
    Sigmoid,
    /// Softmax over a pair's logits.
    Softmax,
}

impl ScoreActivation {
    /// Applies the activation to one pair's logits.
    pub fn apply(self, logits: &[f32]) -> Vec<f32> {
        match self {
            ScoreActivation::Identity => logits.to_vec(),
            ScoreActivation::Sigmoid => logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            ScoreActivation::Softmax => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                exps.iter().map(|e| e / sum).collect()
            }
        }
    }

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            ScoreActivation::Identity => "identity",
            ScoreActivation::Sigmoid => "sigmoid",
            ScoreActivation::Softmax => "softmax",
        }
    }
}

/// Which member of the BERT family a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// BERT (`model_type` `bert`): pooler `tanh(dense(h[CLS]))`, then `classifier`.
    Bert,
    /// XLM-RoBERTa / RoBERTa: positions offset by `pad_token_id + 1`; head
    /// `out_proj(tanh(dense(h[<s>])))`, no pooler.
    XlmRoberta,
    /// ELECTRA: embeddings of `embedding_size`, projected to `hidden_size`;
    /// head `out_proj(gelu(dense(h[CLS])))`.
    Electra,
}

impl Architecture {
    /// The prefix of the encoder's tensors in a `...ForSequenceClassification` checkpoint.
    pub fn prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert.",
            Architecture::XlmRoberta => "roberta.",
            Architecture::Electra => "electra.",
        }
    }
}

/// A BERT-family config, as read from `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// BERT, XLM-RoBERTa or ELECTRA.
    pub architecture: Architecture,
    /// Width of the embedding tables (ELECTRA's can be narrower than `hidden_size`).
    pub embedding_size: usize,
    /// Position id of a sequence's first token (RoBERTa: `pad_token_id + 1`).
    pub position_offset: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// The feed-forward activation.
    pub hidden_act: HiddenAct,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f32,
    /// Rows of the position embedding table: the longest input the model can read.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding table.
    pub type_vocab_size: usize,
    /// Rows of the word embedding table.
    pub vocab_size: usize,
    /// Id of the padding token.
    pub pad_token_id: u32,
    /// Labels of the classification head, in id order (`id2label`).
    pub labels: Vec<String>,
    /// The score activation the model was saved with, if it names one
    /// (`sentence_transformers.activation_fn` or the legacy
    /// `sbert_ce_default_activation_function`).
    pub activation: Option<ScoreActivation>,
}

impl BertConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<BertConfig> {
        BertConfig::from_slice(path, &read(path)?)
    }

    /// Checks `config.json`'s bytes; `path` names the file in errors.
    pub(crate) fn from_slice(path: &Path, bytes: &[u8]) -> Result<BertConfig> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!("malformed JSON: {e}"),
        })?;
        let obj = value.as_object().ok_or_else(|| Error::Config {
            path: path.to_path_buf(),
            message: "expected a JSON object".to_string(),
        })?;
        BertConfig::from_json(path, obj)
    }

    fn from_json(path: &Path, obj: &Map<String, Value>) -> Result<BertConfig> {
        let keys = Keys { path, obj };
        let model_type = keys.string("model_type")?.unwrap_or_default();
        let architecture = match model_type.as_str() {
            "bert" => Architecture::Bert,
            "xlm-roberta" | "roberta" => Architecture::XlmRoberta,
            "electra" => Architecture::Electra,
            _ => {
                return Err(Error::Unsupported {
                    key: "model_type".into(),
                    value: format!("{model_type:?}"),
                    supported: "\"bert\", \"xlm-roberta\", \"roberta\", \"electra\"".into(),
                })
            }
        };
        let position = keys.string("position_embedding_type")?;
        if let Some(p) = position.filter(|p| p != "absolute") {
            return Err(Error::Unsupported {
                key: "position_embedding_type".into(),
                value: format!("{p:?}"),
                supported: "\"absolute\"".into(),
            });
        }
        if keys.obj.get("is_decoder").and_then(Value::as_bool) == Some(true) {
            return Err(Error::Unsupported {
                key: "is_decoder".into(),
                value: "true".into(),
                supported: "encoder models (is_decoder = false)".into(),
            });
        }
        let act_name = keys.string("hidden_act")?.unwrap_or_else(|| "gelu".into());
        let hidden_act = match act_name.as_str() {
            "gelu" => HiddenAct::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => HiddenAct::GeluTanh,
            "relu" => HiddenAct::Relu,
            other => {
                return Err(Error::Unsupported {
                    key: "hidden_act".into(),
                    value: format!("{other:?}"),
                    supported: "\"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\", \"relu\"".into(),
                })
            }
        };
        let hidden_size = keys.positive("hidden_size")?;
        let num_attention_heads = keys.positive("num_attention_heads")?;
        if hidden_size % num_attention_heads != 0 {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
                ),
            });
        }
        let labels = keys.labels()?;
        let activation = keys.score_activation()?;
        let vocab_size = keys.positive("vocab_size")?;
        // The padding row must exist: RoBERTa numbers positions from it, and
        // a tokenizer pads with it.
        let pad_token_id = match keys.integer("pad_token_id")?.unwrap_or(0) {
            id if id < vocab_size as u64 => id as u32,
            _ => {
                return Err(keys.wrong(
                    "pad_token_id",
                    &format!("a token id below vocab_size ({vocab_size})"),
                ))
            }
        };
        let max_position_embeddings = keys.positive_or("max_position_embeddings", 512)?;
        // RoBERTa numbers positions from padding_idx + 1 (modeling_roberta's
        // create_position_ids_from_input_ids), so that many rows are never used.
        let position_offset = match architecture {
            Architecture::XlmRoberta => pad_token_id as usize + 1,
            Architecture::Bert | Architecture::Electra => 0,
        };
        if position_offset >= max_position_embeddings {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "pad_token_id {pad_token_id} leaves no position in max_position_embeddings {max_position_embeddings}"
                ),
            });
        }
        Ok(BertConfig {
            architecture,
            embedding_size: keys.positive_or("embedding_size", hidden_size)?,
            position_offset,
            hidden_size,
            num_hidden_layers: keys.positive("num_hidden_layers")?,
            num_attention_heads,
            intermediate_size: keys.positive("intermediate_size")?,
            hidden_act,
            layer_norm_eps: keys.layer_norm_eps()?,
            max_position_embeddings,
            type_vocab_size: keys.positive_or("type_vocab_size", 2)?,
            vocab_size,
            pad_token_id,
            labels,
            activation,
        })
    }

    /// Number of labels the classification head has.
    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }

    /// The longest sequence the position table allows.
    pub fn max_positions(&self) -> usize {
        self.max_position_embeddings - self.position_offset
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Most labels `num_labels` may ask for. Their names are made before the
/// classifier's shape can be checked against the weights, so without a bound
/// a typo (`num_labels: 1e18`) would be an allocation of that many strings;
/// classifiers with more labels than this are not rerankers. (`id2label` is
/// bounded by the size of the file that spells it out.)
const MAX_LABELS: usize = 1 << 16;

/// Typed access to a config object's keys, with errors that name the key.
struct Keys<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
}

impl Keys<'_> {
    fn wrong(&self, key: &str, expected: &str) -> Error {
        Error::Config {
            path: self.path.to_path_buf(),
            message: format!(
                "`{key}` should be {expected}, found {}",
                self.obj.get(key).unwrap_or(&Value::Null)
            ),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<u64>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a non-negative integer")),
        }
    }

    fn float(&self, key: &str) -> Result<Option<f64>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a number")),
        }
    }

    /// `layer_norm_eps`: finite and > 0 as an f32 (0, a negative or an
    /// underflowing value would make a constant row's norm NaN; default 1e-12).
    fn layer_norm_eps(&self) -> Result<f32> {
        match self.float("layer_norm_eps")? {
            None => Ok(1e-12),
            Some(eps) if eps.is_finite() && (eps as f32) > 0.0 && (eps as f32).is_finite() => {
                Ok(eps as f32)
            }
            Some(_) => Err(self.wrong("layer_norm_eps", "a positive number")),
        }
    }

    fn positive_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.integer(key)? {
            None => Ok(default),
            Some(0) => Err(self.wrong(key, "a positive integer")),
            Some(n) => usize::try_from(n).map_err(|_| self.wrong(key, "a smaller integer")),
        }
    }

    /// A required size: present, not null (which would read as the default
    /// of an optional key), and at least 1.
    fn positive(&self, key: &str) -> Result<usize> {
        match self.obj.get(key) {
            None => Err(Error::Config {
                path: self.path.to_path_buf(),
                message: format!("required key `{key}` is missing"),
            }),
            Some(Value::Null) => Err(self.wrong(key, "a positive integer")),
            Some(_) => self.positive_or(key, 0),
        }
    }

    /// `id2label` in id order; else `num_labels` generic names; else
    /// transformers' default of two labels.
    fn labels(&self) -> Result<Vec<String>> {
        let id2label = match self.obj.get("id2label") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => return Err(self.wrong("id2label", "a map from ids 0..n to names")),
        };
        if let Some(map) = id2label {
            let mut labels = vec![None; map.len()];
            for (id, label) in map {
                let slot = id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| labels.get_mut(i))
                    .ok_or_else(|| self.wrong("id2label", "a map from ids 0..n to names"))?;
                *slot = Some(
                    label
                        .as_str()
                        .map_or_else(|| label.to_string(), str::to_string),
                );
            }
            if map.is_empty() {
                return Err(self.wrong("id2label", "a map with at least one label"));
            }
            return Ok(labels.into_iter().flatten().collect());
        }
        let n = self.positive_or("num_labels", 2)?;
        if n > MAX_LABELS {
            return Err(self.wrong("num_labels", &format!("at most {MAX_LABELS}")));
        }
        Ok((0..n).map(|i| format!("LABEL_{i}")).collect())
    }

    fn score_activation(&self) -> Result<Option<ScoreActivation>> {
        let nested = self
            .obj
            .get("sentence_transformers")
            .and_then(|st| st.get("activation_fn"))
            .map(|v| ("sentence_transformers.activation_fn", v));
        let legacy = self
            .obj
            .get("sbert_ce_default_activation_function")
            .map(|v| ("sbert_ce_default_activation_function", v));
        let Some((key, value)) = nested.or(legacy) else {
            return Ok(None);
        };
        let Some(name) = value.as_str() else {
            return Ok(None); // null: sentence-transformers falls back to its default
        };
        // sentence-transformers stores an import path such as
        // "torch.nn.modules.activation.Sigmoid"; the class name decides.
        match name.rsplit('.').next().unwrap_or(name) {
            "Identity" => Ok(Some(ScoreActivation::Identity)),
            "Sigmoid" => Ok(Some(ScoreActivation::Sigmoid)),
            "Softmax" => Ok(Some(ScoreActivation::Softmax)),
            _ => Err(Error::Unsupported {
                key: key.into(),
                value: format!("{name:?}"),
                supported: "torch.nn Identity, Sigmoid, Softmax".into(),
            }),
        }
    }
}

/// The max length `tokenizer_config.json` declares (`model_max_length`), if any.
///
/// transformers writes a huge sentinel (1e30) when a tokenizer has no limit;
/// that reads as "none".
pub fn tokenizer_max_length(path: &Path) -> Result<Option<usize>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("malformed JSON: {e}"),
    })?;
    Ok(value
        .get("model_max_length")
        .and_then(Value::as_f64)
        .filter(|n| (1.0..1e9).contains(n))
        .map(|n| n as usize))
}
