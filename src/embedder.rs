//! The heads that read every token: [`SentenceEmbedder`] (sentence-transformers'
//! `SentenceTransformer`: the encoder, a pooling of its last hidden state from
//! `1_Pooling/config.json` and, if `modules.json` lists it, L2 normalisation)
//! and [`Encoder`] (`BertModel`'s hidden states and pooler output).

use std::path::Path;

use serde_json::Value;

use crate::config::BertConfig;
use crate::error::{read, Error, Result};
use crate::load::Builder;
use crate::model::{gather_rows, Rows};
use crate::runner::{Progress, Runner};
use crate::tokenize::{EncodedPair, PairTokenizer};

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
    runner: Runner,
    pooling: Pooling,
    normalize: bool,
}

impl Builder<SentenceEmbedder> {
    /// Loads a sentence-transformers folder.
    pub fn build(self, dir: impl AsRef<Path>) -> Result<SentenceEmbedder> {
        SentenceEmbedder::load(dir.as_ref(), self)
    }
}

impl SentenceEmbedder {
    /// Options for loading a model; finish with `.build(dir)`.
    pub fn builder() -> Builder<SentenceEmbedder> {
        Builder::default()
    }

    /// Loads a sentence-transformers folder; `max_length` overrides
    /// `sentence_bert_config.json`'s `max_seq_length`.
    pub fn from_dir(dir: impl AsRef<Path>, max_length: Option<usize>) -> Result<SentenceEmbedder> {
        SentenceEmbedder::builder()
            .max_length_if(max_length)
            .build(dir)
    }

    fn load(dir: &Path, builder: Builder<SentenceEmbedder>) -> Result<SentenceEmbedder> {
        let modules = read_json_if_exists(&dir.join("modules.json"))?;
        let mut pooling_dir = dir.join("1_Pooling");
        let mut normalize = false;
        if let Some(Value::Array(modules)) = &modules {
            for m in modules {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
                if kind.ends_with("Pooling") {
                    if let Some(path) = m.get("path").and_then(Value::as_str) {
                        pooling_dir = module_dir(dir, path)?;
                    }
                } else if kind.ends_with("Normalize") {
                    normalize = true;
                }
            }
        }
        let pooling_config = read_json_if_exists(&pooling_dir.join("config.json"))?;
        let pooling = match &pooling_config {
            Some(config) => pooling_mode(config)?,
            None => Pooling::Mean, // sentence-transformers' default for a bare transformer
        };
        // sentence_bert_config may say more than the positions allow; then
        // the tokenizer's limit (capped by the positions) applies instead.
        let st_max = read_json_if_exists(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.get("max_seq_length").and_then(Value::as_u64))
            .map(|n| n as usize);
        let (runner, ()) =
            Runner::load(dir, &builder.options, Rows::All, st_max, |_, _, _| Ok(()))?;
        // The width the pooling was saved for must be the encoder's.
        let width = pooling_config
            .as_ref()
            .and_then(|c| c.get("word_embedding_dimension"));
        let hidden = runner.bert.config.hidden_size;
        if let Some(width) = width.filter(|w| w.as_u64() != Some(hidden as u64)) {
            return Err(Error::Config {
                path: pooling_dir.join("config.json"),
                message: format!(
                    "`word_embedding_dimension` is {width}, but config.json's hidden_size is {hidden} (the pooling belongs to another model?)"
                ),
            });
        }
        Ok(SentenceEmbedder {
            runner,
            pooling,
            normalize,
        })
    }

    /// Length of an embedding.
    pub fn dimension(&self) -> usize {
        self.runner.bert.config.hidden_size
    }

    /// The pooling in use.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether embeddings are L2-normalised.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// The precision the encoder's linear layers compute in.
    pub fn precision(&self) -> crate::Precision {
        self.runner.precision
    }

    /// The kernel path in use (see [`crate::CrossEncoder::kernel_path`]).
    pub fn kernel_path(&self) -> String {
        self.runner.kernel_path()
    }

    /// Texts are truncated to this many tokens.
    pub fn max_length(&self) -> usize {
        self.runner.max_length
    }

