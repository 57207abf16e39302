//! A model folder -> config, tokenizer and weights, with the options every
//! head shares ([`Builder`]).

use std::marker::PhantomData;
use std::path::Path;

use crossenc_kernels::Kernels;

use crate::config::{self, BertConfig, ScoreActivation};
use crate::error::{Error, Result};
use crate::tokenize::{PairTokenizer, Truncation};
use crate::weights::{SafetensorsFile, Weights};
use crate::LongDocs;

/// Most sequences in one forward pass when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Most tokens in one forward pass when the caller does not say. Models
/// run whole sequences through every layer in groups of 256 or 512 tokens
/// whatever the batch, so the budget bounds little memory (the token ids,
/// a classifier's `[CLS]` rows, what an encoder hands out); smaller budgets
/// pay a batch's fixed costs more often.
pub const DEFAULT_TOKEN_BUDGET: usize = 2048;

/// The precision the encoder's linear layers compute in.
///
/// Embeddings, attention, softmax, layer norm, the pooler and the
/// classification head stay f32 in every precision: they are a few percent
/// of the arithmetic, and attention's scores and the layer norms are where
/// reduced precision costs accuracy first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: PyTorch's results within ~1e-5 (the default).
    #[default]
    F32,
    /// 8-bit integers: the activations per token in blocks of 32 along K
    /// (per call), the weights once at load with one scale per output
    /// feature, but FFN-down's in blocks of 32 as the activations (as
    /// llama.cpp's Q8_0); int32 dot products, scaled into f32 sums. A
    /// token's scales depend on that token alone, so scores do not depend on
    /// the batch. The weights are held only in int8 (about a quarter of f32).
    ///
    /// Speed depends on the CPU's integer dot products: 2.5x f32 with
    /// AVX-512 VNNI (Zen 4), but on AVX2 alone (no VNNI) exact 8-bit
    /// products run at about 1.5x the FMA rate, and end to end int8 is
    /// 0.9-1.1x f32 there: it saves memory rather than time (README,
    /// "Reduced precision").
    Int8,
    /// bf16 weights (half of f32), f32 sums. With AVX512_BF16 the
    /// activations are rounded to bf16 too and multiplied by `vdpbf16ps`;
    /// elsewhere the weights are widened to f32 on the fly and the
    /// activations stay f32. Attention, softmax and layer norm stay f32.
    Bf16,
}

impl Precision {
    /// `f32`, `bf16` or `int8`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::Bf16 => "bf16",
        }
    }
}

/// What a builder collects; each head reads the part that concerns it.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) max_length: Option<usize>,
    pub(crate) batch_size: usize,
    pub(crate) token_budget: usize,
    pub(crate) truncation: Truncation,
    pub(crate) threads: Option<usize>,
    pub(crate) activation: Option<ScoreActivation>,
    pub(crate) long_docs: LongDocs,
    pub(crate) window_stride: Option<usize>,
    pub(crate) precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_length: None,
            batch_size: DEFAULT_BATCH_SIZE,
            token_budget: DEFAULT_TOKEN_BUDGET,
            truncation: Truncation::LongestFirst,
            threads: None,
            activation: None,
            long_docs: LongDocs::First,
            window_stride: None,
            precision: Precision::F32,
        }
    }
}

