//! Scaled dot-product attention: one head of one sequence, fused and tiled
//! flash-style ([`Kernels::attention_head`]), or every head in turn.

use super::softmax;
use crate::gemm::blocking::{self, Problem};
use crate::gemm::kernel::Microkernel;
use crate::gemm::pack;
use crate::gemm::{with_microkernel, Threading};
use crate::{Backend, Kernels};

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
        HeadAttention::scratch_len_for(self.len, self.head_dim)
    }
}

impl Kernels {
    /// `ctx = softmax(Q·Kᵀ / √head_dim) · V` for every head of one sequence,
    /// one head after another ([`Kernels::attention_head`]).
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
            head_dim: d,
        } = shape;
        if len == 0 {
            return;
        }
        let hidden = shape.hidden();
        assert!(
            ld_qkv >= 3 * hidden && ld_ctx >= hidden,
            "attention: strides"
        );
        assert!(
            qkv.len() >= (len - 1) * ld_qkv + 3 * hidden,
            "attention: qkv too short"
        );
        assert!(
            ctx.len() >= (len - 1) * ld_ctx + hidden,
            "attention: ctx too short"
        );
        let head = HeadAttention {
            rows: len,
            len,
            head_dim: d,
            ld_q: ld_qkv,
            ld_kv: ld_qkv,
            ld_out: ld_ctx,
        };
        for h in 0..heads {
            // SAFETY: `ctx` is borrowed mutably and long enough (asserted):
            // rows 0..len, columns h·d..(h+1)·d are inside it.
            unsafe {
                self.attention_head(
                    head,
                    &qkv[h * d..],
                    &qkv[hidden + h * d..],
                    &qkv[2 * hidden + h * d..],
                    ctx.as_mut_ptr().add(h * d),
                    scratch,
                )
            };
        }
    }
}

/// Query rows per tile, rounded up to a multiple of the microkernel's MR.
/// The tile's partial output (`rows x head_dim`) and running softmax
/// statistics stay in L1 while the key blocks stream past.
const QUERY_TILE: usize = 64;
/// Keys per block, rounded up to a multiple of NR. A tile's scores for one
/// block (`64 x 128` floats, 32 KiB) stay in L1/L2 between `Q·Kᵀ`, the
/// softmax and `·V`. A typical reranking pair (~200 tokens) is two blocks,
/// a 512-token sequence four; the scores are never written out whole.
const KEY_BLOCK: usize = 128;
/// The widest and tallest register tiles of any ISA (AVX-512: 12 x 32), for
/// the scratch bound that does not know the ISA.
const MAX_NR: usize = 32;
const MAX_MR: usize = 12;

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

    /// f32s of scratch for a sequence of `len` tokens and heads of
    /// `head_dim`, on any ISA: packed `Kᵀ` and `V`, one tile's scores for one
    /// key block, its partial output, and its running max and sum.
    pub fn scratch_len_for(len: usize, head_dim: usize) -> usize {
        Layout::new(len, head_dim, MAX_MR, MAX_NR).total
    }
}

/// The scratch regions of one head's attention, in floats.
struct Layout {
    packed_k: usize,
    packed_v: usize,
    query_tile: usize,
    key_block: usize,
    total: usize,
}

impl Layout {
    fn new(len: usize, d: usize, mr: usize, nr: usize) -> Layout {
        let query_tile = QUERY_TILE.div_ceil(mr) * mr;
        let key_block = KEY_BLOCK.div_ceil(nr) * nr;
        let packed_k = len.div_ceil(nr) * nr * d;
        let packed_v = d.div_ceil(nr) * nr * len;
        let scores = query_tile * key_block;
        let partial = query_tile * d;
        Layout {
            packed_k,
            packed_v,
            query_tile,
            key_block,
            total: packed_k + packed_v + scores + partial + 2 * query_tile,
        }
    }
}

impl Kernels {
    /// `out[r] = softmax(q[r]·Kᵀ / √head_dim) · V` for one head, fused and
    /// tiled flash-style: K and V are packed once, then each tile of query
    /// rows walks the keys a block at a time: `S = q·Kᵀ` for the block, an
    /// online softmax step (running max and sum, rescaling the partial
    /// output when the max grows), and `O += S·V`. Scores never leave the
    /// cache, whatever the sequence length. Runs on the calling thread.
    ///
    /// `q: [rows, head_dim]`, `k`, `v: [len, head_dim]`, each with its row
    /// stride; `scratch` holds at least [`HeadAttention::scratch_len`] floats.
    ///
    /// # Panics
    /// If `q`, `k`, `v` or `scratch` is too short for the shape.
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
            ..
        } = shape;
        if rows == 0 || len == 0 || d == 0 {
            return;
        }
        assert!(
            q.len() > (rows - 1) * ld_q + d - 1,
            "attention_head: q too short"
        );
        assert!(
            k.len() > (len - 1) * ld_kv + d - 1 && v.len() > (len - 1) * ld_kv + d - 1,
            "attention_head: k or v too short"
        );
        assert!(
            scratch.len() >= shape.scratch_len(),
            "attention_head: scratch too short"
        );
        let backend = self.backend;
        // SAFETY: the caller's guarantee on `out`; the slices are checked above.
        with_microkernel!(self.backend, |kernel| unsafe {
            head(kernel, backend, shape, q, k, v, out, scratch)
        })
    }
}