    /// One embedding per text, in order.
    pub fn embed<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        self.embed_each(texts, |_| {}, |_, embedding| out.push(embedding))?;
        Ok(out)
    }

    /// The embeddings one at a time, in order: `each(index, embedding)` as
    /// soon as its batch is done, and `progress` after every batch. Memory
    /// stays bounded however many texts there are (a batch and a chunk of
    /// tokenized texts at a time), so a caller that writes each embedding out
    /// embeds any number of texts in constant memory.
    ///
    /// ```no_run
    /// # let embedder = crossenc::SentenceEmbedder::from_dir("models/all-MiniLM-L6-v2", None)?;
    /// let texts = ["first text", "second text"];
    /// embedder.embed_each(&texts, |_| {}, |i, v| println!("{i}: {} floats", v.len()))?;
    /// # Ok::<(), crossenc::Error>(())
    /// ```
    pub fn embed_each<T: AsRef<str> + Sync>(
        &self,
        texts: &[T],
        progress: impl FnMut(Progress) + Send,
        mut each: impl FnMut(usize, Vec<f32>) + Send,
    ) -> Result<()> {
        let h = self.dimension();
        self.runner.run(
            texts.len(),
            |tokenizer, range| encode_texts(tokenizer, texts, range),
            |batch, scratch, results| {
                self.runner
                    .bert
                    .forward_passes(batch, scratch, |seqs, base, scratch| {
                        for s in seqs {
                            let range = batch.range(s);
                            let held = (range.start - base) * h..(range.end - base) * h;
                            results.push(self.pool(&scratch.hidden[held]));
                        }
                    });
            },
            |i, _, mut embedding| {
                each(i, embedding.remove(0));
                Ok(())
            },
            progress,
        )
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

/// Texts `range` as one sequence each, `[CLS] text [SEP]`.
fn encode_texts<T: AsRef<str> + Sync>(
    tokenizer: &PairTokenizer,
    texts: &[T],
    range: std::ops::Range<usize>,
) -> Result<Vec<Vec<EncodedPair>>> {
    let first = range.start;
    let encoded = tokenizer.encode_texts(&texts[range], first)?;
    Ok(encoded.into_iter().map(|e| vec![e]).collect())
}

/// A BERT encoder without a classification head (`BertModel`): hidden states
/// and pooler output, e.g. for an embedding model such as all-MiniLM-L6-v2.
pub struct Encoder {
    runner: Runner,
}

/// What [`Encoder`] computes for one input.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderOutput {
    /// The tokens the input became.
    pub encoded: EncodedPair,
    /// `[tokens, hidden]`: the last layer's hidden state.
    pub last_hidden_state: Vec<f32>,
    /// `[hidden]`: `tanh(dense(h[CLS]))`, when the checkpoint has a pooler.
    pub pooler_output: Option<Vec<f32>>,
}

impl Builder<Encoder> {
    /// Loads the model folder `dir`.
    pub fn build(self, dir: impl AsRef<Path>) -> Result<Encoder> {
        let (runner, ()) =
            Runner::load(dir.as_ref(), &self.options, Rows::All, None, |_, _, _| {
                Ok(())
            })?;
        Ok(Encoder { runner })
    }
}

impl Encoder {
    /// Options for loading a model; finish with `.build(dir)`.
    pub fn builder() -> Builder<Encoder> {
        Builder::default()
    }

    /// Loads the model folder `dir`; `max_length` as in [`Builder::max_length`].
    pub fn from_dir(dir: impl AsRef<Path>, max_length: Option<usize>) -> Result<Encoder> {
        Encoder::builder().max_length_if(max_length).build(dir)
    }

    /// The model's config.
    pub fn config(&self) -> &BertConfig {
        &self.runner.bert.config
    }

    /// Encodes single texts.
    pub fn encode_texts<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Result<Vec<EncoderOutput>> {
        self.run(texts.len(), |tokenizer, range| {
            encode_texts(tokenizer, texts, range)
        })
    }

    /// Encodes `(first, second)` text pairs.
    pub fn encode_pairs<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<EncoderOutput>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.run(pairs.len(), |tokenizer, range| {
            let encoded = tokenizer.encode_pairs(&pairs[range.clone()], range.start)?;
            Ok(encoded.into_iter().map(|e| vec![e]).collect())
        })
    }

    fn run(
        &self,
        total: usize,
        encode: impl Fn(&PairTokenizer, std::ops::Range<usize>) -> Result<Vec<Vec<EncodedPair>>>
            + Send
            + Sync,
    ) -> Result<Vec<EncoderOutput>> {
        let bert = &self.runner.bert;
        let h = bert.config.hidden_size;
        let mut out = Vec::with_capacity(total);
        self.runner.run(
            total,
            encode,
            |batch, s, results| {
                bert.forward_passes(batch, s, |seqs, base, s| {
                    let n = seqs.len();
                    if let Some(pooler) = &bert.pooler {
                        let cls = &mut s.cls[..n * h];
                        gather_rows(batch, seqs.clone(), base, &s.hidden, cls, h);
                        pooler.forward(&bert.kernels, n, cls, &mut s.pooled[..n * h]);
                    }
                    for (j, i) in seqs.enumerate() {
                        let range = batch.range(i);
                        let held = (range.start - base) * h..(range.end - base) * h;
                        results.push((
                            s.hidden[held].to_vec(),
                            bert.pooler
                                .as_ref()
                                .map(|_| s.pooled[j * h..(j + 1) * h].to_vec()),
                        ));
                    }
                });
            },
            |_, encoded, mut results| {
                let (last_hidden_state, pooler_output) = results.remove(0);
                out.push(EncoderOutput {
                    encoded: encoded[0].clone(),
                    last_hidden_state,
                    pooler_output,
                });
                Ok(())
            },
            |_| {},
        )?;
        Ok(out)
    }
}

/// The folder of a module `modules.json` lists: a relative path that stays
/// inside the model folder (a downloaded model names no file outside it).
fn module_dir(dir: &Path, path: &str) -> Result<std::path::PathBuf> {
    let relative = Path::new(path);
    let inside = relative.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !inside {
        return Err(Error::Config {
            path: dir.join("modules.json"),
            message: format!(
                "module path {path:?} leaves the model folder; modules are subfolders such as \"1_Pooling\""
            ),
        });
    }
    Ok(dir.join(relative))
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
