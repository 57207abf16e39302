//! The int8 tile on AVX2 (no VNNI): 6 rows x 16 columns, with `vpmaddwd`.
//!
//! `vpmaddwd` multiplies 16-bit integers and adds each pair into a 32-bit
//! lane: 16 multiply-adds per instruction, exact for 8-bit values widened to
//! 16 bits (a pair sum is at most 2 · 127 · 127). The 8-bit route,
//! `vpmaddubsw`, multiplies unsigned by signed bytes into saturating 16-bit
//! pair sums, so signed activations need the sign trick (a `vpsignb` per
//! product). Measured on Zen 4 in register loops, in multiply-adds per
//! second: `vpsignb` + `vpmaddubsw` + `vpmaddwd` + `vpaddd` 1.3x the FMA
//! rate, `vpmaddwd` + `vpaddd` 1.6x; the `vpmaddubsw` tile this file once
//! had ran the GEMM at the FMA rate, `vpmaddwd` 14-20% faster (one thread,
//! M >= 512).
//!
//! A is stored a byte a value, as for every kernel, and widened to i16 a
//! row block at a time ([`widen`], in `compute`), so a pair of K values of a
//! row is one 4-byte broadcast. B stays 8-bit in the panel and is widened as
//! it is loaded. Its groups are laid out for this tile ([`group_offset`]):
//! each group of 4 K values holds its first pair of K values for the 16
//! columns, then its second, so 16 bytes widen to one vector of 8 columns x
//! one pair, and `vpmaddwd` with the broadcast pair of A leaves one lane per
//! column. A block's sums are then in column order, ready for the f32 fold.
//!
//! Why 6 x 16 with a lane per column: 12 int32 block sums, two vectors of B
//! and the broadcast are 15 of AVX2's 16 ymm registers, as for the 6 x 8
//! tile with two lanes per column (a group of 4 K values broadcast) it
//! replaced; but that tile summed each column's two lanes with a `vphaddd`
//! per row and block, and folded into the f32 sums 8 columns per broadcast
//! scale of A instead of 16. Measured on Zen 3 on a tile's data in L1 (6 rows,
//! K = 384; paired medians of 41 alternating rounds, twice): this tile's
//! multiply-adds per second were 1.05x the old one's with a scale per block,
//! 1.12-1.13x with a scale per column; `bench gemm --precision int8` on BERT's
//! shapes, 1.14x on one thread and 1.12x on two (medians over the shapes of
//! the paired ratios of 8 alternating rounds). The 12 f32 sums, touched once
//! a block, live in memory between blocks.

use std::arch::x86_64::*;

use super::{Tile, QBLOCK};
use crate::gemm::kernel::finish;
use crate::isa::Avx2Token;

/// Rows per tile.
pub(super) const MR: usize = 6;
/// Columns per tile and panel: two ymm of 8 int32 lanes.
pub(super) const NR: usize = 16;

/// Where value `t` (0-3) of column `j`'s group sits among the group's
/// `NR · 4` bytes: `[pair][column][2]`, so that one pair of K values of 8
/// columns is 16 consecutive bytes. A block of a panel is then simply
/// `[pair][column][2]` over its 16 pairs.
pub(super) const fn group_offset(j: usize, t: usize) -> usize {
    (t / 2) * NR * 2 + j * 2 + t % 2
}

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

