//! `tokenizer.json` glue: pair encoding with truncation, as sentence-transformers does it.

use std::path::Path;

use rayon::prelude::*;
use tokenizers::{
    EncodeInput, Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
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
    truncation: Truncation,
    max_length: usize,
}

impl PairTokenizer {
    pub(crate) fn from_file(
        path: &Path,
        max_length: usize,
        truncation: Truncation,
    ) -> Result<PairTokenizer> {
        if !path.exists() {
            return Err(Error::MissingFile {
                path: path.to_path_buf(),
            });
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            message: format!("cannot load {}: {e}", path.display()),
        })?;
        let strategy = match truncation {
            Truncation::LongestFirst => TruncationStrategy::LongestFirst,
            Truncation::OnlySecond => TruncationStrategy::OnlySecond,
        };
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
        tokenizer.with_padding(None);
        Ok(PairTokenizer {
            tokenizer,
            truncation,
            max_length,
        })
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

    /// Encodes single texts (`[CLS] text [SEP]`) in parallel.
    pub(crate) fn encode_texts<T: AsRef<str> + Sync>(
        &self,
        texts: &[T],
    ) -> Result<Vec<EncodedPair>> {
        texts
            .par_iter()
            .enumerate()
            .map(|(i, t)| self.encode(t.as_ref().into(), i))
            .collect()
    }

    fn encode(&self, input: EncodeInput<'_>, index: usize) -> Result<EncodedPair> {
        let encoding: Encoding = self.tokenizer.encode(input, true).map_err(|e| {
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
