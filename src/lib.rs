//! crossenc: a pure-Rust CPU inference engine for BERT cross-encoder rerankers.
//!
//! A cross-encoder reads a query and a document together and emits a
//! relevance logit. crossenc loads a Hugging Face model folder (`config.json`,
//! `model.safetensors`, `tokenizer.json`), runs a hand-written BERT encoder on
//! its own kernels, and scores pairs exactly like
//! `sentence_transformers.CrossEncoder` (logits within 1e-4 of PyTorch).
//!
//! # Example
//!
//! ```
//! use crossenc::CrossEncoder;
//!
//! # fn main() -> crossenc::Result<()> {
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixtures/bert-l2-h32");
//! // `dir` is a model folder such as cross-encoder/ms-marco-MiniLM-L6-v2.
//! let model = CrossEncoder::builder().batch_size(16).build(dir)?;
//!
//! // One score per (query, document) pair.
//! let scores = model.predict(&[
//!     ("how do rerankers work", "a cross-encoder reads both texts at once"),
//!     ("how do rerankers work", "the weather in Rome is mild"),
//! ])?;
//! assert_eq!(scores.len(), 2);
//!
//! // Documents sorted by score, best first; ties keep their input order.
//! let docs = ["first document", "second document", "third document"];
//! let ranked = model.rank("which document", &docs, Some(2))?;
//! assert_eq!(ranked.len(), 2);
//! assert!(ranked[0].score >= ranked[1].score);
//! println!("best: {} ({})", docs[ranked[0].index], ranked[0].score);
//! # Ok(())
//! # }
//! ```
//!
//! The model is `Send + Sync`: share one instance (e.g. in an `Arc`) between threads.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
mod error;
mod model;
mod tokenize;
mod weights;

use std::path::Path;

pub use config::{BertConfig, ScoreActivation};
pub use crossenc_kernels::Isa;
pub use error::{Error, Result};
pub use model::PackedBatch;
pub use tokenize::{EncodedPair, Truncation};

use crossenc_kernels::Kernels;
use model::{Bert, Classifier};
use tokenize::PairTokenizer;

/// Pairs scored per forward pass when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// One pair's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The classification head's raw output, one value per label.
    pub logits: Vec<f32>,
    /// The logits after the score activation, one value per label.
    pub scores: Vec<f32>,
    /// Whether the pair was cut to fit the max length.
    pub truncated: bool,
}

/// A document's place in a ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Index of the document in the caller's list.
    pub index: usize,
    /// Its score.
    pub score: f32,
}

/// The state of a long [`CrossEncoder::predict_all_with_progress`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Pairs scored so far.
    pub done: usize,
    /// Pairs in the call.
    pub total: usize,
}

/// Options for loading a [`CrossEncoder`]; start from [`CrossEncoder::builder`].
#[derive(Clone, Debug)]
pub struct CrossEncoderBuilder {
    max_length: Option<usize>,
    batch_size: usize,
    activation: Option<ScoreActivation>,
    truncation: Truncation,
    threads: Option<usize>,
}

impl Default for CrossEncoderBuilder {
    fn default() -> Self {
        CrossEncoderBuilder {
            max_length: None,
            batch_size: DEFAULT_BATCH_SIZE,
            activation: None,
            truncation: Truncation::LongestFirst,
            threads: None,
        }
    }
}

impl CrossEncoderBuilder {
    /// Longest pair in tokens, special tokens included. Default: the smaller of
    /// `tokenizer_config.json`'s `model_max_length` and the model's
    /// `max_position_embeddings`.
    pub fn max_length(mut self, tokens: usize) -> Self {
        self.max_length = Some(tokens);
        self
    }

    /// Pairs per forward pass (default [`DEFAULT_BATCH_SIZE`]).
    pub fn batch_size(mut self, pairs: usize) -> Self {
        self.batch_size = pairs;
        self
    }

    /// The score activation. Default: the one the model's config names, else
    /// sigmoid for one label and identity for more (as sentence-transformers).
    pub fn activation(mut self, activation: ScoreActivation) -> Self {
        self.activation = Some(activation);
        self
    }

