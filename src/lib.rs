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

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod bench;
pub mod config;
mod embed;
mod error;
#[cfg(feature = "hub")]
pub mod hub;
mod model;
mod tokenize;
mod weights;

use std::path::Path;

pub use config::{Architecture, BertConfig, ScoreActivation};
pub use crossenc_kernels::Isa;
pub use embed::{Pooling, SentenceEmbedder};
pub use error::{Error, Result};
pub use model::{PackedBatch, Scratch};
pub use tokenize::{EncodedPair, Truncation};

use crossenc_kernels::Kernels;
use model::{Bert, ClassificationHead};
use tokenize::PairTokenizer;

/// Most pairs in one forward pass when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Most tokens in one forward pass when the caller does not say: enough rows
/// for the GEMMs to run near peak, few enough that the activations of a
/// MiniLM-sized model (~15 KiB a token) stay around 30 MiB.
pub const DEFAULT_TOKEN_BUDGET: usize = 2048;

/// Pairs tokenized at a time, between progress reports.
const TOKENIZE_CHUNK: usize = 512;

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
    token_budget: usize,
    activation: Option<ScoreActivation>,
    truncation: Truncation,
    threads: Option<usize>,
}

impl Default for CrossEncoderBuilder {
    fn default() -> Self {
        CrossEncoderBuilder {
            max_length: None,
            batch_size: DEFAULT_BATCH_SIZE,
            token_budget: DEFAULT_TOKEN_BUDGET,
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

    /// Most pairs per forward pass (default [`DEFAULT_BATCH_SIZE`]).
    pub fn batch_size(mut self, pairs: usize) -> Self {
        self.batch_size = pairs;
        self
    }

    /// Most tokens per forward pass (default [`DEFAULT_TOKEN_BUDGET`]). Pairs
    /// are packed without padding, so a batch costs what its tokens cost; a
    /// single pair longer than the budget runs alone.
    pub fn token_budget(mut self, tokens: usize) -> Self {
        self.token_budget = tokens;
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
        for (name, value) in [
            ("batch_size", self.batch_size),
            ("token_budget", self.token_budget),
        ] {
            if value == 0 {
                return Err(Error::InvalidOption {
                    name,
                    message: "must be at least 1".into(),
                });
            }
        }
        let pool = thread_pool(self.threads)?;
        let (folder, (bert, head)) = ModelFolder::open_with(
            dir,
            self.max_length,
            self.truncation,
            |config| {
                let kernels = Kernels::detect()?;
                let st = weights::SafetensorsFile::open(&dir.join("model.safetensors"))?;
                let w = st.tensors()?;
                let bert = Bert::load(config.clone(), kernels, &w, false)?;
                let head = ClassificationHead::load(config, &kernels, &w).map_err(|e| match e {
                    Error::MissingTensor { name, .. } => Error::MissingTensor {
                        name,
                        hint: "this looks like an encoder without a classification head (e.g. BertModel), not a cross-encoder"
                            .into(),
                    },
                    e => e,
                })?;
                Ok((bert, head))
            },
        )?;
        let activation = self.activation.or(folder.config.activation).unwrap_or(
            if folder.config.num_labels() == 1 {
                ScoreActivation::Sigmoid
            } else {
                ScoreActivation::Identity
            },
        );
        let model = CrossEncoder {
            bert,
            head,
            tokenizer: folder.tokenizer,
            max_length: folder.max_length,
            batch_size: self.batch_size,
            token_budget: self.token_budget,
            activation,
            pool,
            scratch: std::sync::Mutex::new(Vec::new()),
        };
        // Every pool thread sizes its GEMM packing buffers now rather than
        // whenever the scheduler first hands it work, so that steady-state
        // forward passes never allocate, whichever threads run them.
        model.install(|| rayon::broadcast(|_| crossenc_kernels::gemm::reserve_thread_buffers()));
        Ok(model)
    }
}

/// A loaded cross-encoder. `Send + Sync`: one instance serves many threads.
pub struct CrossEncoder {
    bert: Bert,
    head: ClassificationHead,
    tokenizer: PairTokenizer,
    max_length: usize,
    batch_size: usize,
    token_budget: usize,
    activation: ScoreActivation,
    pool: Option<rayon::ThreadPool>,
    /// Scratch left by finished calls, for the next ones.
    scratch: std::sync::Mutex<Vec<Scratch>>,
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

    /// Threads the model computes on.
    pub fn threads(&self) -> usize {
        self.install(rayon::current_num_threads)
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
            let mut scratch = self.take_scratch();
            let mut out = Vec::with_capacity(pairs.len());
            for (c, chunk) in pairs.chunks(TOKENIZE_CHUNK).enumerate() {
                let encoded = self.tokenizer.encode_pairs(chunk, c * TOKENIZE_CHUNK)?;
                let mut rest = &encoded[..];
                while !rest.is_empty() {
                    let n = self.next_batch_len(rest);
                    out.extend(self.score_encoded(&rest[..n], &mut scratch)?);
                    rest = &rest[n..];
                    progress(Progress {
                        done: out.len(),
                        total: pairs.len(),
                    });
                }
            }
            self.scratch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(scratch);
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

    /// Tokenizes pairs as [`CrossEncoder::predict`] would.
    pub fn encode_pairs<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<EncodedPair>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.install(|| self.tokenizer.encode_pairs(pairs, 0))
    }

    /// The forward pass alone: logits `[sequences, num_labels]` for a packed
    /// batch of tokenized pairs, computed in `scratch`. Once `scratch` has
    /// seen a batch this large, the call allocates nothing.
    pub fn forward<'s>(&self, batch: &PackedBatch, scratch: &'s mut Scratch) -> Result<&'s [f32]> {
        self.bert.check(batch)?;
        self.install(|| self.logits(batch, scratch));
        Ok(&scratch.logits[..batch.sequences() * self.bert.config.num_labels()])
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
        let batch = pack(std::slice::from_ref(&encoded));
        self.bert.check(&batch)?;
        let mut trace = Vec::new();
        self.install(|| {
            self.bert
                .forward(&batch, &mut Scratch::new(), Some(&mut trace))
        });
        Ok(trace)
    }

