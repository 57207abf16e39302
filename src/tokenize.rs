//! `tokenizer.json` glue: pair encoding with truncation, as sentence-transformers does it.

use std::path::Path;

use rayon::prelude::*;
use tokenizers::{
    EncodeInput, Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::error::{Error, Result};

/// How a pair longer than the max length is cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Truncation {
    /// Remove tokens one at a time from the longer of the two texts
    /// (what sentence-transformers' `CrossEncoder` does).
    #[default]
    LongestFirst,
    /// Keep the query whole; cut only the document. A query that does not fit
    /// on its own is an error ([`Error::QueryTooLong`]).
    OnlySecond,
}

/// One pair (or text) as token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPair {
    /// Token ids, special tokens included: `[CLS] query [SEP] document [SEP]` for BERT.
    pub input_ids: Vec<u32>,
    /// Segment ids: 0 for the query part, 1 for the document part.
    pub token_type_ids: Vec<u32>,
    /// Whether tokens were cut to fit the max length.
    pub truncated: bool,
}

/// A tokenizer set up for one max length and truncation mode.
pub(crate) struct PairTokenizer {
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, to cut long documents into
    /// windows; only when windows are asked for (it is a second copy of the
    /// vocabulary).
    untruncated: Option<Tokenizer>,
    truncation: Truncation,
    max_length: usize,
    /// The largest token id the tokenizer can emit (its vocabulary, added
    /// tokens and the pair template's special tokens).
    max_token_id: u32,
}

/// How a document too long for one pair is cut into windows (see
/// [`PairTokenizer::encode_windows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Windowing {
    /// Document tokens between the starts of two windows; `None`: half a window.
    pub(crate) stride: Option<usize>,
}

impl PairTokenizer {
    pub(crate) fn from_file(
        path: &Path,
        max_length: usize,
        truncation: Truncation,
        windows: bool,
    ) -> Result<PairTokenizer> {
        if !path.exists() {
            return Err(Error::MissingFile {
                path: path.to_path_buf(),
            });
        }
        let json = crate::error::read(path)?;
        PairTokenizer::from_bytes(path, &json, max_length, truncation, windows)
    }

