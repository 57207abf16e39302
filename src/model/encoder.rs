//! `BertLayer`: self-attention + output projection + LayerNorm, then the
//! feed-forward block + LayerNorm.

use crossenc_kernels::{AttentionShape, Kernels};
use rayon::prelude::*;

use super::{LayerNorm, Linear, PackedBatch};
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::Weights;

pub(crate) struct BertLayer {
    /// `attention.self.{query,key,value}` fused: `[hidden] -> [3·hidden]`.
    qkv: Linear,
    /// `attention.output.dense`
    attention_output: Linear,
    /// `attention.output.LayerNorm`
    attention_layer_norm: LayerNorm,
    /// `intermediate.dense`: `[hidden] -> [intermediate]`
    intermediate: Linear,
    /// `output.dense`: `[intermediate] -> [hidden]`
    output: Linear,
    /// `output.LayerNorm`
    output_layer_norm: LayerNorm,
}

/// Buffers one layer needs, reused by every layer of a forward pass.
pub(crate) struct LayerScratch {
    // qkv: [tokens, 3·hidden]
    qkv: Vec<f32>,
    // ctx: [tokens, hidden], the attention output before its projection
    ctx: Vec<f32>,
    // attn_out: [tokens, hidden]
    attn_out: Vec<f32>,
    // ffn_up: [tokens, intermediate]
    ffn_up: Vec<f32>,
}

impl LayerScratch {
    pub(crate) fn new(c: &BertConfig, tokens: usize) -> LayerScratch {
        LayerScratch {
            qkv: vec![0.0; tokens * 3 * c.hidden_size],
            ctx: vec![0.0; tokens * c.hidden_size],
            attn_out: vec![0.0; tokens * c.hidden_size],
            ffn_up: vec![0.0; tokens * c.intermediate_size],
        }
    }
}

impl BertLayer {
    pub(crate) fn load(
        c: &BertConfig,
        k: &Kernels,
        w: &Weights<'_>,
        p: &str,
        i: usize,
    ) -> Result<BertLayer> {
        let (h, f, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let l = format!("encoder.layer.{i}");
        let qkv_names = [
            format!("{l}.attention.self.query"),
            format!("{l}.attention.self.key"),
            format!("{l}.attention.self.value"),
        ];
        let qkv_names: Vec<&str> = qkv_names.iter().map(String::as_str).collect();
        Ok(BertLayer {
            qkv: Linear::load_fused(k, w, p, &qkv_names, h, h)?,
            attention_output: Linear::load(k, w, p, &format!("{l}.attention.output.dense"), h, h)?,
            attention_layer_norm: LayerNorm::load(
                w,
                p,
                &format!("{l}.attention.output.LayerNorm"),
                h,
                eps,
            )?,
            intermediate: Linear::load(k, w, p, &format!("{l}.intermediate.dense"), f, h)?,
            output: Linear::load(k, w, p, &format!("{l}.output.dense"), h, f)?,
            output_layer_norm: LayerNorm::load(w, p, &format!("{l}.output.LayerNorm"), h, eps)?,
        })
    }

    /// `hidden: [tokens, hidden]`, updated in place.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        c: &BertConfig,
        batch: &PackedBatch,
        hidden: &mut [f32],
        s: &mut LayerScratch,
    ) {
        let tokens = batch.tokens();
        let h = c.hidden_size;
        self.qkv.forward(k, tokens, hidden, &mut s.qkv, None);
        attention(k, c, batch, &s.qkv, &mut s.ctx);
        self.attention_output
            .forward_residual(k, tokens, &s.ctx, hidden, &mut s.attn_out);
        self.attention_layer_norm.forward(k, &mut s.attn_out);
        self.intermediate
            .forward(k, tokens, &s.attn_out, &mut s.ffn_up, Some(c.hidden_act));
        self.output
            .forward_residual(k, tokens, &s.ffn_up, &s.attn_out, hidden);
        self.output_layer_norm.forward(k, hidden);
        debug_assert_eq!(hidden.len(), tokens * h);
    }
}

/// Attention for every sequence of the batch at its own length, sequences
/// spread over the threads. `qkv: [tokens, 3·hidden]`, `ctx: [tokens, hidden]`.
fn attention(k: &Kernels, c: &BertConfig, batch: &PackedBatch, qkv: &[f32], ctx: &mut [f32]) {
    let h = c.hidden_size;
    // Split ctx into one disjoint slice per sequence.
    let mut rest = ctx;
    let mut per_sequence = Vec::with_capacity(batch.sequences());
    for s in 0..batch.sequences() {
        let (mine, tail) = rest.split_at_mut(batch.range(s).len() * h);
        per_sequence.push((s, mine));
        rest = tail;
    }
    per_sequence.into_par_iter().for_each(|(s, ctx)| {
        let range = batch.range(s);
        let shape = AttentionShape {
            len: range.len(),
            heads: c.num_attention_heads,
            head_dim: c.head_dim(),
        };
        let mut scores = vec![0.0; shape.scratch_len()];
        k.attention(
            shape,
            &qkv[range.start * 3 * h..range.end * 3 * h],
            3 * h,
            ctx,
            h,
            &mut scores,
        );
    });
}