impl Options {
    /// Refuses the values no head can run with, by option name.
    pub(crate) fn validate(&self) -> Result<()> {
        let positive = [
            ("batch_size", Some(self.batch_size)),
            ("token_budget", Some(self.token_budget)),
            ("max_length", self.max_length),
            ("threads", self.threads),
            ("window_stride", self.window_stride),
        ];
        for (name, value) in positive {
            if value == Some(0) {
                return Err(Error::InvalidOption {
                    name,
                    message: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }
}

/// Options for loading a model; the same for every head
/// ([`crate::CrossEncoder`], [`crate::SentenceEmbedder`], [`crate::Encoder`]),
/// plus the cross-encoder's own ([`Builder::activation`], [`Builder::long_docs`]).
///
/// ```no_run
/// use crossenc::{SentenceEmbedder, Truncation};
/// let embedder = SentenceEmbedder::builder()
///     .max_length(128)
///     .token_budget(4096)
///     .threads(2)
///     .build("models/all-MiniLM-L6-v2")?;
/// # Ok::<(), crossenc::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder<M> {
    pub(crate) options: Options,
    model: PhantomData<fn() -> M>,
}

impl<M> Default for Builder<M> {
    fn default() -> Self {
        Builder {
            options: Options::default(),
            model: PhantomData,
        }
    }
}

impl<M> Builder<M> {
    /// Longest input in tokens, special tokens included. Default: the smaller
    /// of `tokenizer_config.json`'s `model_max_length` and the model's
    /// `max_position_embeddings` (for a [`crate::SentenceEmbedder`],
    /// `sentence_bert_config.json`'s `max_seq_length` first).
    pub fn max_length(mut self, tokens: usize) -> Self {
        self.options.max_length = Some(tokens);
        self
    }

    /// [`Builder::max_length`] when `tokens` is given.
    pub(crate) fn max_length_if(mut self, tokens: Option<usize>) -> Self {
        self.options.max_length = tokens.or(self.options.max_length);
        self
    }

    /// Most sequences per forward pass (default [`DEFAULT_BATCH_SIZE`]).
    pub fn batch_size(mut self, sequences: usize) -> Self {
        self.options.batch_size = sequences;
        self
    }

    /// Most tokens per forward pass (default [`DEFAULT_TOKEN_BUDGET`]).
    /// Inputs are packed without padding, so a batch costs what its tokens
    /// cost, and the budget bounds the activations' memory; a single input
    /// longer than the budget runs alone.
    pub fn token_budget(mut self, tokens: usize) -> Self {
        self.options.token_budget = tokens;
        self
    }

    /// How over-long inputs are cut (default [`Truncation::LongestFirst`]).
    pub fn truncation(mut self, truncation: Truncation) -> Self {
        self.options.truncation = truncation;
        self
    }

    /// The precision of the encoder's linear layers (default [`Precision::F32`]).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.options.precision = precision;
        self
    }

    /// Threads to compute on. Default: rayon's global pool (all cores).
    pub fn threads(mut self, threads: usize) -> Self {
        self.options.threads = Some(threads);
        self
    }
}

/// What every model folder provides besides its weights: a tokenizer set up
/// for the resolved max length.
pub(crate) struct ModelFolder {
    pub(crate) tokenizer: PairTokenizer,
    pub(crate) max_length: usize,
}

impl ModelFolder {
    /// The folder's config and the max length: `max_length` if given (at most
    /// the model's positions), else `fallback` if that fits the positions,
    /// else the tokenizer config's `model_max_length` capped by the positions.
    fn config(
        dir: &Path,
        max_length: Option<usize>,
        fallback: Option<usize>,
    ) -> Result<(BertConfig, usize)> {
        check_folder(dir)?;
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let positions = config.max_positions();
        let max_length = match max_length {
            Some(n) if n > positions => {
                return Err(Error::InvalidOption {
                    name: "max_length",
                    message: format!(
                        "{n} is more than the {positions} positions the model has (max_position_embeddings)"
                    ),
                })
            }
            Some(n) => n,
            None => match fallback.filter(|&n| n >= 1 && n <= positions) {
                Some(n) => n,
                None => config::tokenizer_max_length(&dir.join("tokenizer_config.json"))?
                    .map_or(positions, |n| n.min(positions)),
            },
        };
        Ok((config, max_length))
    }

    /// Reads the config, parses the tokenizer and runs `load` on the weights
    /// (`model.safetensors`) with the kernels this CPU runs best. The
    /// tokenizer is parsed on a second thread while `load` reads the weights
    /// on this one (on a cold start the two are ~20% and ~60% of the time).
    /// Errors come in the order a sequential load would meet them: config,
    /// tokenizer, then the weights'.
    pub(crate) fn open<T>(
        dir: &Path,
        options: &Options,
        fallback_max_length: Option<usize>,
        load: impl FnOnce(&BertConfig, Kernels, &Weights<'_>) -> Result<T>,
    ) -> Result<(ModelFolder, T)> {
        let (config, max_length) =
            ModelFolder::config(dir, options.max_length, fallback_max_length)?;
        let windows = options.long_docs != LongDocs::First;
        let (tokenizer, loaded) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| {
                let path = dir.join("tokenizer.json");
                PairTokenizer::from_file(&path, max_length, options.truncation, windows)
            });
            let loaded = (|| {
                let kernels = Kernels::detect()?;
                let file = SafetensorsFile::open(&dir.join("model.safetensors"))?;
                let loaded = load(&config, kernels, &file.tensors()?);
                file.release_all();
                loaded
            })();
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (tokenizer, loaded)
        });
        let folder = ModelFolder {
            tokenizer: tokenizer?,
            max_length,
        };
        Ok((folder, loaded?))
    }
}

/// Refuses what is not a model folder, each with its own message: a missing
/// folder, a file (e.g. the folder's config.json), and a folder with PyTorch
/// pickles but no safetensors. Every builder checks this first; a program
/// that reads files of the folder itself before building can call it to get
/// the same messages.
///
/// ```
/// let err = crossenc::check_model_folder("tests/data/fixtures/bert-l2-h32/config.json".as_ref())
///     .unwrap_err();
/// assert!(err.to_string().contains("is a file"));
/// ```
pub fn check_folder(dir: &Path) -> Result<()> {
    if dir.is_file() {
        return Err(Error::ModelPath {
            path: dir.to_path_buf(),
            message: "is a file; a model is the folder that holds config.json, model.safetensors and tokenizer.json".into(),
        });
    }
    if !dir.is_dir() {
        return Err(Error::MissingFile {
            path: dir.to_path_buf(),
        });
    }
    let pickles = [
        "pytorch_model.bin",
        "model.bin",
        "pytorch_model.bin.index.json",
    ];
    if !dir.join("model.safetensors").exists() {
        if let Some(found) = pickles.iter().find(|f| dir.join(f).exists()) {
            return Err(Error::ModelPath {
                path: dir.to_path_buf(),
                message: format!(
                    "has {found} but no model.safetensors; crossenc reads safetensors only (PyTorch pickles can run code). Convert once with: python -c \"from transformers import AutoModelForSequenceClassification as M; M.from_pretrained('{d}').save_pretrained('{d}', safe_serialization=True)\"",
                    d = dir.display()
                ),
            });
        }
    }
    Ok(())
}

/// A pool of `threads` threads, or `None` for rayon's global pool.
pub(crate) fn thread_pool(threads: Option<usize>) -> Result<Option<rayon::ThreadPool>> {
    threads
        .map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::ThreadPool(e.to_string()))
        })
        .transpose()
}
