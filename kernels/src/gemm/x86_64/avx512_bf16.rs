//! The AVX512_BF16 microkernel: a 12 x 32 tile of f32 sums of bf16 products.
//!
//! The nest counts K in pairs (see `gemm/bf16.rs`): a packed B micro-panel is
//! `[kc][32]` words, each two bf16 of one column, and an A micro-panel is
//! `[kc][12]` words, each two bf16 of one row. Per pair: two loads of B, and
//! for each row one 32-bit broadcast of A and two `vdpbf16ps`, each 32
//! multiply-adds (16 lanes x 2) into f32. The tile and its registers are the
//! f32 AVX-512 kernel's (12 x 2 accumulators + 2 of B + 1 broadcast = 27 of
//! 32 zmm), and so are the prefetching and the epilogue (`kernel::tile_with`).

use std::arch::x86_64::*;

use crate::gemm::kernel::{tile_with, Microkernel, Step, TileOut};
use crate::isa::{Avx512Bf16Token, Avx512Token};

/// Rows per tile.
const MR: usize = 12;
/// Vectors of 16 lanes per tile row.
const NV: usize = 2;

/// AVX512_BF16, 12 x 32 (in pairs of K).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Bf16Kernel(pub(crate) Avx512Bf16Token);

/// One pair step: `acc[r][v] += a_pair[r] · b_pairs[v]` by `vdpbf16ps`.
#[derive(Clone, Copy, Debug)]
struct DotBf16;

impl Step<Avx512Token> for DotBf16 {
    #[inline(always)]
    unsafe fn step<const R: usize, const V: usize>(
        self,
        _s: Avx512Token,
        acc: &mut [[__m512; V]; R],
        a: *const f32,
        b: *const f32,
        p: usize,
    ) {
        // SAFETY: p < kc, v < V and r < R stay inside the micro-panels
        // (`tile_with`'s contract); the caller runs with avx512bf16 enabled
        // (`tile` below), which the token proves.
        unsafe {
            let bv: [__m512bh; V] = std::array::from_fn(|v| {
                std::mem::transmute::<__m512, __m512bh>(_mm512_loadu_ps(b.add((p * V + v) * 16)))
            });
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let ar = std::mem::transmute::<__m512, __m512bh>(_mm512_set1_ps(*a.add(p * R + r)));
                for (acc, bv) in acc_row.iter_mut().zip(bv) {
                    *acc = _mm512_dpbf16_ps(*acc, ar, bv);
                }
            }
        }
    }
}

impl Microkernel for Avx512Bf16Kernel {
    const MR: usize = MR;
    const NR: usize = NV * 16;
    const PAIRS: bool = true;

    unsafe fn interleave_pairs(self, dst: *mut f32, even: *const f32, odd: *const f32, n: usize) {
        // SAFETY: the token proves the features; the rest is the caller's guarantee.
        unsafe { interleave_pairs(self.0, dst, even, odd, n) }
    }

    unsafe fn pack_a(
        self,
        dst: *mut f32,
        a: *const f32,
        rsa: usize,
        csa: usize,
        mc: usize,
        kc: usize,
    ) {
        // SAFETY: the token proves the features; the rest is the caller's guarantee.
        unsafe { pack_a(self.0, dst, a, rsa, csa, mc, kc) }
    }

    unsafe fn tile(
        self,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        out: &TileOut,
    ) {
        // SAFETY: the token proves the features; the rest is the caller's guarantee.
        unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
    }

    unsafe fn widen_pairs(self, dst: *mut f32, src: *const f32, pairs: usize) {
        // Not used (this kernel reads the pairs themselves); correct anyway.
        // SAFETY: the caller's guarantee.
        unsafe { crate::gemm::bf16::widen_pairs::<{ NV * 16 }>(dst, src, pairs) }
    }
}

/// # Safety
/// As [`Microkernel::tile`], `kc` counting pairs; the CPU has AVX512_BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    token: Avx512Bf16Token,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    out: &TileOut,
) {
    // SAFETY: the caller's guarantee.
    unsafe { tile_with::<_, _, MR, NV>(token.avx512(), DotBf16, kc, a, b, c, ldc, rows, cols, out) }
}

