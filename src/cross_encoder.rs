//! [`CrossEncoder`]: logits, the score activation, ranking with a threshold,
//! and documents longer than the model reads (windows, [`LongDocs`]).

use std::path::Path;

use crate::config::{BertConfig, ScoreActivation};
use crate::error::{Error, Result};
use crate::load::Builder;
use crate::model::{ClassificationHead, PackedBatch, Rows, Scratch};
use crate::runner::{Progress, Runner};
use crate::tokenize::{EncodedPair, PairTokenizer, Windowing};
use crate::Isa;

/// How a document longer than the max length is scored.
///
/// With [`LongDocs::Max`] or [`LongDocs::Mean`], a pair that fits untruncated
/// is scored as it is (one window). A longer one is cut into windows:
/// - Q = the query's tokens (no special tokens), cut to `max_length / 2`;
/// - W = `max_length - len(Q) -` the pair's special tokens (3 for BERT,
///   4 for XLM-R's `<s> Q </s></s> W </s>`): document tokens per window;
/// - D = the document's tokens; window k covers `D[k·S, k·S + W)`, S the
///   stride ([`CrossEncoderBuilder::window_stride`], default `W / 2`, at
///   least 1), for k = 0, 1, ... while `k·S < len(D)`, ending with the first
///   window that reaches the end of D;
/// - each window is the model's own pair template around (Q, window), and
///   windows are batched with every other sequence (token budget);
/// - per label, the largest (`Max`) or mean (`Mean`) logit over the windows,
///   then the activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LongDocs {
    /// Truncate the pair to the max length and score it once
    /// (sentence-transformers' behaviour): the document's tail is never seen.
    #[default]
    First,
    /// Cut the document into overlapping windows, each scored with the query;
    /// per label, the largest logit over the windows (MaxP).
    Max,
    /// As [`LongDocs::Max`], with the mean of the windows' logits.
    Mean,
}

impl LongDocs {
    /// `first`, `max` or `mean`.
    pub fn name(self) -> &'static str {
        match self {
            LongDocs::First => "first",
            LongDocs::Max => "max",
            LongDocs::Mean => "mean",
        }
    }

    /// One logit per label from the logits of a document's windows
    /// (`windows: [n, labels]`, n >= 1).
    fn combine(self, windows: &[Vec<f32>]) -> Vec<f32> {
        let mut out = windows[0].clone();
        for w in &windows[1..] {
            for (o, &x) in out.iter_mut().zip(w) {
                *o = match self {
                    LongDocs::Max => o.max(x),
                    LongDocs::First | LongDocs::Mean => *o + x,
                };
            }
        }
        if self == LongDocs::Mean {
            let n = windows.len() as f32;
            out.iter_mut().for_each(|o| *o /= n);
        }
        out
    }
}

/// One pair's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The classification head's raw output, one value per label (with
    /// windows, their maximum or mean).
    pub logits: Vec<f32>,
    /// The logits after the score activation, one value per label.
    pub scores: Vec<f32>,
    /// Whether tokens were cut: the pair to fit the max length, or with
    /// windows the query to half of it.
    pub truncated: bool,
    /// Windows the document was scored in (1 unless long documents are
    /// windowed and this one did not fit).
    pub windows: usize,
    /// Tokens the model read for this pair, special tokens included, summed
    /// over its windows (what reranking APIs bill as input tokens).
    pub tokens: usize,
}

/// A document's place in a ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Index of the document in the caller's list.
    pub index: usize,
    /// Its score.
    pub score: f32,
}

/// Options for loading a [`CrossEncoder`]; start from [`CrossEncoder::builder`].
pub type CrossEncoderBuilder = Builder<CrossEncoder>;

impl Builder<CrossEncoder> {
    /// The score activation. Default: the one the model's config names, else
    /// sigmoid for one label and identity for more (as sentence-transformers).
    pub fn activation(mut self, activation: ScoreActivation) -> Self {
        self.options.activation = Some(activation);
        self
    }

    /// How documents longer than the max length are scored (default
    /// [`LongDocs::First`]).
    pub fn long_docs(mut self, long_docs: LongDocs) -> Self {
        self.options.long_docs = long_docs;
        self
    }

    /// With [`LongDocs::Max`] or [`LongDocs::Mean`]: document tokens between
    /// the starts of two windows (default: half a window, so windows overlap
    /// by half).
    pub fn window_stride(mut self, tokens: usize) -> Self {
        self.options.window_stride = Some(tokens);
        self
    }

    /// Loads the model folder `dir`.
    pub fn build(self, dir: impl AsRef<Path>) -> Result<CrossEncoder> {
        CrossEncoder::load(dir.as_ref(), self)
    }
}

/// A loaded cross-encoder. `Send + Sync`: one instance serves many threads.
pub struct CrossEncoder {
    runner: Runner,
    head: ClassificationHead,
    activation: ScoreActivation,
    long_docs: LongDocs,
    windowing: Windowing,
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

