//! Scaled dot-product attention: one head of one sequence, fused and tiled
//! flash-style ([`Kernels::attention_head`]), or every head in turn.

use super::softmax;
use crate::gemm::bf16::Bf16Backend;
use crate::gemm::kernel::{Microkernel, TileOut};
use crate::gemm::with_microkernel;
use crate::simd::{simd_dispatch, Simd};
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
            bf16: false,
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

/// Query panels (of the microkernel's NR queries each) per query tile.
/// A tile's transposed scores for one key block (`KEY_BLOCK x 2·NR` floats:
/// 32 KiB on AVX2) and its partial output (`head_dim x 2·NR`) stay in L1
/// and L2 while the packed keys and values stream past from L2. (4 panels
/// measured no faster; they only make the scratch bigger.)
const QUERY_PANELS: usize = 2;
/// Keys per block, rounded up to a multiple of MR. A typical reranking pair
/// (~200 tokens) is one block, a 512-token sequence two; the scores are
/// never written out whole. Measured with the attention bench on Zen 4:
/// 256 was 3-5% faster than 128 (fewer rescales of the partial output),
/// 512 no faster than 256.
const KEY_BLOCK: usize = 256;
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
    /// Whether the two products may round their operands to bf16 (Q, K, V
    /// and the softmax's probabilities; sums, softmax and output stay f32):
    /// honoured where the CPU has a bf16 dot product (AVX512_BF16, NEON
    /// BF16) and the head width is even, f32 elsewhere. Each operand is
    /// rounded element by element, so a row's output still depends on its
    /// own sequence alone.
    pub bf16: bool,
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
        // Layout::new's sizes with every rounding up to MR or NR replaced by
        // the largest MR or NR added: no smaller than any ISA's layout.
        let (d, mr, nr) = (head_dim, MAX_MR, MAX_NR);
        (len + mr) * d + (d + mr) * len + QUERY_PANELS * nr * (d + KEY_BLOCK + mr + d + 2)
    }
}

/// The scratch regions of one head's attention, in floats.
struct Layout {
    /// K as the A operand of `Sᵀ = K·Qᵀ`: MR-key micro-panels, `head_dim` deep.
    packed_k: usize,
    /// Vᵀ as the A operand of `Oᵀ = Vᵀ·Pᵀ`: MR-dimension micro-panels, `len` deep.
    packed_v: usize,
    /// Qᵀ of one query tile: `QUERY_PANELS` NR-query panels, `head_dim` deep.
    queries: usize,
    /// Keys per block (a multiple of MR).
    key_block: usize,
    /// `Sᵀ` (then `Pᵀ`) of one key block: `QUERY_PANELS` panels of
    /// `key_block x NR`, the packed-B layout of the `·V` product.
    scores: usize,
    /// Queries per tile: `QUERY_PANELS · NR`.
    query_tile: usize,
}

impl Layout {
    fn new(len: usize, d: usize, mr: usize, nr: usize) -> Layout {
        let query_tile = QUERY_PANELS * nr;
        let key_block = KEY_BLOCK.div_ceil(mr) * mr;
        let packed_k = len.div_ceil(mr) * mr * d;
        let packed_v = d.div_ceil(mr) * mr * len;
        let queries = query_tile * d;
        let scores = query_tile * key_block;
        // Plus Oᵀ (d x query_tile) and the running max and sum per query.
        debug_assert!(
            packed_k + packed_v + queries + scores + (d + 2) * query_tile
                <= HeadAttention::scratch_len_for(len, d)
        );
        Layout {
            packed_k,
            packed_v,
            queries,
            key_block,
            scores,
            query_tile,
        }
    }
}

