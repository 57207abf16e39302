//! The int8 tile in plain Rust: the definition every SIMD path must match
//! bit for bit (int32 block dots, then `fma(dot, sa·sw, acc)` block by block).

use super::{QuantizedMatrix, Rows, GROUP, GROUPS, QBLOCK};
use crate::gemm::kernel::{finish, TileOut};
use crate::simd::portable::Portable;

/// Rows per tile.
pub(super) const MR: usize = 4;
/// Columns per tile and panel: two portable vectors of 8.
pub(super) const NR: usize = 16;

/// `C[rows, cols] = out(A·B)` for rows `r0..r0 + rows` of `a` and panel `p` of `b`.
///
/// # Safety
/// `c[r·ldc + j]` is writable for `r < rows <= MR`, `j < cols <= NR`, and
/// `out`'s pointers are valid for that tile, as [`finish`] requires.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    a: &Rows<'_>,
    r0: usize,
    rows: usize,
    b: &QuantizedMatrix,
    p: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    out: &TileOut,
) {
    let kb = a.kb;
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
                let prod = sa * b.scales[(p * kb + blk) * NR + j];
                f = (dot as f32).mul_add(prod, f);
            }
            acc_row[j / 8][j % 8] = f;
        }
    }
    // SAFETY: the caller's guarantee.
    unsafe { finish::<Portable, MR, { NR / 8 }, false>(Portable, &acc, c, ldc, rows, cols, out) }
}
