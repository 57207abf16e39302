//! `BertEmbeddings`: word + position + token type, then LayerNorm.

use crossenc_kernels::Kernels;
use rayon::prelude::*;

use super::batch::PackedBatch;
use super::linear::LayerNorm;
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::{Table, Weights};

pub(crate) struct BertEmbeddings {
    // Width of the tables: hidden_size, or ELECTRA's embedding_size.
    width: usize,
    // Position id of each sequence's first token (RoBERTa: pad_token_id + 1).
    position_offset: usize,
    // word_embeddings: [vocab_size, width]
    // (rows read from the file when it stores f32)
    word_embeddings: Table,
    // position_embeddings: [max_position_embeddings, width]
    position_embeddings: Vec<f32>,
    // token_type_embeddings: [type_vocab_size, width]
    token_type_embeddings: Vec<f32>,
    layer_norm: LayerNorm,
}

impl BertEmbeddings {
    pub(crate) fn load(c: &BertConfig, w: &Weights<'_>, p: &str) -> Result<BertEmbeddings> {
        let h = c.embedding_size;
        Ok(BertEmbeddings {
            width: h,
            position_offset: c.position_offset,
            word_embeddings: w.table(p, "embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            position_embeddings: w.get(
                p,
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?,
            token_type_embeddings: w.get(
                p,
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
            )?,
            layer_norm: LayerNorm::load(w, p, "embeddings.LayerNorm", h, c.layer_norm_eps)?,
        })
    }

    /// `out: [rows, width]`, the embeddings of the batch's tokens from
    /// `first` on (as many as `out` holds). Ids are checked against the
    /// tables beforehand (`Bert::check`); positions restart at
    /// `position_offset` for every sequence.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        batch: &PackedBatch,
        first: usize,
        out: &mut [f32],
        rows_per_task: usize,
    ) {
        let h = self.width;
        out.par_chunks_mut(rows_per_task * h)
            .enumerate()
            .for_each(|(chunk, rows)| {
                let chunk_first = first + chunk * rows_per_task;
                for (r, row) in rows.chunks_exact_mut(h).enumerate() {
                    let t = chunk_first + r;
                    // Position within the token's own sequence.
                    let starts = batch.starts();
                    let seq = starts.partition_point(|&start| start <= t) - 1;
                    let position = self.position_offset + t - starts[seq];
                    let word = batch.input_ids()[t] as usize;
                    let kind = batch.token_type_ids()[t] as usize;
                    self.word_embeddings.read_row(word, row);
                    let p = &self.position_embeddings[position * h..(position + 1) * h];
                    let y = &self.token_type_embeddings[kind * h..(kind + 1) * h];
                    for j in 0..h {
                        // Same order of additions as PyTorch: (word + type) + position.
                        row[j] = (row[j] + y[j]) + p[j];
                    }
                }
                self.layer_norm.forward(k, rows);
            });
    }
}