impl Kernels {
    /// `out[r] = softmax(q[r]·Kᵀ / √head_dim) · V` for one head, fused and
    /// tiled flash-style: K and V are packed once, then each tile of query
    /// rows walks the keys a block at a time: `Sᵀ = K·qᵀ` for the block, an
    /// online softmax step down its columns (running max and sum, rescaling
    /// the partial output when the max grows), and `Oᵀ += Vᵀ·Pᵀ`. Scores
    /// never leave the cache, whatever the sequence length, and nothing is
    /// packed inside the key loop. Runs on the calling thread.
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
        if shape.bf16 && d.is_multiple_of(2) {
            match self.bf16_backend() {
                #[cfg(target_arch = "x86_64")]
                Bf16Backend::Avx512Bf16(token) => {
                    let kernel = crate::gemm::x86_64::avx512_bf16::Avx512Bf16Kernel(token);
                    // SAFETY: as below.
                    return unsafe { head(kernel, kernel, backend, shape, q, k, v, out, scratch) };
                }
                #[cfg(target_arch = "aarch64")]
                Bf16Backend::NeonBf16(token) => {
                    let kernel = crate::gemm::aarch64::neon_bf16::NeonBf16Kernel(token);
                    // SAFETY: as below.
                    return unsafe { head(kernel, kernel, backend, shape, q, k, v, out, scratch) };
                }
                // No bf16 dot product: rounding would cost time and buy nothing.
                Bf16Backend::Widen => {}
            }
        }
        // SAFETY: the caller's guarantee on `out`; the slices are checked above.
        with_microkernel!(self.backend, |kernel| unsafe {
            head(kernel, kernel, backend, shape, q, k, v, out, scratch)
        })
    }
}

