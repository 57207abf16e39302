//! Scaled dot-product attention over one sequence, all heads.

use crate::Kernels;

/// The shape of one sequence's attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Tokens in the sequence (its true length: no padding).
    pub len: usize,
    /// Attention heads.
    pub heads: usize,
    /// Width of one head; `heads * head_dim` is the hidden size.
    pub head_dim: usize,
}

impl AttentionShape {
    /// `heads * head_dim`.
    pub fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }

    /// The scratch [`Kernels::attention`] needs, in f32s.
    pub fn scratch_len(&self) -> usize {
        self.len * self.len
    }
}

impl Kernels {
    /// `ctx = softmax(Q·Kᵀ / √head_dim) · V` for every head of one sequence.
    ///
    /// `qkv: [len, 3·hidden]` with row stride `ld_qkv` holds Q, K and V side by
    /// side (PyTorch's query, key, value projections concatenated); head `h`
    /// is columns `h·head_dim..(h+1)·head_dim` of each. `ctx: [len, hidden]`
    /// with row stride `ld_ctx`. `scratch` holds at least
    /// [`AttentionShape::scratch_len`] floats. Runs on the calling thread.
    ///
    /// # Panics
    /// If a slice is too short for the shape.
    pub fn attention(
        &self,
        shape: AttentionShape,
        qkv: &[f32],
        ld_qkv: usize,
        ctx: &mut [f32],
        ld_ctx: usize,
        scratch: &mut [f32],
    ) {
        let AttentionShape {
            len,
            heads,
            head_dim,
        } = shape;
        if len == 0 {
            return;
        }
        let hidden = shape.hidden();
        assert!(
            ld_qkv >= 3 * hidden && ld_ctx >= hidden,
            "attention: strides"
        );
        let scores = &mut scratch[..len * len];
        let scale = 1.0 / (head_dim as f32).sqrt();
        for h in 0..heads {
            let q = &qkv[h * head_dim..];
            let k = &qkv[hidden + h * head_dim..];
            let v = &qkv[2 * hidden + h * head_dim..];
            // scores: [len, len] = scale · q_h · k_hᵀ
            self.gemm_strided(
                len,
                head_dim,
                len,
                scale,
                (q, ld_qkv, 1),
                (k, 1, ld_qkv),
                0.0,
                (&mut scores[..], len, 1),
            );
            for row in scores.chunks_exact_mut(len) {
                self.softmax(row);
            }
            // ctx_h: [len, head_dim] = scores · v_h
            self.gemm_strided(
                len,
                len,
                head_dim,
                1.0,
                (&scores[..], len, 1),
                (v, ld_qkv, 1),
                0.0,
                (&mut ctx[h * head_dim..], ld_ctx, 1),
            );
        }
    }
}