    fn load(dir: &Path, builder: CrossEncoderBuilder) -> Result<CrossEncoder> {
        let options = builder.options;
        let (runner, head) = Runner::load(dir, &options, Rows::Cls, None, |config, k, w| {
            ClassificationHead::load(config, k, w).map_err(|e| match e {
                Error::MissingTensor { name, .. } => Error::MissingTensor {
                    name,
                    hint: "this looks like an encoder without a classification head (e.g. BertModel), not a cross-encoder"
                        .into(),
                },
                e => e,
            })
        })?;
        let config = &runner.bert.config;
        let activation =
            options
                .activation
                .or(config.activation)
                .unwrap_or(if config.num_labels() == 1 {
                    ScoreActivation::Sigmoid
                } else {
                    ScoreActivation::Identity
                });
        if activation == ScoreActivation::Softmax && config.num_labels() == 1 {
            return Err(Error::InvalidOption {
                name: "activation",
                message: "softmax over a single label is 1 for every pair; use sigmoid or identity"
                    .into(),
            });
        }
        Ok(CrossEncoder {
            runner,
            head,
            activation,
            long_docs: options.long_docs,
            windowing: Windowing {
                stride: options.window_stride,
            },
        })
    }

    /// The model's config.
    pub fn config(&self) -> &BertConfig {
        &self.runner.bert.config
    }

    /// The max length pairs (or windows) are cut to, in tokens.
    pub fn max_length(&self) -> usize {
        self.runner.max_length
    }

    /// The score activation in use.
    pub fn activation(&self) -> ScoreActivation {
        self.activation
    }

    /// The precision the encoder's linear layers compute in.
    pub fn precision(&self) -> crate::Precision {
        self.runner.precision
    }

    /// The kernel path in use, e.g. `avx512` or, with int8,
    /// `avx512 (int8: avx512-vnni, attention: bf16)`.
    pub fn kernel_path(&self) -> String {
        self.runner.kernel_path()
    }

    /// How long documents are scored.
    pub fn long_docs(&self) -> LongDocs {
        self.long_docs
    }

    /// Threads the model computes on.
    pub fn threads(&self) -> usize {
        self.install(rayon::current_num_threads)
    }

    /// The instruction set the kernels were chosen for.
    pub fn isa(&self) -> Isa {
        self.runner.bert.kernels.isa()
    }

    /// Label names, in logit order.
    pub fn labels(&self) -> &[String] {
        &self.config().labels
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
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Vec<Prediction>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        let mut out = Vec::with_capacity(pairs.len());
        self.predict_each(pairs, progress, |_, p| out.push(p))?;
        Ok(out)
    }

