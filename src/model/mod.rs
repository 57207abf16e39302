//! The BERT encoder, written by hand: one struct per Hugging Face module, with
//! HF's own names, one forward function per layer.
//!
//! Upstream, for checking the math:
//! <https://github.com/huggingface/transformers/blob/v4.44.0/src/transformers/models/bert/modeling_bert.py>
//! (`BertEmbeddings`, `BertSelfAttention`, `BertSelfOutput`, `BertIntermediate`,
//! `BertOutput`, `BertPooler`, `BertForSequenceClassification`).
//!
//! - `batch.rs`: [`PackedBatch`] and [`Scratch`], what a forward pass reads and where it works;
//! - `linear.rs`: `nn.Linear` and `nn.LayerNorm`;
//! - `embeddings.rs`, `encoder.rs` (one `BertLayer`), `head.rs` (pooler, classifier);
//! - `bert.rs`: the stack of them, and which rows the last layer computes.
//!
//! # Token packing
//!
//! A batch never holds padding: its sequences are concatenated into one
//! `[tokens, hidden]` matrix for every linear layer, and attention runs per
//! sequence at its true length. That is exactly what a padded batch with an
//! attention mask computes for the real tokens, without the wasted rows.

mod batch;
mod bert;
mod embeddings;
mod encoder;
mod head;
mod linear;

pub(crate) use batch::gather_rows;
pub use batch::{PackedBatch, Scratch};
pub(crate) use bert::{Bert, Rows};
pub(crate) use head::ClassificationHead;