/// Where `vpermw` takes each bf16 of a pair word from, out of
/// `vcvtne2ps2bf16(odd, even)`'s `[even 0..16, odd 0..16]`: word `i` is
/// `even[i]` (low half) then `odd[i]`.
const INTERLEAVE: [u16; 32] = {
    let mut idx = [0u16; 32];
    let mut k = 0;
    while k < 32 {
        idx[k] = (k / 2 + (k % 2) * 16) as u16;
        k += 1;
    }
    idx
};

/// [`Microkernel::interleave_pairs`], 16 words at a time: two loads, one
/// `vcvtne2ps2bf16`, one `vpermw`, one store (masked for the tail).
///
/// # Safety
/// As [`Microkernel::interleave_pairs`]; the CPU has AVX512_BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
unsafe fn interleave_pairs(
    _token: Avx512Bf16Token,
    dst: *mut f32,
    even: *const f32,
    odd: *const f32,
    n: usize,
) {
    // SAFETY: INTERLEAVE is 32 u16, one zmm.
    let idx = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    for i0 in (0..n).step_by(16) {
        let left = n - i0;
        let mask = if left >= 16 {
            0xFFFF
        } else {
            ((1u32 << left) - 1) as u16
        };
        // SAFETY: the mask covers elements i0..min(n, i0 + 16) of each
        // input and words of dst (the caller's guarantee); both loads come
        // before the store, so dst may be an input.
        unsafe {
            let e = _mm512_maskz_loadu_ps(mask, even.add(i0));
            let o = _mm512_maskz_loadu_ps(mask, odd.add(i0));
            let halves = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(o, e));
            _mm512_mask_storeu_epi32(
                dst.add(i0).cast(),
                mask,
                _mm512_permutexvar_epi16(idx, halves),
            );
        }
    }
}

/// Pairs converted per row at a time: one `vcvtne2ps2bf16` (32 floats).
const CHUNK: usize = 16;