    /// How over-long pairs are cut (default [`Truncation::LongestFirst`]).
    pub fn truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// Threads to compute on. Default: rayon's global pool (all cores).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Loads the model folder `dir`.
    pub fn build(self, dir: impl AsRef<Path>) -> Result<CrossEncoder> {
        let dir = dir.as_ref();
        if self.batch_size == 0 {
            return Err(Error::InvalidOption {
                name: "batch_size",
                message: "must be at least 1".into(),
            });
        }
        let pool = thread_pool(self.threads)?;
        let folder = ModelFolder::open(dir, self.max_length, self.truncation)?;
        let kernels = Kernels::detect()?;
        let st = weights::SafetensorsFile::open(&dir.join("model.safetensors"))?;
        let w = st.tensors()?;
        let bert = Bert::load(folder.config.clone(), kernels, &w, true)?;
        let classifier = Classifier::load(&folder.config, &kernels, &w).map_err(|e| match e {
            Error::MissingTensor { name, .. } => Error::MissingTensor {
                name,
                hint: "this looks like an encoder without a classification head (BertModel), not a cross-encoder".into(),
            },
            e => e,
        })?;
        let activation = self.activation.or(folder.config.activation).unwrap_or(
            if folder.config.num_labels() == 1 {
                ScoreActivation::Sigmoid
            } else {
                ScoreActivation::Identity
            },
        );
        Ok(CrossEncoder {
            bert,
            classifier,
            tokenizer: folder.tokenizer,
            max_length: folder.max_length,
            batch_size: self.batch_size,
            activation,
            pool,
        })
    }
}

/// A loaded cross-encoder. `Send + Sync`: one instance serves many threads.
pub struct CrossEncoder {
    bert: Bert,
    classifier: Classifier,
    tokenizer: PairTokenizer,
    max_length: usize,
    batch_size: usize,
    activation: ScoreActivation,
    pool: Option<rayon::ThreadPool>,
}

impl CrossEncoder {
    /// Options for loading a model; finish with [`CrossEncoderBuilder::build`].
    pub fn builder() -> CrossEncoderBuilder {
        CrossEncoderBuilder::default()
    }

