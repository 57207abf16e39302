//! Numerically stable softmax over one row, whole or (for flash-style
//! attention) one block of it at a time.

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
/// FlashAttention). `max` and `sum` carry the row's running maximum and sum
/// of `exp(x - max)` over the blocks before this one (`-inf` and 0 at the
/// start). Replaces `block` by `exp(block - new_max)`, updates both, and
/// returns `exp(old_max - new_max)`: the factor by which everything computed
/// from earlier blocks (their share of the sum, of `P·V`) must be scaled.
/// After the last block, `block / sum` is the softmax.
#[inline(always)]
fn softmax_block_generic<S: Simd>(s: S, block: &mut [f32], max: &mut f32, sum: &mut f32) -> f32 {
    let new_max = max.max(row_max(s, block));
    if new_max == f32::NEG_INFINITY {
        // Everything so far masked: contributes nothing.
        block.fill(0.0);
        return 1.0;
    }
    // exp(-inf) = 0: the first block discards the (empty) past.
    let correction = (*max - new_max).exp();
    let max_v = s.splat(new_max);
    map_in_place!(s, block, |v| math::exp(s, s.sub(v, max_v)));
    *sum = *sum * correction + self::sum(s, block, |v| v);
    *max = new_max;
    correction
}

simd_dispatch! {
    pub(crate) fn softmax_block(block: &mut [f32], max: &mut f32, sum: &mut f32) -> f32 = softmax_block_generic;
}