/// Pairs of K values per block.
const PAIRS: usize = QBLOCK / 2;

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
    assert!(
        a.kp == 2 * kb * QBLOCK,
        "qgemm: A not widened to 16-bit values"
    );
    assert!(a.bytes.len() >= (r0 + rows) * a.kp && a.scales.len() >= (r0 + rows) * kb);
    assert!(b.data.len() >= (p + 1) * kb * QBLOCK * NR);
    assert!(b.scales.len() >= (p + 1) * b.panel_scales());
    // Rows past `rows` repeat the last real one; `finish` never stores them.
    let row = |r: usize| r0 + r.min(rows - 1);
    let a_rows: [*const u8; MR] = std::array::from_fn(|r| a.bytes[row(r) * a.kp..].as_ptr());
    let a_scales: [*const f32; MR] = std::array::from_fn(|r| a.scales[row(r) * kb..].as_ptr());
    let panel = b.data[p * kb * QBLOCK * NR..].as_ptr();
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for blk in 0..kb {
        // dots[r]: columns 0-7 and 8-15 of row r, a lane per column.
        let mut dots = [[_mm256_setzero_si256(); 2]; MR];
        for pair in 0..PAIRS {
            // SAFETY: pair `pair` of block blk of the panel: NR x 2 = 32
            // bytes inside it (`group_offset`'s layout).
            let (mut b_lo, mut b_hi) = unsafe {
                let src = panel.add((blk * PAIRS + pair) * NR * 2);
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(src.cast())),
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(src.add(16).cast())),
                )
            };
            // SAFETY: an empty asm that touches only its two registers: the
            // optimizer cannot see that they are loads, so it keeps them in
            // registers for all rows instead of widening B again per row.
            unsafe {
                std::arch::asm!(
                    "/* {0} {1} */",
                    inout(ymm_reg) b_lo,
                    inout(ymm_reg) b_hi,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            for (dot, a_row) in dots.iter_mut().zip(&a_rows) {
                // SAFETY: values 2·pair, 2·pair + 1 of block blk of the row
                // (i16, 4 bytes) inside its kp bytes (asserted above).
                let two = unsafe {
                    _mm256_set1_epi32(std::ptr::read_unaligned(
                        a_row.add(2 * (blk * QBLOCK + 2 * pair)).cast::<i32>(),
                    ))
                };
                dot[0] = _mm256_add_epi32(dot[0], _mm256_madd_epi16(two, b_lo));
                dot[1] = _mm256_add_epi32(dot[1], _mm256_madd_epi16(two, b_hi));
            }
        }
        let sw = if PER_COLUMN {
            [_mm256_setzero_ps(); 2]
        } else {
            // SAFETY: NR scales of block blk of panel p (asserted above).
            unsafe {
                let s = b.scales.as_ptr().add((p * kb + blk) * NR);
                [_mm256_loadu_ps(s), _mm256_loadu_ps(s.add(8))]
            }
        };
        for ((acc_row, dot), a_scales) in acc.iter_mut().zip(&dots).zip(&a_scales) {
            // SAFETY: the row's kb scales (asserted above).
            let sa = _mm256_set1_ps(unsafe { *a_scales.add(blk) });
            for h in 0..2 {
                let prod = if PER_COLUMN {
                    sa
                } else {
                    _mm256_mul_ps(sw[h], sa)
                };
                acc_row[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[h]), prod, acc_row[h]);
            }
        }
    }
    if PER_COLUMN {
        // SAFETY: the panel's NR column scales (asserted above).
        let sw = unsafe {
            let s = b.scales.as_ptr().add(p * NR);
            [_mm256_loadu_ps(s), _mm256_loadu_ps(s.add(8))]
        };
        for acc_row in &mut acc {
            for h in 0..2 {
                acc_row[h] = _mm256_mul_ps(acc_row[h], sw[h]);
            }
        }
    }
    // SAFETY: the caller's guarantee for the tile of C and `out`.
    unsafe {
        if rows == MR && cols == NR {
            finish::<_, MR, 2, true>(token, acc, c, ldc, rows, cols, out)
        } else {
            finish::<_, MR, 2, false>(token, acc, c, ldc, rows, cols, out)
        }
    }
}

/// Independent `vpmaddwd` chains for the peak loop: more than pipes x latency.
const PEAK_CHAINS: usize = 12;

/// Multiply-adds per round of [`madd_loop`].
pub(crate) const PEAK_MACS_PER_ITER: usize = PEAK_CHAINS * 16;

/// `iters` rounds of [`PEAK_CHAINS`] independent `vpmaddwd` + `vpaddd` on
/// registers (16 multiply-adds each, accumulated as the tile accumulates):
/// the int8 peak's loop on AVX2.
pub(crate) fn madd_loop(token: Avx2Token, iters: u64, seed: i32) -> i32 {
    // SAFETY: the token proves the features.
    unsafe { madd_loop_impl(token, iters, seed) }
}

#[target_feature(enable = "avx2,fma")]
fn madd_loop_impl(_token: Avx2Token, iters: u64, seed: i32) -> i32 {
    let b = _mm256_set1_epi32(std::hint::black_box(seed ^ 0x0101_0101));
    let mut acc: [__m256i; PEAK_CHAINS] =
        std::array::from_fn(|i| _mm256_set1_epi32(std::hint::black_box(seed + i as i32)));
    for _ in 0..iters {
        // Each chain multiplies its own sum (read as 16-bit values), so no
        // product is loop-invariant or shared between chains; the 12 chains
        // of 4 cycles' latency each keep the two multipliers busy.
        for acc in &mut acc {
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(*acc, b));
        }
    }
    let total = acc
        .into_iter()
        .fold(_mm256_setzero_si256(), |t, x| _mm256_add_epi32(t, x));
    _mm256_extract_epi32::<0>(total)
}

/// One row of A quantized as [`super::quantize_block`] defines it (signed
/// bytes): the same max, the same `127 / max`, and `vcvtps2dq` rounds to
/// nearest even as `round_ties_even` does.
pub(super) fn quantize_row(token: Avx2Token, row: &[f32], bytes: &mut [u8], scales: &mut [f32]) {
    // SAFETY: the token proves the features.
    unsafe { quantize_row_impl(token, row, bytes, scales) }
}

/// Signed bytes `src` as little-endian i16 in `dst` (twice as long; `src`
/// a whole number of 16-byte groups): A as this file's tile reads it.
pub(super) fn widen(token: Avx2Token, src: &[u8], dst: &mut [u8]) {
    // SAFETY: the token proves the features.
    unsafe { widen_impl(token, src, dst) }
}

#[target_feature(enable = "avx2,fma")]
fn widen_impl(_token: Avx2Token, src: &[u8], dst: &mut [u8]) {
    assert!(src.len().is_multiple_of(16) && dst.len() == 2 * src.len());
    for (s, d) in src.chunks_exact(16).zip(dst.chunks_exact_mut(32)) {
        // SAFETY: 16 bytes read from `s`, 32 written to `d`.
        unsafe {
            let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(s.as_ptr().cast()));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), v);
        }
    }
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
