//! The int8 tile in plain Rust: the definition every SIMD path must match
//! bit for bit (int32 block dots, then `fma(dot, sa·sw, acc)` block by block;
//! per-column weight scales: `fma(dot, sa, acc)`, then `acc·sw` at the end).

use super::{Tile, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::finish;
use crate::simd::portable::Portable;

/// Rows per tile.
pub(super) const MR: usize = 4;
/// Columns per tile and panel: two portable vectors of 8.
pub(super) const NR: usize = 16;

/// Computes `t`.
///
/// # Safety
/// `t.c[r·ldc + j]` is writable for `r < t.rows <= MR`, `j < t.cols <= NR`,
/// and `t.out`'s pointers are valid for that tile, as [`finish`] requires.
pub(super) unsafe fn tile(t: &Tile<'_>) {
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
    let per_column = b.per_column();
    let mut acc = [[[0.0f32; 8]; NR / 8]; MR];
    for (r, acc_row) in acc.iter_mut().enumerate().take(rows) {
        let qa = &a.bytes[(r0 + r) * a.kp..(r0 + r + 1) * a.kp];
        let sa = &a.scales[(r0 + r) * kb..(r0 + r + 1) * kb];
        for j in 0..cols {
            let mut f = 0.0f32;
            for (blk, &sa) in sa.iter().enumerate() {
                let mut dot = 0i32;
                for g in 0..GROUPS {
                    let base = (((p * kb + blk) * GROUPS + g) * NR + j) * GROUP;
                    for t in 0..GROUP {
                        let x = qa[blk * QBLOCK + g * GROUP + t] as i8 as i32;
                        dot += x * b.data[base + t] as i32;
                    }
                }
                let prod = if per_column {
                    sa
                } else {
                    sa * b.scales[(p * kb + blk) * NR + j]
                };
                f = (dot as f32).mul_add(prod, f);
            }
            if per_column {
                f *= b.scales[p * NR + j];
            }
            acc_row[j / 8][j % 8] = f;
        }
    }
    // SAFETY: the caller's guarantee.
    unsafe { finish::<Portable, MR, { NR / 8 }, false>(Portable, acc, c, ldc, rows, cols, out) }
}
