//! The int8 tile on NEON: 4 rows x 8 columns, with `sdot` (FEAT_DotProd,
//! Armv8.2+) where the CPU has it, else widening multiplies.
//!
//! A group of B (4 K values of 8 columns) is two 16-byte vectors, each 4
//! columns x 4 bytes; a row's 4 bytes of A are broadcast to all four 32-bit
//! lanes. Then lane j of one step is `Σ_t b[j][t] · a[t]`, the group's dot
//! for column j:
//! - `sdot v.4s, b.16b, a.16b` does exactly that in one instruction (through
//!   `asm!`: its intrinsic is not stable yet);
//! - without it, `smull`/`smull2` give the 16 products as int16 (|x| <= 127,
//!   so no overflow), and two pairwise widening adds sum each column's four.
//!
//! Both are exact, so the tile matches [`super::portable::tile`] bit for
//! bit, as every int8 path must. Why 4 x 8: 8 int32 block sums and 8 f32 sums,
//! 2 vectors of B, 4 broadcasts of A and 2 of scales: 24 of 32 registers.

use std::arch::aarch64::*;

use super::{Tile, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::finish;
use crate::isa::{NeonDotToken, NeonToken};

/// Rows per tile.
pub(super) const MR: usize = 4;
/// Columns per tile and panel: two vectors of 4 int32 lanes.
pub(super) const NR: usize = 8;

/// How a group's dot products are formed.
trait GroupDot: Copy {
    /// `acc[j] + Σ_t b[4j + t] · a[4j + t]` for the 4 lanes j.
    ///
    /// # Safety
    /// The CPU has the features the implementation's token proves.
    unsafe fn dot(self, acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t;
}

/// `sdot`.
#[derive(Clone, Copy)]
struct Sdot;

impl GroupDot for Sdot {
    #[inline(always)]
    unsafe fn dot(self, mut acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
        // SAFETY: register-only arithmetic; the caller runs with `dotprod`
        // (the tile is compiled with it and a `NeonDotToken` proves it).
        unsafe {
            std::arch::asm!(
                "sdot {acc:v}.4s, {b:v}.16b, {a:v}.16b",
                acc = inout(vreg) acc,
                b = in(vreg) b,
                a = in(vreg) a,
                options(pure, nomem, nostack),
            );
        }
        acc
    }
}

/// `smull` + pairwise widening adds.
#[derive(Clone, Copy)]
struct Widening;

impl GroupDot for Widening {
    #[inline(always)]
    unsafe fn dot(self, acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
        // SAFETY: NEON arithmetic; every aarch64 CPU has it.
        unsafe {
            let lo = vpaddlq_s16(vmull_s8(vget_low_s8(b), vget_low_s8(a)));
            let hi = vpaddlq_s16(vmull_high_s8(b, a));
            vaddq_s32(acc, vpaddq_s32(lo, hi))
        }
    }
}

/// As [`super::portable::tile`], with `sdot`.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
pub(super) unsafe fn tile_dot(token: NeonDotToken, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe { tile_dot_impl(token, t) }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_dot_impl(token: NeonDotToken, t: &Tile<'_>) {
    // SAFETY: the caller's guarantee; `dotprod` is enabled here.
    unsafe {
        if t.b.per_column() {
            tile_with::<_, true>(token.neon(), Sdot, t)
        } else {
            tile_with::<_, false>(token.neon(), Sdot, t)
        }
    }
}

/// As [`super::portable::tile`], without `sdot`.
///
/// # Safety
/// As [`super::portable::tile`]; `t.b` was quantized for this kernel.
pub(super) unsafe fn tile(token: NeonToken, t: &Tile<'_>) {
    // SAFETY: the token proves the features; the rest is the caller's guarantee.
    unsafe { tile_impl(token, t) }
}

#[target_feature(enable = "neon")]
unsafe fn tile_impl(token: NeonToken, t: &Tile<'_>) {
    // SAFETY: the caller's guarantee.
    unsafe {
        if t.b.per_column() {
            tile_with::<_, true>(token, Widening, t)
        } else {
            tile_with::<_, false>(token, Widening, t)
        }
    }
}

/// The tile around a group dot.
///
/// # Safety
/// As [`super::portable::tile`]; the CPU has what `D` needs.
#[inline(always)]
unsafe fn tile_with<D: GroupDot, const PER_COLUMN: bool>(token: NeonToken, d: D, t: &Tile<'_>) {
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
    // SAFETY: NEON arithmetic the token proves; every load is inside the
    // panel or a row's kp bytes (asserted above); `finish` gets the caller's
    // guarantee for the tile of C and `out`.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 2]; MR];
        for blk in 0..kb {
            let mut dots = [[vdupq_n_s32(0); 2]; MR];
            for g in 0..GROUPS {
                let bp = panel.add((blk * GROUPS + g) * NR * GROUP);
                let (b0, b1) = (vld1q_s8(bp), vld1q_s8(bp.add(16)));
                for (r, dots_row) in dots.iter_mut().enumerate() {
                    let four = std::ptr::read_unaligned(
                        a_rows[r].add(blk * QBLOCK + g * GROUP).cast::<i32>(),
                    );
                    let av = vreinterpretq_s8_s32(vdupq_n_s32(four));
                    dots_row[0] = d.dot(dots_row[0], b0, av);
                    dots_row[1] = d.dot(dots_row[1], b1, av);
                }
            }
            let (s0, s1) = if PER_COLUMN {
                (vdupq_n_f32(0.0), vdupq_n_f32(0.0))
            } else {
                let s = b.scales.as_ptr().add((p * kb + blk) * NR);
                (vld1q_f32(s), vld1q_f32(s.add(4)))
            };
            for (r, (acc_row, dots_row)) in acc.iter_mut().zip(&dots).enumerate() {
                let sa = vdupq_n_f32(a.scales[row(r) * kb + blk]);
                let (p0, p1) = if PER_COLUMN {
                    (sa, sa)
                } else {
                    (vmulq_f32(s0, sa), vmulq_f32(s1, sa))
                };
                acc_row[0] = vfmaq_f32(acc_row[0], vcvtq_f32_s32(dots_row[0]), p0);
                acc_row[1] = vfmaq_f32(acc_row[1], vcvtq_f32_s32(dots_row[1]), p1);
            }
        }
        if PER_COLUMN {
            let s = b.scales.as_ptr().add(p * NR);
            let (s0, s1) = (vld1q_f32(s), vld1q_f32(s.add(4)));
            for acc_row in &mut acc {
                acc_row[0] = vmulq_f32(acc_row[0], s0);
                acc_row[1] = vmulq_f32(acc_row[1], s1);
            }
        }
        if rows == MR && cols == NR {
            finish::<_, MR, 2, true>(token, acc, c, ldc, rows, cols, out)
        } else {
            finish::<_, MR, 2, false>(token, acc, c, ldc, rows, cols, out)
        }
    }
}
