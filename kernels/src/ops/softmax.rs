//! Numerically stable softmax over one row, and (for flash-style attention)
//! one block at a time down the columns of attention's transposed scores.

use super::layer_norm::sum;
use super::map_in_place;
use crate::simd::{math, simd_dispatch, Simd};

/// The largest entry of `row` (`-inf` for an empty row).
#[inline(always)]
fn row_max<S: Simd>(s: S, row: &[f32]) -> f32 {
    let mut chunks = row.chunks_exact(S::LANES);
    let mut max_v = s.splat(f32::NEG_INFINITY);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds `lanes` floats.
        max_v = s.max(max_v, unsafe { s.load(chunk.as_ptr()) });
    }
    // The tail in scalar: a partial load's zero lanes would raise the max.
    chunks
        .remainder()
        .iter()
        .fold(s.reduce_max(max_v), |m, &x| m.max(x))
}

#[inline(always)]
fn softmax_generic<S: Simd>(s: S, row: &mut [f32]) {
    let max = row_max(s, row);
    if max == f32::NEG_INFINITY {
        // Every entry masked: leave zeros rather than NaN.
        row.fill(0.0);
        return;
    }
    let max_v = s.splat(max);
    map_in_place!(s, row, |v| math::exp(s, s.sub(v, max_v)));
    let inv = s.splat(1.0 / sum(s, row, |v| v));
    map_in_place!(s, row, |v| s.mul(v, inv));
}

simd_dispatch! {
    pub(crate) fn softmax(row: &mut [f32]) = softmax_generic;
}

/// One block of an online softmax (Milakov & Gimelshein 2018; the core of
/// FlashAttention), for every column of `block` at once, in base 2: the
/// scores come scaled by `log2 e` (folded into attention's `1/√d`), so
/// `exp(x - max)` of the natural scores is `2^(x - max)` of these. `block` is
/// `rows x width`, row-major (row stride `width`), and column `j` holds one
/// query's scores against this block's `rows` keys. `max` and `sum` carry
/// each column's running maximum and sum of `2^(x - max)` over the blocks
/// before this one (`-inf` and 0 at the start); after the last block,
/// `block / sum` is the softmax. Replaces the block by `2^(block - new_max)`,
/// updates both, and multiplies the first `out_rows` rows of `out` (`width`
/// columns, row stride `ld_out`), the output accumulated from earlier
/// blocks, by each column's `2^(old_max - new_max)`.
///
/// Down columns, every step is a whole-vector operation: no per-row call,
/// no horizontal reduction. The scores are finite (true lengths, no mask),
/// so `x - max <= 0` and [`math::exp2_nonpositive`] serves.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn softmax_columns_generic<S: Simd>(
    s: S,
    block: &mut [f32],
    rows: usize,
    width: usize,
    max: &mut [f32],
    sum: &mut [f32],
    out: &mut [f32],
    ld_out: usize,
    out_rows: usize,
) {
    assert!(block.len() >= rows * width && max.len() >= width && sum.len() >= width);
    assert!(out_rows == 0 || out.len() >= (out_rows - 1) * ld_out + width);
    let lanes = S::LANES;
    for c in (0..width).step_by(lanes) {
        let n = width - c;
        // SAFETY: in every access below, row r < rows of `block` and columns
        // c..c + min(n, lanes) <= width are inside the asserted lengths, as
        // are rows r < out_rows of `out` and the same columns of max and sum.
        unsafe {
            let old_max = s.load_upto(max.as_ptr().add(c), n);
            let mut new_max = old_max;
            for r in 0..rows {
                new_max = s.max(new_max, s.load_upto(block.as_ptr().add(r * width + c), n));
            }
            // 2^-inf = 0: the first block discards the (empty) past.
            let correction = math::exp2_nonpositive(s, s.sub(old_max, new_max));
            let mut block_sum = s.zero();
            for r in 0..rows {
                let p = block.as_mut_ptr().add(r * width + c);
                let e = math::exp2_nonpositive(s, s.sub(s.load_upto(p, n), new_max));
                s.store_upto(p, n, e);
                block_sum = s.add(block_sum, e);
            }
            let old_sum = s.load_upto(sum.as_ptr().add(c), n);
            s.store_upto(
                sum.as_mut_ptr().add(c),
                n,
                s.mul_add(old_sum, correction, block_sum),
            );
            s.store_upto(max.as_mut_ptr().add(c), n, new_max);
            for r in 0..out_rows {
                let p = out.as_mut_ptr().add(r * ld_out + c);
                s.store_upto(p, n, s.mul(s.load_upto(p, n), correction));
            }
        }
    }
}

simd_dispatch! {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn softmax_columns(
        block: &mut [f32],
        rows: usize,
        width: usize,
        max: &mut [f32],
        sum: &mut [f32],
        out: &mut [f32],
        ld_out: usize,
        out_rows: usize,
    ) = softmax_columns_generic;
}
