//! The int8 tile on AVX-512 VNNI: 6 rows x 32 columns.
//!
//! Why 6 x 32: each (row, 16 columns) needs an int32 block accumulator and an
//! f32 running sum, so a 6 x 32 tile holds 24 accumulators, plus 2 registers
//! of B, 2 of offsets and 2 of scales and the broadcast row of A: 31 of the 32
//! zmm registers. Per 4 K values a row costs one broadcast and two
//! `vpdpbusd` (64 multiply-adds each); per block of 32, two conversions, a
//! multiply and two FMAs fold the block's sums into the f32 sums (with
//! per-column weight scales, no multiply: two multiplies a row at the end).

use std::arch::x86_64::*;

use super::{Tile, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::finish;
use crate::isa::Avx512VnniToken;

/// Rows per tile.
pub(super) const MR: usize = 6;
/// Columns per tile and panel: two zmm of 16 int32 lanes.
pub(super) const NR: usize = 32;

/// As [`super::portable::tile`], with the same results bit for bit.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
#[inline]
pub(super) unsafe fn tile(token: Avx512VnniToken, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe {
        if t.b.per_column() {
            tile_impl::<true>(token, t)
        } else {
            tile_impl::<false>(token, t)
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn tile_impl<const PER_COLUMN: bool>(token: Avx512VnniToken, t: &Tile<'_>) {
    let Tile {
        a,
        r0,
        rows,
        b,
        p,
        c,
        ldc,
        cols,
        out,
    } = *t;
    let kb = a.kb;
    assert!((1..=MR).contains(&rows) && cols <= NR && b.nr == NR);
    assert!(a.bytes.len() >= (r0 + rows) * a.kp && a.scales.len() >= (r0 + rows) * kb);
    assert!(b.data.len() >= (p + 1) * kb * QBLOCK * NR);
    assert!(b.offsets.len() >= (p + 1) * kb * NR && b.scales.len() >= (p + 1) * b.panel_scales());
    // Rows past `rows` repeat the last real one; `finish` never stores them.
    let row = |r: usize| r0 + r.min(rows - 1);
    let a_rows: [*const u8; MR] = std::array::from_fn(|r| a.bytes[row(r) * a.kp..].as_ptr());
    let panel = b.data[p * kb * QBLOCK * NR..].as_ptr();
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for blk in 0..kb {
        let at = (p * kb + blk) * NR;
        // SAFETY: the panel holds kb blocks of NR offsets, and of NR scales
        // unless per column (asserted).
        let (o0, o1, s0, s1) = unsafe {
            let o = b.offsets.as_ptr().add(at);
            let (o0, o1) = (
                _mm512_loadu_si512(o.cast()),
                _mm512_loadu_si512(o.add(16).cast()),
            );
            if PER_COLUMN {
                (o0, o1, _mm512_setzero_ps(), _mm512_setzero_ps())
            } else {
                let s = b.scales.as_ptr().add(at);
                (o0, o1, _mm512_loadu_ps(s), _mm512_loadu_ps(s.add(16)))
            }
        };
        let mut dots = [[o0, o1]; MR];
        for g in 0..GROUPS {
            // SAFETY: group g of block blk of the panel: NR x 4 bytes inside it.
            let (b0, b1) = unsafe {
                let bp = panel.add((blk * GROUPS + g) * NR * GROUP);
                (
                    _mm512_loadu_si512(bp.cast()),
                    _mm512_loadu_si512(bp.add(64).cast()),
                )
            };
            for (r, dots_row) in dots.iter_mut().enumerate() {
                // SAFETY: 4 bytes of row r, block blk, group g: inside its kp bytes.
                let four = unsafe {
                    std::ptr::read_unaligned(a_rows[r].add(blk * QBLOCK + g * GROUP).cast::<i32>())
                };
                let av = _mm512_set1_epi32(four);
                dots_row[0] = _mm512_dpbusd_epi32(dots_row[0], av, b0);
                dots_row[1] = _mm512_dpbusd_epi32(dots_row[1], av, b1);
            }
        }
        for (r, (acc_row, dots_row)) in acc.iter_mut().zip(&dots).enumerate() {
            let sa = _mm512_set1_ps(a.scales[row(r) * kb + blk]);
            let (p0, p1) = if PER_COLUMN {
                (sa, sa)
            } else {
                (_mm512_mul_ps(s0, sa), _mm512_mul_ps(s1, sa))
            };
            acc_row[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots_row[0]), p0, acc_row[0]);
            acc_row[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots_row[1]), p1, acc_row[1]);
        }
    }
    if PER_COLUMN {
        // SAFETY: the panel's NR column scales (asserted).
        let (s0, s1) = unsafe {
            let s = b.scales.as_ptr().add(p * NR);
            (_mm512_loadu_ps(s), _mm512_loadu_ps(s.add(16)))
        };
        for acc_row in &mut acc {
            acc_row[0] = _mm512_mul_ps(acc_row[0], s0);
            acc_row[1] = _mm512_mul_ps(acc_row[1], s1);
        }
    }
    let s = token.avx512();
    // SAFETY: the caller's guarantee for the tile of C and `out`.
    unsafe {
        if rows == MR && cols == NR {
            finish::<_, MR, 2, true>(s, acc, c, ldc, rows, cols, out)
        } else {
            finish::<_, MR, 2, false>(s, acc, c, ldc, rows, cols, out)
        }
    }
}

/// Independent `vpdpbusd` chains for the peak loop: more than pipes x latency.
const PEAK_CHAINS: usize = 12;

/// `iters` rounds of [`PEAK_CHAINS`] independent `vpdpbusd` on registers
/// (64 multiply-adds each): the int8 peak's loop.
pub(crate) fn dpbusd_loop(token: Avx512VnniToken, iters: u64, seed: i32) -> i32 {
    // SAFETY: the token proves the features.
    unsafe { dpbusd_loop_impl(token, iters, seed) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
fn dpbusd_loop_impl(_token: Avx512VnniToken, iters: u64, seed: i32) -> i32 {
    let a = _mm512_set1_epi32(std::hint::black_box(seed));
    let b = _mm512_set1_epi32(std::hint::black_box(seed ^ 0x0101_0101));
    let mut acc = [_mm512_setzero_si512(); PEAK_CHAINS];
    for _ in 0..iters {
        for acc in &mut acc {
            *acc = _mm512_dpbusd_epi32(*acc, a, b);
        }
    }
    let total = acc
        .into_iter()
        .fold(_mm512_setzero_si512(), |t, x| _mm512_add_epi32(t, x));
    _mm512_reduce_add_epi32(total)
}

/// Multiply-adds per round of [`dpbusd_loop`].
pub(crate) const PEAK_MACS_PER_ITER: usize = PEAK_CHAINS * 64;

/// One row of A quantized for this kernel (bytes `q + 128`), exactly as
/// [`super::quantize_block`] defines it: the same max, the same `127 / max`,
/// and `vcvtps2dq` rounds to nearest even as `round_ties_even` does.
pub(super) fn quantize_row(
    token: Avx512VnniToken,
    row: &[f32],
    bytes: &mut [u8],
    scales: &mut [f32],
) {
    // SAFETY: the token proves the features.
    unsafe { quantize_row_impl(token, row, bytes, scales) }
}

/// Blocks whose scales [`quantize_row_impl`] divides at once: one vector.
const SCALE_GROUP: usize = 16;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
fn quantize_row_impl(_token: Avx512VnniToken, row: &[f32], bytes: &mut [u8], scales: &mut [f32]) {
    let k = row.len();
    assert!(bytes.len() >= scales.len() * QBLOCK && scales.len() * QBLOCK >= k);
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    let flip = _mm512_set1_epi8(-128);
    // Up to 16 blocks at a time: their maxima first, then both divisions
    // for all of them in one vector each (IEEE division is correctly
    // rounded in either form: the same bits as `quantize_block`'s scalar
    // `127 / max` and `max / 127`), then each block's bytes. The scalar
    // divisions were the chain each block waited on.
    for (g, group_scales) in scales.chunks_mut(SCALE_GROUP).enumerate() {
        let first = g * SCALE_GROUP;
        let mut maxes = [0.0f32; SCALE_GROUP];
        // The maxima are gathered into a register lane by lane: stored one
        // by one and loaded as one vector, the load could not be forwarded
        // from the 16 stores and waited for them (half this function's
        // time on Zen 4, all-MiniLM-L6-v2 int8).
        let mut max_v = _mm512_setzero_ps();
        for (b, max) in maxes.iter_mut().enumerate().take(group_scales.len()) {
            let (x0, x1) = load_block(row, (first + b) * QBLOCK);
            *max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            max_v = _mm512_mask_broadcastss_ps(max_v, 1 << b, _mm_set_ss(*max));
        }
        let (mut invs, mut outs) = ([0.0f32; SCALE_GROUP], [0.0f32; SCALE_GROUP]);
        // SAFETY: `invs` and `outs` are 16 floats each, one zmm. (A zero max divides to inf
        // here; such blocks take the branch below and never read it.)
        unsafe {
            _mm512_storeu_ps(
                invs.as_mut_ptr(),
                _mm512_div_ps(_mm512_set1_ps(127.0), max_v),
            );
            _mm512_storeu_ps(
                outs.as_mut_ptr(),
                _mm512_div_ps(max_v, _mm512_set1_ps(127.0)),
            );
        }
        for (b, scale) in group_scales.iter_mut().enumerate() {
            let start = (first + b) * QBLOCK;
            let (max, dst) = (maxes[b], &mut bytes[start..start + QBLOCK]);
            if max == 0.0 || !max.is_finite() {
                dst.fill(128);
                *scale = if max.is_finite() { 0.0 } else { f32::NAN };
                continue;
            }
            let (x0, x1) = load_block(row, start);
            let inv = _mm512_set1_ps(invs[b]);
            let q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, inv));
            let q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, inv));
            // Narrow by two packs (exact: |q| <= 127) rather than `vpmovdb`,
            // which took a third of this function's time on Zen 4. Lane l then
            // holds q0[4l..4l+4] and q1[4l..4l+4] as its first two dwords; the
            // permutation puts them in order, and flipping the top bit adds 128.
            let bytes8 = _mm512_packs_epi16(_mm512_packs_epi32(q0, q1), _mm512_setzero_si512());
            let ordered = _mm512_permutexvar_epi32(order, bytes8);
            let unsigned = _mm512_xor_si512(ordered, flip);
            // SAFETY: dst holds QBLOCK = 32 bytes: the low half of the register.
            unsafe {
                _mm256_storeu_si256(dst.as_mut_ptr().cast(), _mm512_castsi512_si256(unsigned));
            }
            *scale = outs[b];
        }
    }
}

/// The block of `row` at `start`, as two vectors of 16 (zeros past the row).
/// (A function with the caller's features, not a closure: a closure does
/// not inherit them, and its intrinsics became calls.)
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
#[inline]
fn load_block(row: &[f32], start: usize) -> (__m512, __m512) {
    let k = row.len();
    let len = QBLOCK.min(k.saturating_sub(start));
    // Lanes of each half inside the row; the rest load as zeros.
    let m0 = if len >= 16 {
        0xFFFF
    } else {
        (1u32 << len) as u16 - 1
    };
    let m1 = if len >= 32 {
        0xFFFF
    } else if len > 16 {
        (1u32 << (len - 16)) as u16 - 1
    } else {
        0
    };
    // SAFETY: the masks cover only elements start..start + len < k.
    unsafe {
        let p = row.as_ptr().add(start.min(k));
        (
            _mm512_maskz_loadu_ps(m0, p),
            _mm512_maskz_loadu_ps(m1, p.wrapping_add(16)),
        )
    }
}