    /// [`PairTokenizer::from_file`] on the file's bytes; `path` names it in errors.
    pub(crate) fn from_bytes(
        path: &Path,
        json: &[u8],
        max_length: usize,
        truncation: Truncation,
        windows: bool,
    ) -> Result<PairTokenizer> {
        // tokenizers 0.23 panics (`expect("Helper")`) on a syntax error
        // inside a decoder, which it reads as untyped JSON first: check the
        // syntax of the whole file before it sees any of it.
        serde_json::from_slice::<serde::de::IgnoredAny>(json).map_err(|e| Error::Tokenizer {
            message: format!("cannot load {}: malformed JSON: {e}", path.display()),
        })?;
        let mut tokenizer =
            guarded(|| Tokenizer::from_bytes(json)).map_err(|e| Error::Tokenizer {
                message: format!("cannot load {}: {e}", path.display()),
            })?;
        let strategy = match truncation {
            Truncation::LongestFirst => TruncationStrategy::LongestFirst,
            Truncation::OnlySecond => TruncationStrategy::OnlySecond,
        };
        tokenizer.with_padding(None);
        // tokenizer.json may carry a truncation of its own (all-MiniLM-L6-v2's
        // says 128), unchecked: ours replaces it below, and the windows' copy
        // has none.
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer {
                message: format!("cannot turn truncation off: {e}"),
            })?;
        let untruncated = windows.then(|| tokenizer.clone());
        // tokenizers subtracts the template's special tokens from the max
        // length unchecked (a panic, or a wrapped length that cuts nothing),
        // and a pair needs a token of each text besides (a single text, one;
        // a template may add more around it than around a pair).
        let added = |pair| {
            tokenizer
                .get_post_processor()
                .map_or(0, |p| p.added_tokens(pair))
        };
        let special = added(true);
        let least = (special + 2).max(added(false) + 1);
        if max_length < least {
            return Err(Error::InvalidOption {
                name: "max_length",
                message: format!(
                    "{max_length} tokens cannot hold a pair with one token of each text: the model's template adds {special} special tokens ([CLS] query [SEP] document [SEP] for BERT); use at least {least}"
                ),
            });
        }
        let max_token_id = max_token_id(&tokenizer).map_err(|e| Error::Tokenizer {
            message: format!("{}: {e}", path.display()),
        })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer {
                message: format!("cannot truncate to {max_length} tokens: {e}"),
            })?;
        Ok(PairTokenizer {
            tokenizer,
            untruncated,
            truncation,
            max_length,
            max_token_id,
        })
    }

    /// The largest token id this tokenizer can emit.
    pub(crate) fn max_token_id(&self) -> u32 {
        self.max_token_id
    }

    /// Encodes `(query, document)` pairs in parallel; `first` is the index of
    /// `pairs[0]` in the caller's list, for error messages.
    pub(crate) fn encode_pairs<Q, D>(
        &self,
        pairs: &[(Q, D)],
        first: usize,
    ) -> Result<Vec<EncodedPair>>
    where
        Q: AsRef<str> + Sync,
        D: AsRef<str> + Sync,
    {
        pairs
            .par_iter()
            .enumerate()
            .map(|(i, (q, d))| self.encode((q.as_ref(), d.as_ref()).into(), first + i))
            .collect()
    }

    /// Encodes one pair on the calling thread; `index` for error messages.
    #[cfg(feature = "server")]
    pub(crate) fn encode_pair(
        &self,
        query: &str,
        document: &str,
        index: usize,
    ) -> Result<EncodedPair> {
        self.encode((query, document).into(), index)
    }

    /// Encodes single texts (`[CLS] text [SEP]`) in parallel; `first` as in
    /// [`PairTokenizer::encode_pairs`].
    pub(crate) fn encode_texts<T: AsRef<str> + Sync>(
        &self,
        texts: &[T],
        first: usize,
    ) -> Result<Vec<EncodedPair>> {
        texts
            .par_iter()
            .enumerate()
            .map(|(i, t)| self.encode(t.as_ref().into(), first + i))
            .collect()
    }

    /// One pair as one or more windows over its document.
    ///
    /// A pair that fits untruncated is one window, the plain pair. Otherwise:
    /// Q = the query's tokens (no special tokens) cut to `max_length / 2`;
    /// W = `max_length - len(Q) - `the special tokens of a pair (3 for BERT,
    /// 4 for XLM-R) document tokens per window; D = the document's tokens.
    /// Window k covers `D[k·S, k·S + W)`, S the stride (default `W / 2`, at
    /// least 1), for k = 0, 1, ... while `k·S < len(D)`, ending with the first
    /// window that reaches the end of D. Each window is the model's own pair
    /// template around (Q, window), so token types are as for any pair.
    /// `truncated` is set on the windows when the query was cut.
    pub(crate) fn encode_windows(
        &self,
        query: &str,
        document: &str,
        windowing: Windowing,
        index: usize,
    ) -> Result<Vec<EncodedPair>> {
        let plain = self.encode((query, document).into(), index)?;
        if !plain.truncated {
            return Ok(vec![plain]);
        }
        let tokenizer = self
            .untruncated
            .as_ref()
            .expect("windows asked for at load");
        let tokenizer_error = |e: tokenizers::Error| Error::Tokenizer {
            message: format!("input {index}: {e}"),
        };
        let query = guarded(|| tokenizer.encode(query, false)).map_err(tokenizer_error)?;
        let document = guarded(|| tokenizer.encode(document, false)).map_err(tokenizer_error)?;
        let special = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(true));
        let q = &query.get_ids()[..query.len().min(self.max_length / 2)];
        let width = self.max_length.saturating_sub(q.len() + special);
        if width == 0 {
            return Err(Error::InvalidOption {
                name: "max_length",
                message: format!(
                    "{} tokens leave no room for a document window next to a {}-token query and {special} special tokens",
                    self.max_length,
                    q.len()
                ),
            });
        }
        let stride = windowing.stride.unwrap_or(width / 2).max(1);
        let d = document.get_ids();
        let mut windows = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + width).min(d.len());
            let pair =
                guarded(|| tokenizer.post_process(bare(q), Some(bare(&d[start..end])), true))
                    .map_err(tokenizer_error)?;
            windows.push(EncodedPair {
                input_ids: pair.get_ids().to_vec(),
                token_type_ids: pair.get_type_ids().to_vec(),
                truncated: q.len() < query.len(),
            });
            start += stride;
            if end == d.len() || start >= d.len() {
                return Ok(windows);
            }
        }
    }

    fn encode(&self, input: EncodeInput<'_>, index: usize) -> Result<EncodedPair> {
        let encoding: Encoding = guarded(|| self.tokenizer.encode(input, true)).map_err(|e| {
            let message = e.to_string();
            // tokenizers refuses when cutting the document alone cannot reach
            // the max length; its wording has changed between versions.
            let too_short = message.contains("too short") || message.contains("not long enough");
            if self.truncation == Truncation::OnlySecond && too_short {
                Error::QueryTooLong {
                    pair: index,
                    max_length: self.max_length,
                }
            } else {
                Error::Tokenizer {
                    message: format!("input {index}: {message}"),
                }
            }
        })?;
        if encoding.is_empty() {
            return Err(Error::Tokenizer {
                message: format!(
                    "input {index} encodes to no tokens (tokenizer.json has no post-processor adding [CLS]/[SEP]?)"
                ),
            });
        }
        Ok(EncodedPair {
            truncated: !encoding.get_overflowing().is_empty(),
            input_ids: encoding.get_ids().to_vec(),
            token_type_ids: encoding.get_type_ids().to_vec(),
        })
    }
}

/// Runs a tokenizers call, turning a panic into an error. tokenizers trusts
/// parts of tokenizer.json that it only checks when a tokenizer is built in
/// code, and panics on them while loading or encoding (a syntax error inside
/// a decoder, a template naming a special token it does not define, a
/// `FixedLength` pre-tokenizer of length 0, an invalid `precompiled_charsmap`:
/// huggingface/tokenizers#2151); a file must not take the process down.
/// (Under `panic = "abort"` nothing can be caught: the release profile
/// unwinds.)
fn guarded<T>(call: impl FnOnce() -> tokenizers::Result<T>) -> tokenizers::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("tokenizers panicked ({message}): tokenizer.json is malformed").into())
    })
}

/// The largest id among the vocabulary, the added tokens and the special
/// tokens the post-processor puts around a pair (its own ids, which need not
/// be in the vocabulary).
fn max_token_id(tokenizer: &Tokenizer) -> tokenizers::Result<u32> {
    let vocab = tokenizer.get_vocab(true).into_values().max().unwrap_or(0);
    let pair = guarded(|| tokenizer.post_process(bare(&[0]), Some(bare(&[0])), true))?;
    let special = pair.get_ids().iter().copied().max().unwrap_or(0);
    Ok(vocab.max(special))
}

/// An encoding of bare token ids, for the post-processor to put the model's
/// special tokens around.
fn bare(ids: &[u32]) -> Encoding {
    let n = ids.len();
    Encoding::new(
        ids.to_vec(),
        vec![0; n],
        vec![String::new(); n],
        vec![None; n],
        vec![(0, 0); n],
        vec![0; n],
        vec![1; n],
        Vec::new(),
        Default::default(),
    )
}