    /// Loads the model folder `dir` with default options.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<CrossEncoder> {
        CrossEncoder::builder().build(dir)
    }

    /// The model's config.
    pub fn config(&self) -> &BertConfig {
        &self.bert.config
    }

    /// The max length pairs are truncated to, in tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The score activation in use.
    pub fn activation(&self) -> ScoreActivation {
        self.activation
    }

    /// The instruction set the kernels were chosen for.
    pub fn isa(&self) -> Isa {
        self.bert.kernels.isa()
    }

    /// Label names, in logit order.
    pub fn labels(&self) -> &[String] {
        &self.bert.config.labels
    }

    /// One score per `(query, document)` pair, in order.
    ///
    /// Fails with [`Error::MultiLabel`] for a model with several labels (use
    /// [`CrossEncoder::predict_all`]). An empty list gives an empty result.
    pub fn predict<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<f32>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.single_label()?;
        Ok(self
            .predict_all(pairs)?
            .into_iter()
            .map(|p| p.scores[0])
            .collect())
    }

    /// Logits, scores and truncation for every pair, in order.
    pub fn predict_all<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<Prediction>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.predict_all_with_progress(pairs, |_| {})
    }

    /// [`CrossEncoder::predict_all`], calling `progress` after every batch.
    pub fn predict_all_with_progress<Q, D>(
        &self,
        pairs: &[(Q, D)],
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<Vec<Prediction>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.install(|| {
            let mut out = Vec::with_capacity(pairs.len());
            for (b, chunk) in pairs.chunks(self.batch_size).enumerate() {
                let encoded = self.tokenizer.encode_pairs(chunk, b * self.batch_size)?;
                out.extend(self.score_encoded(&encoded)?);
                progress(Progress {
                    done: out.len(),
                    total: pairs.len(),
                });
            }
            Ok(out)
        })
    }

    /// Documents sorted by score, best first (equal scores keep input order),
    /// at most `top_k` of them.
    ///
    /// Fails with [`Error::MultiLabel`] for a model with several labels, as
    /// sentence-transformers' `rank` does.
    pub fn rank<D>(&self, query: &str, documents: &[D], top_k: Option<usize>) -> Result<Vec<Ranked>>
    where
        D: AsRef<str> + Sync,
    {
        self.rank_with_threshold(query, documents, top_k, f32::NEG_INFINITY)
    }

    /// [`CrossEncoder::rank`], keeping only documents scoring at least `threshold`.
    pub fn rank_with_threshold<D>(
        &self,
        query: &str,
        documents: &[D],
        top_k: Option<usize>,
        threshold: f32,
    ) -> Result<Vec<Ranked>>
    where
        D: AsRef<str> + Sync,
    {
        self.single_label()?;
        let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, d.as_ref())).collect();
        let scores = self.predict(&pairs)?;
        Ok(rank_scores(&scores, top_k, threshold))
    }

    /// Tokenizes one pair as [`CrossEncoder::predict`] would.
    pub fn encode_pair(&self, query: &str, document: &str) -> Result<EncodedPair> {
        let mut encoded = self.tokenizer.encode_pairs(&[(query, document)], 0)?;
        Ok(encoded.remove(0))
    }

    /// The hidden state after the embeddings and after every encoder layer
    /// (`[tokens, hidden]` each, `num_hidden_layers + 1` of them), for
    /// checking a forward pass layer by layer against PyTorch's
    /// `output_hidden_states`.
    pub fn hidden_states(&self, query: &str, document: &str) -> Result<Vec<Vec<f32>>> {
        let encoded = self.encode_pair(query, document)?;
        let batch = self.pack(std::slice::from_ref(&encoded))?;
        let mut trace = Vec::new();
        self.install(|| self.bert.forward(&batch, Some(&mut trace)));
        Ok(trace)
    }

    fn single_label(&self) -> Result<()> {
        match self.bert.config.num_labels() {
            1 => Ok(()),
            num_labels => Err(Error::MultiLabel { num_labels }),
        }
    }

    fn install<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn pack(&self, encoded: &[EncodedPair]) -> Result<PackedBatch> {
        let mut batch = PackedBatch::new();
        for e in encoded {
            batch.push(&e.input_ids, &e.token_type_ids);
        }
        self.bert.check_ids(&batch)?;
        Ok(batch)
    }

    fn score_encoded(&self, encoded: &[EncodedPair]) -> Result<Vec<Prediction>> {
        let batch = self.pack(encoded)?;
        let k = &self.bert.kernels;
        let n = batch.sequences();
        let hidden = self.bert.forward(&batch, None);
        let cls = self.bert.cls_rows(&batch, &hidden);
        let pooler = self
            .bert
            .pooler
            .as_ref()
            .expect("a cross-encoder is loaded with its pooler");
        let pooled = pooler.forward(k, n, &cls);
        let logits = self.classifier.forward(k, n, &pooled);
        let labels = self.bert.config.num_labels();
        Ok(logits
            .chunks_exact(labels)
            .zip(encoded)
            .map(|(logits, e)| Prediction {
                logits: logits.to_vec(),
                scores: self.activation.apply(logits),
                truncated: e.truncated,
            })
            .collect())
    }
}

/// Sorts scores best first (stable: ties keep input order), drops those below
/// `threshold`, keeps at most `top_k`.
pub fn rank_scores(scores: &[f32], top_k: Option<usize>, threshold: f32) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = scores
        .iter()
        .enumerate()
        .filter(|(_, &score)| score >= threshold)
        .map(|(index, &score)| Ranked { index, score })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(top_k.unwrap_or(usize::MAX));
    ranked
}

