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
//!
//! # Long documents
//!
//! A document longer than the model reads (512 tokens for most) is cut by
//! default, as sentence-transformers does. [`LongDocs::Max`] scores it in
//! overlapping windows instead and keeps the best window's logit (MaxP):
//!
//! ```
//! # fn main() -> crossenc::Result<()> {
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixtures/bert-l2-h32");
//! use crossenc::{CrossEncoder, LongDocs};
//! let model = CrossEncoder::builder().max_length(32).long_docs(LongDocs::Max).build(dir)?;
//! let long = "a sentence about something else. ".repeat(20);
//! let p = &model.predict_all(&[("which document", long.as_str())])?[0];
//! assert!(p.windows > 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `runner.rs`: the one loop (tokenize -> windows -> token-budgeted batches
//!   -> forward -> results) every head runs on;
//! - `cross_encoder.rs`, `embedder.rs`: the heads ([`CrossEncoder`];
//!   [`SentenceEmbedder`], [`Encoder`]);
//! - `load.rs`: a model folder -> config, tokenizer, weights, and the
//!   [`Builder`] options every head shares;
//! - `config.rs`, `weights.rs`, `tokenize.rs`, `error.rs`; `model/`: the encoder.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
mod cross_encoder;
mod embedder;
mod error;
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "hub")]
pub mod hub;
mod load;
mod model;
mod runner;
#[cfg(feature = "server")]
pub mod serve;
mod tokenize;
mod weights;

pub use config::{Architecture, BertConfig, ScoreActivation};
pub use cross_encoder::{
    rank_scores, CrossEncoder, CrossEncoderBuilder, LongDocs, Prediction, Ranked,
};
pub use crossenc_kernels::Isa;
pub use embedder::{Encoder, EncoderOutput, Pooling, SentenceEmbedder};
pub use error::{Error, Result};
pub use load::{
    check_folder as check_model_folder, Builder, Precision, DEFAULT_BATCH_SIZE,
    DEFAULT_TOKEN_BUDGET,
};
pub use model::{PackedBatch, Scratch};
pub use runner::Progress;
pub use tokenize::{EncodedPair, Truncation};