/// [`Kernels::attention_head`] with the ISA's microkernel, transposed so
/// that nothing is packed inside the key loop:
///
/// * `Sᵀ = K·Qᵀ` (keys down, queries across) with K packed once per head as
///   MR-key micro-panels and Qᵀ once per query tile as NR-query panels;
/// * the online softmax runs down the columns of `Sᵀ` (one query each), all
///   in whole vectors ([`softmax::softmax_columns`]);
/// * `Pᵀ` is already in the packed-B layout of `Oᵀ += Vᵀ·Pᵀ`, with Vᵀ packed
///   once per head as MR-dimension micro-panels.
///
/// `Oᵀ` is transposed into `out` once per query tile.
///
/// # Safety
/// As `attention_head`; the slices are long enough for `shape`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn head<KQ: Microkernel, KV: Microkernel>(
    kq: KQ,
    kv: KV,
    backend: Backend,
    shape: HeadAttention,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: *mut f32,
    scratch: &mut [f32],
) {
    const {
        assert!(KQ::MR <= MAX_MR && KQ::NR <= MAX_NR);
        // One tile shape: Sᵀ's tiles are Pᵀ's panels.
        assert!(KQ::MR == KV::MR && KQ::NR == KV::NR);
    };
    let HeadAttention {
        rows,
        len,
        head_dim: d,
        ld_q,
        ld_kv,
        ld_out,
        ..
    } = shape;
    let (mr, nr) = (KQ::MR, KQ::NR);
    let layout = Layout::new(len, d, mr, nr);
    // A product on a pair kernel (`PAIRS`) counts its depth in bf16 pair
    // words: d/2 for Sᵀ = K·Qᵀ (d even: the caller's check), keys/2
    // (rounded up) for Oᵀ = Vᵀ·Pᵀ. Every paired panel is no larger than its
    // f32 layout.
    let (pairs_qk, pairs_pv) = (KQ::PAIRS, KV::PAIRS);
    debug_assert!(!pairs_qk || d.is_multiple_of(2));
    debug_assert!(!pairs_pv || layout.key_block.is_multiple_of(2));
    let depth_qk = if pairs_qk { d / 2 } else { d };
    let len_v = if pairs_pv { len.div_ceil(2) } else { len };
    let (packed_k, rest) = scratch.split_at_mut(layout.packed_k);
    let (packed_v, rest) = rest.split_at_mut(layout.packed_v);
    let (queries, rest) = rest.split_at_mut(layout.queries);
    let (scores, rest) = rest.split_at_mut(layout.scores);
    let tq = layout.query_tile;
    let (out_t, rest) = rest.split_at_mut(d * tq);
    let (col_max, rest) = rest.split_at_mut(tq);
    let col_sum = &mut rest[..tq];
    // SAFETY: K is `len x d` at row stride ld_kv and V the same (asserted by
    // the caller); the panels hold len.div_ceil(MR)·MR·d and
    // d.div_ceil(MR)·MR·len floats (the layout).
    unsafe {
        // The pair kernels pack A in pairs along K (`csa` 2 floats).
        let csa = if pairs_qk { 2 } else { 1 };
        kq.pack_a(packed_k.as_mut_ptr(), k.as_ptr(), ld_kv, csa, len, depth_qk);
        if pairs_pv {
            pack_v_pairs(kv, packed_v, v, ld_kv, d, len);
        } else {
            kv.pack_a(packed_v.as_mut_ptr(), v.as_ptr(), 1, ld_kv, d, len);
        }
    }
    // Scores in base 2 for the softmax: 1/√d and log2 e in one multiply.
    let scale = std::f32::consts::LOG2_E / (d as f32).sqrt();
    let kb_max = layout.key_block;
    for r0 in (0..rows).step_by(tq) {
        let tr = tq.min(rows - r0);
        let panels = tr.div_ceil(nr);
        // Qᵀ: element (p, j) = q[(r0 + j)·ld_q + p]; zero past the tile's queries.
        pack_queries(backend, queries, &q[r0 * ld_q..], ld_q, d, tr, nr);
        if pairs_qk {
            // Panel j's rows (dimensions) 2p and 2p + 1 become its pair row p.
            for j in 0..panels {
                // SAFETY: panel j's d x NR floats lie inside `queries`, and
                // its pair panel (d/2 x NR words at j·(d/2)·NR) starts no
                // later.
                unsafe {
                    let base = queries.as_mut_ptr();
                    pair_rows(kq, base.add(j * depth_qk * nr), base.add(j * d * nr), nr, d)
                };
            }
        }
        col_max.fill(f32::NEG_INFINITY);
        col_sum.fill(0.0);
        for (block, c0) in (0..len).step_by(kb_max).enumerate() {
            let kb = kb_max.min(len - c0);
            // Sᵀ[kb, tr] = scale · K[c0..c0+kb] · Qᵀ (in base 2), one MR-key
            // tile at a time.
            let qk = TileOut::plain(scale, 0.0);
            for t in 0..kb.div_ceil(mr) {
                let keys = mr.min(kb - t * mr);
                for j in 0..panels {
                    // SAFETY: c0 + t·MR is a multiple of MR, so its micro-panel
                    // (d·MR floats) starts at (c0 + t·MR)·d of packed K; panel j
                    // of Qᵀ holds d·NR floats; the C tile (keys x NR, row
                    // stride NR) lies inside panel j of `scores`.
                    unsafe {
                        kq.tile(
                            depth_qk,
                            packed_k.as_ptr().add((c0 + t * mr) * depth_qk),
                            queries.as_ptr().add(j * depth_qk * nr),
                            scores.as_mut_ptr().add(j * kb_max * nr + t * mr * nr),
                            nr,
                            keys,
                            nr,
                            &qk,
                        )
                    };
                }
            }
            for j in 0..panels {
                softmax::softmax_columns(
                    backend,
                    &mut scores[j * kb_max * nr..],
                    kb,
                    nr,
                    &mut col_max[j * nr..],
                    &mut col_sum[j * nr..],
                    &mut out_t[j * nr..],
                    tq,
                    if block == 0 { 0 } else { d },
                );
                if pairs_pv {
                    let panel = &mut scores[j * kb_max * nr..(j + 1) * kb_max * nr];
                    if kb % 2 == 1 {
                        // The last block's odd key pairs with zeros (kb <
                        // kb_max, which is even, so the row is in the panel).
                        panel[kb * nr..(kb + 1) * nr].fill(0.0);
                    }
                    // SAFETY: kb.div_ceil(2)·2 <= kb_max rows of NR floats
                    // are in the panel; the pairs go to its start.
                    unsafe {
                        let base = panel.as_mut_ptr();
                        pair_rows(kv, base, base, nr, kb.div_ceil(2) * 2)
                    };
                }
            }
            let depth_pv = if pairs_pv { kb.div_ceil(2) } else { kb };
            // Keys before this block, in the packed Vᵀ's steps (c0 is even
            // with pairs: a multiple of the even key block).
            let v_step = if pairs_pv { c0 / 2 } else { c0 };
            // Oᵀ[d, tr] (+)= Vᵀ[.., c0..c0+kb] · Pᵀ, one MR-dimension tile at a time.
            let pv = TileOut::plain(1.0, if block == 0 { 0.0 } else { 1.0 });
            for t in 0..d.div_ceil(mr) {
                let dims = mr.min(d - t * mr);
                for j in 0..panels {
                    // SAFETY: micro-panel t of packed Vᵀ is MR·len floats at
                    // t·MR·len, and its keys c0..c0+kb are MR floats each from
                    // c0·MR; panel j of `scores` is kb x NR; the C tile (dims x
                    // NR, row stride tq) lies inside Oᵀ.
                    unsafe {
                        kv.tile(
                            depth_pv,
                            packed_v.as_ptr().add(t * mr * len_v + v_step * mr),
                            scores.as_ptr().add(j * kb_max * nr),
                            out_t.as_mut_ptr().add(t * mr * tq + j * nr),
                            tq,
                            dims,
                            nr,
                            &pv,
                        )
                    };
                }
            }
        }
        // SAFETY: the caller guarantees rows r0..r0+tr, columns 0..d of
        // `out` are ours to write.
        unsafe {
            store_output(
                backend,
                out.add(r0 * ld_out),
                ld_out,
                out_t,
                tq,
                d,
                tr,
                col_sum,
            )
        };
    }
}

