//! The int8 tile with `vpdpbusd` on ymm: 6 rows x 8 columns, for CPUs with
//! AVX-VNNI (VEX, 16 ymm registers: Alder Lake and later, Zen 5) and, with
//! the same code and the EVEX encoding, AVX-512 VNNI + VL.
//!
//! The scheme is the zmm kernel's (`vnni.rs`): A stored as `qa + 128`, each
//! block's int32 sum started from `-128 · Σ qw`, so it is exact, then
//! `fma(dot, sa·sw, acc)` block by block: the same bits as the portable tile.
//! Why 6 x 8: 6 int32 block sums and 6 f32 sums, plus B, the broadcast row of
//! A, the offsets and the scales: 15 of the 16 ymm registers AVX-VNNI has.

use std::arch::x86_64::*;

use super::{Tile, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::finish;
use crate::isa::{Avx2Token, Avx512VlVnniToken, AvxVnniToken};

/// Rows per tile.
pub(super) const MR: usize = 6;
/// Columns per tile and panel: one ymm of 8 int32 lanes.
pub(super) const NR: usize = 8;

/// One `vpdpbusd` on ymm, in one of its two encodings.
trait Dpbusd: Copy {
    /// `acc + Σ_t a_u8[4i + t] · b_i8[4i + t]` per 32-bit lane i.
    ///
    /// # Safety
    /// The CPU has the instruction (the implementing token proves it).
    unsafe fn dp(self, acc: __m256i, a: __m256i, b: __m256i) -> __m256i;
}

/// VEX (AVX-VNNI).
#[derive(Clone, Copy)]
struct Vex;

impl Dpbusd for Vex {
    #[inline(always)]
    unsafe fn dp(self, acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller runs with avxvnni enabled (`tile_vex`).
        unsafe { _mm256_dpbusd_avx_epi32(acc, a, b) }
    }
}

/// EVEX (AVX-512 VNNI + VL).
#[derive(Clone, Copy)]
struct Evex;

impl Dpbusd for Evex {
    #[inline(always)]
    unsafe fn dp(self, acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller runs with avx512vnni and avx512vl enabled (`tile_evex`).
        unsafe { _mm256_dpbusd_epi32(acc, a, b) }
    }
}

/// As [`super::portable::tile`], with AVX-VNNI.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
pub(super) unsafe fn tile_vex(token: AvxVnniToken, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe { tile_vex_impl(token, t) }
}

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn tile_vex_impl(token: AvxVnniToken, t: &Tile<'_>) {
    // SAFETY: the caller's guarantee; avxvnni is enabled here.
    unsafe {
        if t.b.per_column() {
            tile_with::<_, true>(token.avx2(), Vex, t)
        } else {
            tile_with::<_, false>(token.avx2(), Vex, t)
        }
    }
}

/// As [`super::portable::tile`], with AVX-512 VNNI on ymm.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
pub(super) unsafe fn tile_evex(token: Avx512VlVnniToken, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe { tile_evex_impl(token, t) }
}

#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
unsafe fn tile_evex_impl(token: Avx512VlVnniToken, t: &Tile<'_>) {
    // SAFETY: the caller's guarantee; avx512vnni and avx512vl are enabled here.
    unsafe {
        if t.b.per_column() {
            tile_with::<_, true>(token.avx2(), Evex, t)
        } else {
            tile_with::<_, false>(token.avx2(), Evex, t)
        }
    }
}

/// The tile around one encoding of `vpdpbusd`.
///
/// # Safety
/// As [`super::portable::tile`]; the CPU has what `D` needs.
#[inline(always)]
unsafe fn tile_with<D: Dpbusd, const PER_COLUMN: bool>(token: Avx2Token, d: D, t: &Tile<'_>) {
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
    assert!(b.scales.len() >= (p + 1) * b.panel_scales() && b.offsets.len() >= (p + 1) * kb * NR);
    // Rows past `rows` repeat the last real one; `finish` never stores them.
    let row = |r: usize| r0 + r.min(rows - 1);
    let a_rows: [*const u8; MR] = std::array::from_fn(|r| a.bytes[row(r) * a.kp..].as_ptr());
    let panel = b.data[p * kb * QBLOCK * NR..].as_ptr();
    // SAFETY: AVX2 and `d`'s instruction, which the caller's features cover;
    // every load is inside the panel, its offsets and scales, or a row's kp
    // bytes (asserted above); `finish` gets the caller's guarantee for C.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 1]; MR];
        for blk in 0..kb {
            let at = (p * kb + blk) * NR;
            let offsets = _mm256_loadu_si256(b.offsets.as_ptr().add(at).cast());
            let mut dots = [offsets; MR];
            for g in 0..GROUPS {
                let bv = _mm256_loadu_si256(panel.add((blk * GROUPS + g) * NR * GROUP).cast());
                for (r, dot) in dots.iter_mut().enumerate() {
                    let four = std::ptr::read_unaligned(
                        a_rows[r].add(blk * QBLOCK + g * GROUP).cast::<i32>(),
                    );
                    *dot = d.dp(*dot, _mm256_set1_epi32(four), bv);
                }
            }
            let sw = if PER_COLUMN {
                _mm256_setzero_ps()
            } else {
                _mm256_loadu_ps(b.scales.as_ptr().add(at))
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
            let sw = _mm256_loadu_ps(b.scales.as_ptr().add(p * NR));
            for acc_row in &mut acc {
                acc_row[0] = _mm256_mul_ps(acc_row[0], sw);
            }
        }
        if rows == MR && cols == NR {
            finish::<_, MR, 1, true>(token, acc, c, ldc, rows, cols, out)
        } else {
            finish::<_, MR, 1, false>(token, acc, c, ldc, rows, cols, out)
        }
    }
}
