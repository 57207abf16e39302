//! The int8 tile on AVX2 (no VNNI): 4 rows x 8 columns.
//!
//! `vpmaddubsw` multiplies unsigned by signed bytes into saturating 16-bit
//! pair sums. With both operands in [-127, 127] the sign trick keeps it
//! exact: `|b| · (a · sign(b))` is `a · b`, the first factor unsigned, and a
//! pair sum is at most 2 · 127 · 127 = 32,258 < 32,767. Then `vpmaddwd`
//! with ones widens pairs to int32. Per 4 K values and row: a broadcast,
//! `vpsignb`, `vpmaddubsw`, `vpmaddwd`, `vpaddd` for 32 multiply-adds.
//!
//! Why 4 x 8: AVX2 has 16 ymm registers; 4 rows x 1 vector need 4 int32
//! block sums and 4 f32 sums, plus B, |B|, the broadcast, a temporary and
//! the ones: 13.

use std::arch::x86_64::*;

use super::{Tile, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::finish;
use crate::isa::Avx2Token;

/// Rows per tile.
pub(super) const MR: usize = 4;
/// Columns per tile and panel: one ymm of 8 int32 lanes.
pub(super) const NR: usize = 8;

/// As [`super::portable::tile`], with the same results bit for bit.
///
/// # Safety
/// As [`super::portable::tile`], with the same results bit for bit.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
#[inline]
pub(super) unsafe fn tile(token: Avx2Token, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe {
        if t.b.per_column() {
            tile_impl::<true>(token, t)
        } else {
            tile_impl::<false>(token, t)
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_impl<const PER_COLUMN: bool>(token: Avx2Token, t: &Tile<'_>) {
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
    assert!(b.scales.len() >= (p + 1) * b.panel_scales());
    // Rows past `rows` repeat the last real one; `finish` never stores them.
    let row = |r: usize| r0 + r.min(rows - 1);
    let a_rows: [*const u8; MR] = std::array::from_fn(|r| a.bytes[row(r) * a.kp..].as_ptr());
    let panel = b.data[p * kb * QBLOCK * NR..].as_ptr();
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 1]; MR];
    for blk in 0..kb {
        let mut dots = [_mm256_setzero_si256(); MR];
        for g in 0..GROUPS {
            // SAFETY: group g of block blk of the panel: NR x 4 = 32 bytes inside it.
            let bv =
                unsafe { _mm256_loadu_si256(panel.add((blk * GROUPS + g) * NR * GROUP).cast()) };
            let b_abs = _mm256_abs_epi8(bv);
            for (r, dot) in dots.iter_mut().enumerate() {
                // SAFETY: 4 bytes of row r, block blk, group g: inside its kp bytes.
                let four = unsafe {
                    std::ptr::read_unaligned(a_rows[r].add(blk * QBLOCK + g * GROUP).cast::<i32>())
                };
                let a_signed = _mm256_sign_epi8(_mm256_set1_epi32(four), bv);
                let pairs = _mm256_maddubs_epi16(b_abs, a_signed);
                *dot = _mm256_add_epi32(*dot, _mm256_madd_epi16(pairs, ones));
            }
        }
        let sw = if PER_COLUMN {
            _mm256_setzero_ps()
        } else {
            // SAFETY: NR scales of block blk of panel p (asserted above).
            unsafe { _mm256_loadu_ps(b.scales.as_ptr().add((p * kb + blk) * NR)) }
        };
        for (r, (acc_row, dot)) in acc.iter_mut().zip(&dots).enumerate() {
            let sa = _mm256_set1_ps(a.scales[row(r) * kb + blk]);
            let prod = if PER_COLUMN {
                sa
            } else {
                _mm256_mul_ps(sw, sa)
            };
            acc_row[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(*dot), prod, acc_row[0]);
        }
    }
    if PER_COLUMN {
        // SAFETY: the panel's NR column scales (asserted above).
        let sw = unsafe { _mm256_loadu_ps(b.scales.as_ptr().add(p * NR)) };
        for acc_row in &mut acc {
            acc_row[0] = _mm256_mul_ps(acc_row[0], sw);
        }
    }
    // SAFETY: the caller's guarantee for the tile of C and `out`.
    unsafe {
        if rows == MR && cols == NR {
            finish::<_, MR, 1, true>(token, acc, c, ldc, rows, cols, out)
        } else {
            finish::<_, MR, 1, false>(token, acc, c, ldc, rows, cols, out)
        }
    }
}

/// One row of A quantized as [`super::quantize_block`] defines it (signed
/// bytes): the same max, the same `127 / max`, and `vcvtps2dq` rounds to
/// nearest even as `round_ties_even` does.
pub(super) fn quantize_row(token: Avx2Token, row: &[f32], bytes: &mut [u8], scales: &mut [f32]) {
    // SAFETY: the token proves the features.
    unsafe { quantize_row_impl(token, row, bytes, scales) }
}

#[target_feature(enable = "avx2,fma")]
fn quantize_row_impl(_token: Avx2Token, row: &[f32], bytes: &mut [u8], scales: &mut [f32]) {
    let k = row.len();
    assert!(bytes.len() >= scales.len() * QBLOCK && scales.len() * QBLOCK >= k);
    let sign_bit = _mm256_set1_ps(-0.0);
    // packs interleave 128-bit lanes; this puts the 8 dwords back in order.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (b, scale) in scales.iter_mut().enumerate() {
        let start = b * QBLOCK;
        let len = QBLOCK.min(k.saturating_sub(start));
        let mut block = [0.0f32; QBLOCK];
        block[..len].copy_from_slice(&row[start..start + len]);
        // SAFETY: `block` holds 32 floats: four loads of 8.
        let x: [__m256; 4] =
            std::array::from_fn(|i| unsafe { _mm256_loadu_ps(block.as_ptr().add(8 * i)) });
        let abs = |v| _mm256_andnot_ps(sign_bit, v);
        let m = _mm256_max_ps(
            _mm256_max_ps(abs(x[0]), abs(x[1])),
            _mm256_max_ps(abs(x[2]), abs(x[3])),
        );
        let m = _mm256_max_ps(m, _mm256_permute2f128_ps::<1>(m, m));
        let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b01_00_11_10>(m, m));
        let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b10_11_00_01>(m, m));
        let max = _mm256_cvtss_f32(m);
        let dst = &mut bytes[start..start + QBLOCK];
        if max == 0.0 || !max.is_finite() {
            dst.fill(0);
            *scale = if max.is_finite() { 0.0 } else { f32::NAN };
            continue;
        }
        let inv = _mm256_set1_ps(127.0 / max);
        let q: [__m256i; 4] = std::array::from_fn(|i| _mm256_cvtps_epi32(_mm256_mul_ps(x[i], inv)));
        let words = [
            _mm256_packs_epi32(q[0], q[1]),
            _mm256_packs_epi32(q[2], q[3]),
        ];
        let packed = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words[0], words[1]), order);
        // SAFETY: dst holds QBLOCK = 32 bytes.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), packed) };
        *scale = max / 127.0;
    }
}