/// Pairs the rows of a `rows x width` panel at `src` along its rows: row
/// `q` of the `rows/2 x width` result at `dst` is the pair words of rows
/// `2q` and `2q + 1` ([`Microkernel::interleave_pairs`]). `dst` may be `src`
/// or anywhere before it at a whole number of rows: each result row is
/// written after its two inputs are read and never over a row still unread.
///
/// # Safety
/// `src` holds `rows · width` readable floats and `dst` room for
/// `rows/2 · width` words, placed as above; `rows` is even.
#[inline(always)]
unsafe fn pair_rows<K: Microkernel>(
    kernel: K,
    dst: *mut f32,
    src: *const f32,
    width: usize,
    rows: usize,
) {
    debug_assert!(rows.is_multiple_of(2));
    for q in 0..rows / 2 {
        // SAFETY: rows 2q and 2q + 1 < rows of src and row q of dst (the
        // caller's guarantee); row q of dst is row 2q of src or clear of
        // both (see above).
        unsafe {
            kernel.interleave_pairs(
                dst.add(q * width),
                src.add(2 * q * width),
                src.add((2 * q + 1) * width),
                width,
            )
        };
    }
}

/// Packs `Vᵀ` (`v: [len, d]`, row stride `ld_kv`) as the A operand of
/// `Oᵀ = Vᵀ·Pᵀ` in bf16 pairs along the keys: micro-panel `t` (dimensions
/// `t·MR..`) is `[len/2 rounded up][MR]` words, word `(p, r)` holding keys
/// `2p` and `2p + 1` of dimension `t·MR + r`, zero past `len` and past `d`.
///
/// # Panics
/// If `v` or `dst` is too short.
#[inline(always)]
fn pack_v_pairs<K: Microkernel>(
    kernel: K,
    dst: &mut [f32],
    v: &[f32],
    ld_kv: usize,
    d: usize,
    len: usize,
) {
    // Dimensions paired per call, a whole number of micro-panels: a stack
    // buffer of words and one of zeros (the odd key past `len`).
    const CHUNK: usize = 8 * MAX_MR;
    let (mr, len_v) = (K::MR, len.div_ceil(2));
    let chunk = CHUNK / mr * mr;
    let panels = d.div_ceil(mr);
    assert!(
        dst.len() >= panels * mr * len_v,
        "pack_v_pairs: dst too short"
    );
    let (zeros, mut words) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
    for p in 0..len_v {
        for c0 in (0..d).step_by(chunk) {
            let n = chunk.min(d - c0);
            let even = &v[2 * p * ld_kv + c0..][..n];
            let odd = if 2 * p + 1 < len {
                &v[(2 * p + 1) * ld_kv + c0..][..n]
            } else {
                &zeros[..n]
            };
            // SAFETY: both inputs hold n floats and `words` room for n <= CHUNK.
            unsafe { kernel.interleave_pairs(words.as_mut_ptr(), even.as_ptr(), odd.as_ptr(), n) };
            // Zeros past d in the last micro-panel (n rounds up within the
            // chunk, a multiple of MR).
            let whole = n.next_multiple_of(mr);
            words[n..whole].fill(0.0);
            // MR words at a time: step p of each micro-panel the chunk covers.
            for (i, panel_words) in words[..whole].chunks_exact(mr).enumerate() {
                let t = c0 / mr + i;
                dst[t * mr * len_v + p * mr..][..mr].copy_from_slice(panel_words);
            }
        }
    }
}