    fn single_label(&self) -> Result<()> {
        match self.bert.config.num_labels() {
            1 => Ok(()),
            num_labels => Err(Error::MultiLabel { num_labels }),
        }
    }

    /// Runs `f` on a thread of the pool this model computes on (its own, when
    /// built with [`CrossEncoderBuilder::threads`]; otherwise rayon's current
    /// pool) and returns its result.
    ///
    /// Every call of [`CrossEncoder::forward`] or `predict` from outside the
    /// pool hands its work over through rayon's injector queue, which
    /// allocates one small block per 63 hand-offs. Calls made inside `install`
    /// are already on the pool: a serving loop there never touches the heap
    /// in `forward`.
    ///
    /// ```no_run
    /// # fn main() -> crossenc::Result<()> {
    /// use crossenc::{CrossEncoder, PackedBatch, Scratch};
    /// let model = CrossEncoder::builder().threads(2).build("model-dir")?;
    /// let encoded = model.encode_pair("capital of France", "Paris is the capital.")?;
    /// let mut batch = PackedBatch::new();
    /// batch.push(&encoded.input_ids, &encoded.token_type_ids);
    /// let mut scratch = Scratch::new();
    /// model.install(|| -> crossenc::Result<()> {
    ///     for _ in 0..1000 {
    ///         let logits = model.forward(&batch, &mut scratch)?;
    ///         assert_eq!(logits.len(), 1);
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn install<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => rayon::scope(|_| f()),
        }
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// How many of `encoded` go into the next batch: up to the pair and token limits.
    fn next_batch_len(&self, encoded: &[EncodedPair]) -> usize {
        let mut tokens = 0;
        let mut n = 0;
        for e in encoded.iter().take(self.batch_size) {
            tokens += e.input_ids.len();
            if n > 0 && tokens > self.token_budget {
                break;
            }
            n += 1;
        }
        n
    }

    /// Logits for `batch` into `scratch.logits`.
    fn logits(&self, batch: &PackedBatch, s: &mut Scratch) {
        let labels = self.bert.config.num_labels();
        let (n, h) = (batch.sequences(), self.bert.config.hidden_size);
        self.bert.forward_cls(batch, s, labels);
        self.head.forward(
            &self.bert.kernels,
            n,
            &s.cls[..n * h],
            &mut s.pooled[..n * h],
            &mut s.logits[..n * labels],
        );
    }

    fn score_encoded(
        &self,
        encoded: &[EncodedPair],
        scratch: &mut Scratch,
    ) -> Result<Vec<Prediction>> {
        let batch = pack(encoded);
        self.bert.check(&batch)?;
        self.logits(&batch, scratch);
        let labels = self.bert.config.num_labels();
        Ok(scratch.logits[..batch.sequences() * labels]
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
        let (folder, bert) =
            ModelFolder::open_with(dir, max_length, Truncation::LongestFirst, |config| {
                load_encoder(dir, config)
            })?;
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
        let batch = pack(&encoded);
        self.bert.check(&batch)?;
        let (n, h) = (batch.sequences(), self.bert.config.hidden_size);
        let mut s = Scratch::new();
        self.bert.forward(&batch, &mut s, None);
        let hidden = &s.hidden[..batch.tokens() * h];
        let pooled = self.bert.pooler.as_ref().map(|_| {
            let mut cls = vec![0.0; n * h];
            model::gather_rows(&batch, hidden, &mut cls, h);
            let mut pooled = vec![0.0; n * h];
            self.bert.pool(n, &cls, &mut pooled);
            pooled
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
pub(crate) struct ModelFolder {
    pub(crate) config: BertConfig,
    pub(crate) tokenizer: PairTokenizer,
    pub(crate) max_length: usize,
}

/// The encoder in `dir`'s `model.safetensors` (no classification head), for
/// [`ModelFolder::open_with`].
pub(crate) fn load_encoder(dir: &Path, config: &BertConfig) -> Result<Bert> {
    let kernels = Kernels::detect()?;
    let st = weights::SafetensorsFile::open(&dir.join("model.safetensors"))?;
    Bert::load(config.clone(), kernels, &st.tensors()?, false)
}

impl ModelFolder {
    /// The folder's config and the max length `max_length` resolves to.
    fn config(dir: &Path, max_length: Option<usize>) -> Result<(BertConfig, usize)> {
        if !dir.is_dir() {
            return Err(Error::MissingFile {
                path: dir.to_path_buf(),
            });
        }
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let positions = config.max_positions();
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
                        "{n} is more than the {positions} positions the model has (max_position_embeddings)"
                    ),
                })
            }
            Some(n) => n,
            None => config::tokenizer_max_length(&dir.join("tokenizer_config.json"))?
                .map_or(positions, |n| n.min(positions)),
        };
        Ok((config, max_length))
    }

    /// Reads the config, parses the tokenizer and runs `load(config)` (the
    /// weights): the tokenizer is parsed on a second thread while `load`
    /// reads the weights on this one
    /// (on a cold start the two are ~20% and ~60% of the time). Errors come
    /// in the order a sequential load would meet them: config, tokenizer,
    /// then `load`'s.
    pub(crate) fn open_with<T>(
        dir: &Path,
        max_length: Option<usize>,
        truncation: Truncation,
        load: impl FnOnce(&BertConfig) -> Result<T>,
    ) -> Result<(ModelFolder, T)> {
        let (config, max_length) = ModelFolder::config(dir, max_length)?;
        let (tokenizer, loaded) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| {
                PairTokenizer::from_file(&dir.join("tokenizer.json"), max_length, truncation)
            });
            let loaded = load(&config);
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (tokenizer, loaded)
        });
        let folder = ModelFolder {
            config,
            tokenizer: tokenizer?,
            max_length,
        };
        Ok((folder, loaded?))
    }
}

/// Packs tokenized pairs into one batch.
pub(crate) fn pack(encoded: &[EncodedPair]) -> PackedBatch {
    let mut batch = PackedBatch::new();
    for e in encoded {
        batch.push(&e.input_ids, &e.token_type_ids);
    }
    batch
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