/// Packs an `mc x kc`-pair block of f32 A into `MR`-row micro-panels of bf16
/// pair words: word `(p, r)` holds `A[r, 2p]` (low half) and `A[r, 2p + 1]`,
/// rounded to nearest even. Rows past `mc` are zeros.
///
/// # Safety
/// `csa == 2` (rows contiguous along K); `a[i·rsa + j]` is readable for
/// `i < mc`, `j < 2·kc`; `dst` has room for `mc.div_ceil(MR) · MR · kc` words;
/// the CPU has AVX512_BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
unsafe fn pack_a(
    _token: Avx512Bf16Token,
    dst: *mut f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    mc: usize,
    kc: usize,
) {
    debug_assert_eq!(csa, 2, "bf16 A must be contiguous along K");
    // Each row's chunk of 16 pairs is converted in a register (one
    // `vcvtne2ps2bf16`), then the rows are transposed four at a time into
    // the p-major panel the tile broadcasts from: 4 x 4 word transposes in
    // each 128-bit lane, each lane stored as the 4 words of one p.
    for i0 in (0..mc).step_by(MR) {
        let rows = MR.min(mc - i0);
        // SAFETY: i0 < mc, so the micro-panel starts inside dst.
        let panel = unsafe { dst.add(i0 * kc) };
        for p0 in (0..kc).step_by(CHUNK) {
            let pairs = CHUNK.min(kc - p0);
            // Floats of each row in this chunk, as two masks of 16 lanes.
            let floats = 2 * pairs;
            let lo_mask = if floats >= 16 {
                0xFFFF
            } else {
                ((1u32 << floats) - 1) as u16
            };
            let hi_mask = if floats >= 32 {
                0xFFFF
            } else if floats > 16 {
                ((1u32 << (floats - 16)) - 1) as u16
            } else {
                0
            };
            let words: [__m512i; MR] = std::array::from_fn(|r| {
                if r >= rows {
                    return _mm512_setzero_si512();
                }
                // SAFETY: the masks cover floats 2·p0..2·(p0 + pairs) of row
                // i0 + r < mc, inside the block (the caller's guarantee).
                unsafe {
                    let src = a.add((i0 + r) * rsa + 2 * p0);
                    let lo = _mm512_maskz_loadu_ps(lo_mask, src);
                    let hi = _mm512_maskz_loadu_ps(hi_mask, src.wrapping_add(16));
                    std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
                }
            });
            if pairs < CHUNK {
                // The last, short chunk: word by word.
                let mut tail = [[0u32; CHUNK]; MR];
                for (row, v) in tail.iter_mut().zip(words) {
                    // SAFETY: a row of the buffer is 16 words, one zmm.
                    unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
                }
                for q in 0..pairs {
                    for (r, row) in tail.iter().enumerate() {
                        // SAFETY: (p0 + q)·MR + r < kc·MR: inside the micro-panel.
                        unsafe { *panel.add((p0 + q) * MR + r) = f32::from_bits(row[q]) };
                    }
                }
                continue;
            }
            for g in 0..MR / 4 {
                let [w0, w1, w2, w3] = [
                    words[4 * g],
                    words[4 * g + 1],
                    words[4 * g + 2],
                    words[4 * g + 3],
                ];
                let (lo01, hi01) = (_mm512_unpacklo_epi32(w0, w1), _mm512_unpackhi_epi32(w0, w1));
                let (lo23, hi23) = (_mm512_unpacklo_epi32(w2, w3), _mm512_unpackhi_epi32(w2, w3));
                // t[j]'s lane l holds rows 4g..4g+4 of pair 4l + j.
                let t = [
                    _mm512_unpacklo_epi64(lo01, lo23),
                    _mm512_unpackhi_epi64(lo01, lo23),
                    _mm512_unpacklo_epi64(hi01, hi23),
                    _mm512_unpackhi_epi64(hi01, hi23),
                ];
                for (j, t) in t.into_iter().enumerate() {
                    let lanes = [
                        _mm512_castsi512_si128(t),
                        _mm512_extracti32x4_epi32::<1>(t),
                        _mm512_extracti32x4_epi32::<2>(t),
                        _mm512_extracti32x4_epi32::<3>(t),
                    ];
                    for (l, lane) in lanes.into_iter().enumerate() {
                        // SAFETY: pair p0 + 4l + j < p0 + 16 <= kc, rows
                        // 4g..4g + 4 <= MR: inside the micro-panel.
                        unsafe {
                            let at = panel.add((p0 + 4 * l + j) * MR + 4 * g);
                            _mm_storeu_si128(at.cast(), lane);
                        }
                    }
                }
            }
        }
    }
}

/// Independent `vdpbf16ps` chains for the peak loop: more than pipes x latency.
const PEAK_CHAINS: usize = 12;

/// `iters` rounds of [`PEAK_CHAINS`] independent `vdpbf16ps` on registers
/// (32 multiply-adds each): the bf16 peak's loop.
pub(crate) fn dpbf16_loop(token: Avx512Bf16Token, iters: u64, seed: f32) -> f32 {
    // SAFETY: the token proves the features.
    unsafe { dpbf16_loop_impl(token, iters, seed) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
fn dpbf16_loop_impl(_token: Avx512Bf16Token, iters: u64, seed: f32) -> f32 {
    let x = _mm512_set1_ps(std::hint::black_box(seed));
    let y = _mm512_set1_ps(std::hint::black_box(1.0 - seed));
    let a = _mm512_cvtne2ps_pbh(x, y);
    let b = _mm512_cvtne2ps_pbh(y, x);
    let mut acc = [_mm512_setzero_ps(); PEAK_CHAINS];
    for _ in 0..iters {
        for acc in &mut acc {
            *acc = _mm512_dpbf16_ps(*acc, a, b);
        }
    }
    let total = acc
        .into_iter()
        .fold(_mm512_setzero_ps(), |t, x| _mm512_add_ps(t, x));
    _mm512_reduce_add_ps(total)
}

/// Multiply-adds per round of [`dpbf16_loop`].
pub(crate) const PEAK_MACS_PER_ITER: usize = PEAK_CHAINS * 32;