/// Packs `Qᵀ` for `n` queries (`q: [n, d]`, row stride `ld_q`) into the
/// packed-B layout of `nr`-query panels (`[d][nr]` each, queries past `n`
/// zero), a `LANES x LANES` block at a time through
/// [`Simd::transpose_block`].
///
/// # Panics
/// If `q` or `dst` is too short, or `nr` is not a multiple of `LANES`.
#[inline(always)]
fn pack_queries_generic<S: Simd>(
    s: S,
    dst: &mut [f32],
    q: &[f32],
    ld_q: usize,
    d: usize,
    n: usize,
    nr: usize,
) {
    let l = S::LANES;
    assert!(nr.is_multiple_of(l), "pack_queries: panel width");
    assert!(
        n == 0 || q.len() >= (n - 1) * ld_q + d,
        "pack_queries: q too short"
    );
    if n == 0 || d == 0 {
        return;
    }
    let panels = n.div_ceil(nr);
    let dst = &mut dst[..panels * d * nr];
    let whole_d = d / l * l;
    for (j, panel) in dst.chunks_exact_mut(d * nr).enumerate() {
        for c0 in (0..nr).step_by(l) {
            let q0 = j * nr + c0;
            if q0 + l <= n {
                for p0 in (0..whole_d).step_by(l) {
                    // SAFETY: rows q0..q0 + l < n and columns p0..p0 + l <= d
                    // of q (asserted long enough); steps p0..p0 + l, columns
                    // c0..c0 + l <= nr of the panel.
                    unsafe {
                        s.transpose_block(
                            q.as_ptr().add(q0 * ld_q + p0),
                            ld_q,
                            panel.as_mut_ptr().add(p0 * nr + c0),
                            nr,
                        )
                    };
                }
                for p in whole_d..d {
                    for c in 0..l {
                        panel[p * nr + c0 + c] = q[(q0 + c) * ld_q + p];
                    }
                }
            } else {
                for p in 0..d {
                    for c in 0..l {
                        panel[p * nr + c0 + c] = if q0 + c < n {
                            q[(q0 + c) * ld_q + p]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    fn pack_queries(dst: &mut [f32], q: &[f32], ld_q: usize, d: usize, n: usize, nr: usize) = pack_queries_generic;
}

/// The end of a query tile: `out[i·ld_out + p] = out_t[p·tq + i] · (1 / sums[i])`
/// for `i < n`, `p < d` (0 where a sum is 0), through
/// [`Simd::transpose_block`]. `sums` is overwritten with the reciprocals.
///
/// # Safety
/// `out` is valid for writes of rows `0..n`, columns `0..d` at row stride
/// `ld_out`, and nothing else accesses them meanwhile.
///
/// # Panics
/// If `out_t` (`d x tq`) or `sums` is too short, or `n > tq`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn store_output_generic<S: Simd>(
    s: S,
    out: *mut f32,
    ld_out: usize,
    out_t: &mut [f32],
    tq: usize,
    d: usize,
    n: usize,
    sums: &mut [f32],
) {
    let l = S::LANES;
    assert!(
        n <= tq && out_t.len() >= d * tq && sums.len() >= n,
        "store_output: shapes"
    );
    for sum in &mut sums[..n] {
        *sum = if *sum > 0.0 { 1.0 / *sum } else { 0.0 };
    }
    let whole_n = n / l * l;
    let whole_d = d / l * l;
    // Scale the columns of Oᵀ, a vector at a time, then transpose whole blocks.
    for row in out_t[..d * tq].chunks_exact_mut(tq) {
        for i0 in (0..whole_n).step_by(l) {
            // SAFETY: i0 + l <= n <= tq: inside the row and inside `sums`.
            unsafe {
                let v = s.mul(s.load(row.as_ptr().add(i0)), s.load(sums.as_ptr().add(i0)));
                s.store(row.as_mut_ptr().add(i0), v);
            }
        }
    }
    for i0 in (0..whole_n).step_by(l) {
        for p0 in (0..whole_d).step_by(l) {
            // SAFETY: rows p0..p0 + l <= d, columns i0..i0 + l <= n of Oᵀ;
            // rows i0..i0 + l, columns p0..p0 + l of `out` (the caller's
            // guarantee).
            unsafe {
                s.transpose_block(
                    out_t.as_ptr().add(p0 * tq + i0),
                    tq,
                    out.add(i0 * ld_out + p0),
                    ld_out,
                )
            };
        }
        for i in i0..i0 + l {
            for p in whole_d..d {
                // SAFETY: as above (already scaled).
                unsafe { *out.add(i * ld_out + p) = out_t[p * tq + i] };
            }
        }
    }
    for i in whole_n..n {
        for p in 0..d {
            // SAFETY: as above; these columns of Oᵀ are not scaled yet.
            unsafe { *out.add(i * ld_out + p) = out_t[p * tq + i] * sums[i] };
        }
    }
}

simd_dispatch! {
    unsafe fn store_output(
        out: *mut f32,
        ld_out: usize,
        out_t: &mut [f32],
        tq: usize,
        d: usize,
        n: usize,
        sums: &mut [f32],
    ) = store_output_generic;
}