/// A BERT encoder without a classification head (`BertModel`): hidden states
/// and pooler output, e.g. for an embedding model such as all-MiniLM-L6-v2.
pub struct Encoder {
    bert: Bert,
    tokenizer: PairTokenizer,
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

impl Encoder {
    /// Loads the model folder `dir`; `max_length` as in [`CrossEncoderBuilder::max_length`].
    pub fn from_dir(dir: impl AsRef<Path>, max_length: Option<usize>) -> Result<Encoder> {
        let dir = dir.as_ref();
        let folder = ModelFolder::open(dir, max_length, Truncation::LongestFirst)?;
        let kernels = Kernels::detect()?;
        let st = weights::SafetensorsFile::open(&dir.join("model.safetensors"))?;
        let bert = Bert::load(folder.config, kernels, &st.tensors()?, false)?;
        Ok(Encoder {
            bert,
            tokenizer: folder.tokenizer,
        })
    }

    /// The model's config.
    pub fn config(&self) -> &BertConfig {
        &self.bert.config
    }

    /// Encodes single texts.
    pub fn encode_texts<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Result<Vec<EncoderOutput>> {
        let encoded = self.tokenizer.encode_texts(texts)?;
        self.run(encoded)
    }

    /// Encodes `(first, second)` text pairs.
    pub fn encode_pairs<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<EncoderOutput>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        let encoded = self.tokenizer.encode_pairs(pairs, 0)?;
        self.run(encoded)
    }

    fn run(&self, encoded: Vec<EncodedPair>) -> Result<Vec<EncoderOutput>> {
        let mut batch = PackedBatch::new();
        for e in &encoded {
            batch.push(&e.input_ids, &e.token_type_ids);
        }
        self.bert.check_ids(&batch)?;
        let h = self.bert.config.hidden_size;
        let hidden = self.bert.forward(&batch, None);
        let pooled = self.bert.pooler.as_ref().map(|p| {
            let cls = self.bert.cls_rows(&batch, &hidden);
            p.forward(&self.bert.kernels, batch.sequences(), &cls)
        });
        Ok(encoded
            .into_iter()
            .enumerate()
            .map(|(s, encoded)| {
                let range = batch.range(s);
                EncoderOutput {
                    encoded,
                    last_hidden_state: hidden[range.start * h..range.end * h].to_vec(),
                    pooler_output: pooled.as_ref().map(|p| p[s * h..(s + 1) * h].to_vec()),
                }
            })
            .collect())
    }
}

/// What every model folder provides: the config and a tokenizer set up for
/// the resolved max length.
struct ModelFolder {
    config: BertConfig,
    tokenizer: PairTokenizer,
    max_length: usize,
}

impl ModelFolder {
    fn open(dir: &Path, max_length: Option<usize>, truncation: Truncation) -> Result<ModelFolder> {
        if !dir.is_dir() {
            return Err(Error::MissingFile {
                path: dir.to_path_buf(),
            });
        }
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let positions = config.max_position_embeddings;
        let max_length = match max_length {
            Some(0) => {
                return Err(Error::InvalidOption {
                    name: "max_length",
                    message: "must be at least 1".into(),
                })
            }
            Some(n) if n > positions => {
                return Err(Error::InvalidOption {
                    name: "max_length",
                    message: format!(
                        "{n} is more than the model's max_position_embeddings ({positions})"
                    ),
                })
            }
            Some(n) => n,
            None => config::tokenizer_max_length(&dir.join("tokenizer_config.json"))?
                .map_or(positions, |n| n.min(positions)),
        };
        let tokenizer =
            PairTokenizer::from_file(&dir.join("tokenizer.json"), max_length, truncation)?;
        Ok(ModelFolder {
            config,
            tokenizer,
            max_length,
        })
    }
}

fn thread_pool(threads: Option<usize>) -> Result<Option<rayon::ThreadPool>> {
    match threads {
        None => Ok(None),
        Some(0) => Err(Error::InvalidOption {
            name: "threads",
            message: "must be at least 1".into(),
        }),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(Some)
            .map_err(|e| Error::ThreadPool(e.to_string())),
    }
}