/// `C = A·B` of shape `(m, k, n)`, A row-major with row stride `a.1`, C with
/// row stride `c.1`; B (null here) is for the caller to set.
fn plain_product(
    (m, k, n): (usize, usize, usize),
    a: (&[f32], usize),
    c: (&mut [f32], usize),
) -> Problem {
    Problem {
        m,
        k,
        n,
        a: a.0.as_ptr(),
        rsa: a.1,
        csa: 1,
        b: std::ptr::null(),
        b_depth: k,
        c: c.0.as_mut_ptr(),
        ldc: c.1,
        alpha: 1.0,
        beta: 0.0,
        bias: std::ptr::null(),
        residual: std::ptr::null(),
        ld_residual: 0,
        act: None,
    }
}

/// [`Kernels::attention_head`] with the ISA's microkernel.
///
/// # Safety
/// As `attention_head`; the slices are long enough for `shape`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn head<K: Microkernel>(
    kernel: K,
    backend: Backend,
    shape: HeadAttention,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: *mut f32,
    scratch: &mut [f32],
) {
    const { assert!(K::MR <= MAX_MR && K::NR <= MAX_NR) };
    let HeadAttention {
        rows,
        len,
        head_dim: d,
        ld_q,
        ld_kv,
        ld_out,
    } = shape;
    let nr = K::NR;
    let layout = Layout::new(len, d, K::MR, nr);
    let (packed_k, rest) = scratch.split_at_mut(layout.packed_k);
    let (packed_v, rest) = rest.split_at_mut(layout.packed_v);
    let (scores, rest) = rest.split_at_mut(layout.query_tile * layout.key_block);
    let (partial, rest) = rest.split_at_mut(layout.query_tile * d);
    let (row_max, rest) = rest.split_at_mut(layout.query_tile);
    let row_sum = &mut rest[..layout.query_tile];
    // Kᵀ: [d, len], element (p, j) = k[j·ld_kv + p]; V: [len, d].
    pack::pack_b(packed_k, k, d, len, 1, ld_kv, nr);
    pack::pack_b(packed_v, v, len, d, ld_kv, 1, nr);
    let scale = 1.0 / (d as f32).sqrt();
    let kb_max = layout.key_block;
    for r0 in (0..rows).step_by(layout.query_tile) {
        let tr = layout.query_tile.min(rows - r0);
        row_max[..tr].fill(f32::NEG_INFINITY);
        row_sum[..tr].fill(0.0);
        for (block, c0) in (0..len).step_by(kb_max).enumerate() {
            let kb = kb_max.min(len - c0);
            // scores[tr, kb] = scale · q[r0..r0+tr] · Kᵀ[.., c0..c0+kb]
            let qk = Problem {
                // c0 is a multiple of NR: panel c0/NR onwards.
                b: packed_k[c0 * d..].as_ptr(),
                b_depth: d,
                alpha: scale,
                ..plain_product((tr, d, kb), (&q[r0 * ld_q..], ld_q), (scores, kb_max))
            };
            // SAFETY: A is rows r0..r0+tr of q (d columns), B panels c0/NR..
            // of packed Kᵀ (d deep), C the first tr rows of `scores`
            // (kb <= kb_max columns), all inside their slices.
            unsafe { blocking::run(kernel, &qk, Threading::Single) };
            for r in 0..tr {
                let correction = softmax::softmax_block(
                    backend,
                    &mut scores[r * kb_max..r * kb_max + kb],
                    &mut row_max[r],
                    &mut row_sum[r],
                );
                if block > 0 && correction != 1.0 {
                    for o in &mut partial[r * d..(r + 1) * d] {
                        *o *= correction;
                    }
                }
            }
            // partial[tr, d] (+)= scores[tr, kb] · V[c0..c0+kb, ..]
            let pv = Problem {
                // Rows c0.. of every panel of packed V (len deep).
                b: packed_v[c0 * nr..].as_ptr(),
                b_depth: len,
                beta: if block == 0 { 0.0 } else { 1.0 },
                ..plain_product((tr, kb, d), (scores, kb_max), (partial, d))
            };
            // SAFETY: A is the tr x kb scores just computed, B rows c0..c0+kb
            // of packed V's panels, C the first tr rows of `partial`.
            unsafe { blocking::run(kernel, &pv, Threading::Single) };
        }
        for r in 0..tr {
            let inv = if row_sum[r] > 0.0 {
                1.0 / row_sum[r]
            } else {
                0.0
            };
            let row = &partial[r * d..(r + 1) * d];
            // SAFETY: the caller guarantees rows r0..r0+tr, columns 0..d of
            // `out` are ours to write.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.add((r0 + r) * ld_out), d) };
            for (o, &x) in dst.iter_mut().zip(row) {
                *o = x * inv;
            }
        }
    }
}