    /// The predictions one at a time, in order: `each(index, prediction)`
    /// right after the batch that completes the pair, and `progress` after
    /// every batch. Memory stays bounded however many pairs there are, so a
    /// caller that writes each prediction out scores any number of pairs in
    /// constant memory, and a reader downstream sees results as they come.
    pub fn predict_each<Q, D>(
        &self,
        pairs: &[(Q, D)],
        progress: impl FnMut(Progress) + Send,
        each: impl FnMut(usize, Prediction) + Send,
    ) -> Result<()>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.run_inputs(
            pairs.len(),
            |tokenizer, range| self.sequences(tokenizer, &pairs[range.clone()], range.start),
            progress,
            each,
        )
    }

    /// Every pair's sequences as [`CrossEncoder::predict`] scores them (one
    /// each, or a long document's windows), tokenized one after the other on
    /// the calling thread, off the model's pool: the server tokenizes a
    /// request with this while the model computes others. (Not on rayon's
    /// global pool either: its threads spin after their work, and on a
    /// machine whose cores the model's pool fills that delays the model.)
    #[cfg(feature = "server")]
    pub(crate) fn encode_inputs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Vec<EncodedPair>>> {
        let tokenizer = &self.runner.tokenizer;
        pairs
            .iter()
            .enumerate()
            .map(|(i, (q, d))| match self.long_docs {
                LongDocs::First => tokenizer.encode_pair(q, d, i).map(|e| vec![e]),
                LongDocs::Max | LongDocs::Mean => tokenizer.encode_windows(q, d, self.windowing, i),
            })
            .collect()
    }

    /// The predictions for inputs tokenized by [`CrossEncoder::encode_inputs`]:
    /// the same as [`CrossEncoder::predict_all`] on their pairs.
    #[cfg(feature = "server")]
    pub(crate) fn predict_encoded(&self, inputs: &[Vec<EncodedPair>]) -> Result<Vec<Prediction>> {
        let mut out = Vec::with_capacity(inputs.len());
        self.run_inputs(
            inputs.len(),
            |_, range| Ok(inputs[range].to_vec()),
            |_| {},
            |_, p| out.push(p),
        )?;
        Ok(out)
    }

    /// `chunk`'s sequences (pair indices counted from `first`).
    fn sequences<Q, D>(
        &self,
        tokenizer: &PairTokenizer,
        chunk: &[(Q, D)],
        first: usize,
    ) -> Result<Vec<Vec<EncodedPair>>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        if self.long_docs == LongDocs::First {
            let encoded = tokenizer.encode_pairs(chunk, first)?;
            return Ok(encoded.into_iter().map(|e| vec![e]).collect());
        }
        use rayon::prelude::*;
        chunk
            .par_iter()
            .enumerate()
            .map(|(i, (q, d))| {
                tokenizer.encode_windows(q.as_ref(), d.as_ref(), self.windowing, first + i)
            })
            .collect()
    }

    /// The runner's loop over `total` inputs whose sequences `encode` gives.
    fn run_inputs(
        &self,
        total: usize,
        encode: impl Fn(&PairTokenizer, std::ops::Range<usize>) -> Result<Vec<Vec<EncodedPair>>>
            + Send
            + Sync,
        progress: impl FnMut(Progress) + Send,
        mut each: impl FnMut(usize, Prediction) + Send,
    ) -> Result<()> {
        let labels = self.config().num_labels();
        self.runner.run(
            total,
            encode,
            |batch, scratch, results| {
                let n = batch.sequences();
                self.logits(batch, scratch);
                let logits = scratch.logits[..n * labels].chunks_exact(labels);
                results.extend(logits.map(<[f32]>::to_vec));
            },
            |i, windows, logits| {
                let logits = self.long_docs.combine(&logits);
                let prediction = Prediction {
                    scores: self.activation.apply(&logits),
                    logits,
                    truncated: windows.iter().any(|w| w.truncated),
                    windows: windows.len(),
                    tokens: windows.iter().map(|w| w.input_ids.len()).sum(),
                };
                each(i, prediction);
                Ok(())
            },
            progress,
        )
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

    /// Tokenizes pairs as [`CrossEncoder::predict`] would with
    /// [`LongDocs::First`] (one truncated sequence per pair).
    pub fn encode_pairs<Q, D>(&self, pairs: &[(Q, D)]) -> Result<Vec<EncodedPair>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        self.install(|| self.runner.tokenizer.encode_pairs(pairs, 0))
    }

    /// Tokenizes one pair as [`CrossEncoder::encode_pairs`] does.
    pub fn encode_pair(&self, query: &str, document: &str) -> Result<EncodedPair> {
        let mut encoded = self.encode_pairs(&[(query, document)])?;
        Ok(encoded.remove(0))
    }

    /// The sequences [`CrossEncoder::predict`] scores for one pair: the
    /// plain pair with [`LongDocs::First`] or when it fits, else its windows
    /// (see [`LongDocs`]).
    pub fn encode_windows(&self, query: &str, document: &str) -> Result<Vec<EncodedPair>> {
        match self.long_docs {
            LongDocs::First => Ok(vec![self.encode_pair(query, document)?]),
            LongDocs::Max | LongDocs::Mean => {
                self.runner
                    .tokenizer
                    .encode_windows(query, document, self.windowing, 0)
            }
        }
    }

    /// The forward pass alone: logits `[sequences, num_labels]` for a packed
    /// batch of tokenized pairs, computed in `scratch`. Once `scratch` has
    /// seen a batch this large, the call allocates nothing.
    pub fn forward<'s>(&self, batch: &PackedBatch, scratch: &'s mut Scratch) -> Result<&'s [f32]> {
        self.runner.bert.check(batch)?;
        self.install(|| self.logits(batch, scratch));
        Ok(&scratch.logits[..batch.sequences() * self.config().num_labels()])
    }

    /// The hidden state after the embeddings and after every encoder layer
    /// (`[tokens, hidden]` each, `num_hidden_layers + 1` of them), for
    /// checking a forward pass layer by layer against PyTorch's
    /// `output_hidden_states`.
    pub fn hidden_states(&self, query: &str, document: &str) -> Result<Vec<Vec<f32>>> {
        let encoded = self.encode_pair(query, document)?;
        let mut batch = PackedBatch::new();
        batch.push(&encoded.input_ids, &encoded.token_type_ids)?;
        self.runner.bert.check(&batch)?;
        let mut trace = Vec::new();
        self.install(|| {
            self.runner
                .bert
                .forward(&batch, &mut Scratch::new(), Some(&mut trace))
        });
        Ok(trace)
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
    /// batch.push(&encoded.input_ids, &encoded.token_type_ids)?;
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
        self.runner.install(f)
    }

    fn single_label(&self) -> Result<()> {
        match self.config().num_labels() {
            1 => Ok(()),
            num_labels => Err(Error::MultiLabel { num_labels }),
        }
    }

    /// Logits for `batch` into `scratch.logits`.
    fn logits(&self, batch: &PackedBatch, s: &mut Scratch) {
        let bert = &self.runner.bert;
        let labels = bert.config.num_labels();
        let (n, h) = (batch.sequences(), bert.config.hidden_size);
        bert.forward_cls(batch, s, labels);
        self.head.forward(
            &bert.kernels,
            n,
            &s.cls[..n * h],
            &mut s.pooled[..n * h],
            &mut s.logits[..n * labels],
        );
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
