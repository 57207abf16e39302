//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or scoring text.
///
/// Messages are lowercase, name the file, key or tensor involved, and end with
/// a hint where one helps.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file the model folder needs is not there.
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// `config.json` (or `tokenizer_config.json`) is not valid JSON, or a key has the wrong type.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model asks for something crossenc cannot run.
    Unsupported {
        /// The config key, e.g. `model_type`.
        key: String,
        /// Its value.
        value: String,
        /// What crossenc supports instead.
        supported: String,
    },
    /// `model.safetensors` is not a valid safetensors file.
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A weight the model needs is missing.
    MissingTensor {
        /// The tensor's name without the `bert.` prefix.
        name: String,
        /// A hint about what kind of model this file may hold instead.
        hint: String,
    },
    /// A weight has the wrong shape.
    TensorShape {
        /// The tensor's name as stored.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A weight has a dtype crossenc does not load (only F32, F16 and BF16 are).
    TensorDtype {
        /// The tensor's name as stored.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A weight holds NaN or infinity: every score would be NaN, so the model is refused.
    NonFiniteWeight {
        /// The tensor's name as stored.
        name: String,
        /// Index of the first non-finite element.
        index: usize,
    },
    /// The tokenizer could not be loaded or failed on an input.
    Tokenizer {
        /// What went wrong.
        message: String,
    },
    /// The query alone is longer than the max length, so `only_second` truncation cannot keep it whole.
    QueryTooLong {
        /// Index of the pair.
        pair: usize,
        /// The maximum length in tokens.
        max_length: usize,
    },
    /// The tokenizer produced a token id the model has no embedding for.
    TokenOutOfRange {
        /// The token id.
        id: u32,
        /// The model's vocabulary size.
        vocab_size: usize,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why the value was refused.
        message: String,
    },
    /// A model path that is not a model folder: a file, or a folder whose
    /// weights crossenc cannot read.
    ModelPath {
        /// The path given.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A [`crate::PackedBatch`] whose parts do not fit together, or whose
    /// sequences the model cannot read (empty, or longer than its positions).
    InvalidBatch {
        /// What is wrong, naming the sequence or entry.
        message: String,
    },
    /// A single-score call on a model with several labels.
    MultiLabel {
        /// The number of labels the model has.
        num_labels: usize,
    },
    /// No kernels for the instruction set asked for (`CROSSENC_ISA`).
    Isa(crossenc_kernels::IsaError),
    /// The thread pool could not be built.
    ThreadPool(String),
    /// The HTTP server could not start or stopped with an error.
    Server {
        /// What went wrong.
        message: String,
    },
    /// A hub model could not be resolved to a local folder.
    Hub {
        /// The model id.
        model: String,
        /// What went wrong.
        message: String,
        /// What to do about it.
        hint: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Server { message } => write!(f, "server: {message}"),
            Error::MissingFile { path } => write!(
                f,
                "{} not found (a model folder holds config.json, model.safetensors and tokenizer.json, as Hugging Face's save_pretrained writes them)",
                path.display()
            ),
            Error::Config { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Unsupported { key, value, supported } => {
                write!(f, "config.json: {key} = {value} is not supported (supported: {supported})")
            }
            Error::Safetensors { path, message } => write!(
                f,
                "{}: not a valid safetensors file: {message} (is the download complete?)",
                path.display()
            ),
            Error::MissingTensor { name, hint } => {
                write!(f, "model.safetensors: tensor `{name}` is missing")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Error::TensorShape { name, expected, found } => write!(
                f,
                "model.safetensors: tensor `{name}` has shape {found:?}, expected {expected:?} from config.json"
            ),
            Error::TensorDtype { name, dtype } => write!(
                f,
                "model.safetensors: tensor `{name}` has dtype {dtype}; crossenc loads F32, F16 and BF16 weights"
            ),
            Error::NonFiniteWeight { name, index } => write!(
                f,
                "model.safetensors: tensor `{name}` holds NaN or infinity at element {index}; every score would be NaN, so the model is refused"
            ),
            Error::Tokenizer { message } => write!(f, "tokenizer: {message}"),
            Error::QueryTooLong { pair, max_length } => write!(
                f,
                "pair {pair}: the query alone does not fit in {max_length} tokens, so `only_second` truncation cannot keep it whole (use longest-first truncation or a larger max length)"
            ),
            Error::TokenOutOfRange { id, vocab_size } => write!(
                f,
                "the tokenizer produced token id {id}, but the model's vocabulary has {vocab_size} entries (tokenizer.json does not belong to this model?)"
            ),
            Error::InvalidOption { name, message } => write!(f, "option {name}: {message}"),
            Error::InvalidBatch { message } => write!(f, "invalid batch: {message}"),
            Error::ModelPath { path, message } => write!(f, "{}: {message}", path.display()),
            Error::MultiLabel { num_labels } => write!(
                f,
                "the model has {num_labels} labels, so a pair has no single score (use predict_all for every label's score)"
            ),
            Error::Isa(e) => write!(f, "{e}"),
            Error::ThreadPool(message) => write!(f, "cannot start the thread pool: {message}"),
            Error::Hub { model, message, hint } => {
                write!(f, "model {model}: {message}")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The messages of `Io` and `Isa` already end with their cause's; as a
        // source too, a report that prints the chain would say it twice.
        None
    }
}

impl From<crossenc_kernels::IsaError> for Error {
    fn from(e: crossenc_kernels::IsaError) -> Error {
        Error::Isa(e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads a file, turning "not found" into [`Error::MissingFile`].
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| io_error(path, source))
}

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::MissingFile {
            path: path.to_path_buf(),
        }
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
