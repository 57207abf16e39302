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

/// Query rows per attention tile. Each tile packs K and V again, so the tile
/// is tall: a typical reranking pair (~200 tokens) is one tile, and a
/// 512-token sequence two, whose `[256, 512]` scores (512 KiB) sit in L2/L3
/// while they are softmaxed and multiplied by V. (64-row tiles, scores in L2,
/// measured no faster on 512-token sequences here.)
pub const TILE_ROWS: usize = 256;

/// Where one head's attention reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct HeadAttention {
    /// Query rows to compute (the whole sequence, or just `[CLS]`).
    pub rows: usize,
    /// Keys and values: the sequence's length.
    pub len: usize,
    /// Width of the head.
    pub head_dim: usize,
    /// Row stride of `q`.
    pub ld_q: usize,
    /// Row stride of `k` and `v`.
    pub ld_kv: usize,
    /// Row stride of the output.
    pub ld_out: usize,
}

impl HeadAttention {
    /// f32s of scratch [`Kernels::attention_head`] needs.
    pub fn scratch_len(&self) -> usize {
        Self::scratch_len_for(self.len, self.head_dim)
    }

    /// f32s of scratch for a sequence of `len` tokens and heads of `head_dim`.
    pub fn scratch_len_for(len: usize, head_dim: usize) -> usize {
        TILE_ROWS * (len + head_dim)
    }
}

impl Kernels {
    /// `out[r] = softmax(q[r]·Kᵀ / √head_dim) · V` for one head, in tiles of
    /// [`TILE_ROWS`] query rows so the scores stay in cache.
    ///
    /// `q: [rows, head_dim]`, `k`, `v: [len, head_dim]`, each with its row
    /// stride; `scratch` holds at least [`HeadAttention::scratch_len`] floats.
    ///
    /// # Safety
    /// `out` must be valid for writes of `out.add(r * ld_out + j)` for every
    /// `r < rows`, `j < head_dim`, and nothing else may read or write those
    /// elements during the call. (Heads of one sequence write interleaved
    /// column blocks of the same rows, so no `&mut` slice can describe them.)
    pub unsafe fn attention_head(
        &self,
        shape: HeadAttention,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: *mut f32,
        scratch: &mut [f32],
    ) {
        let HeadAttention {
            rows,
            len,
            head_dim: d,
            ld_q,
            ld_kv,
            ld_out,
        } = shape;
        if rows == 0 || len == 0 {
            return;
        }
        let scale = 1.0 / (d as f32).sqrt();
        let (scores, tile_out) = scratch[..TILE_ROWS * (len + d)].split_at_mut(TILE_ROWS * len);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let tr = TILE_ROWS.min(rows - r0);
            let scores = &mut scores[..tr * len];
            // scores: [tr, len] = scale · q_tile · kᵀ
            self.gemm_strided(
                tr,
                d,
                len,
                scale,
                (&q[r0 * ld_q..], ld_q, 1),
                (k, 1, ld_kv),
                0.0,
                (scores, len, 1),
            );
            for row in scores.chunks_exact_mut(len) {
                self.softmax(row);
            }
            // tile_out: [tr, d] = scores · v
            let tile_out = &mut tile_out[..tr * d];
            self.gemm_strided(
                tr,
                len,
                d,
                1.0,
                (scores, len, 1),
                (v, ld_kv, 1),
                0.0,
                (tile_out, d, 1),
            );
            for (r, row) in tile_out.chunks_exact(d).enumerate() {
                // SAFETY: the caller guarantees rows r0..r0+tr, columns 0..d
                // of `out` are ours to write.
                unsafe {
                    std::ptr::copy_nonoverlapping(row.as_ptr(), out.add((r0 + r) * ld_out), d);
                }
            }
        }
    }
}
