//! Numerically stable softmax over one row.

use super::layer_norm::sum;
use super::map_in_place;
use crate::simd::{math, simd_dispatch, Simd};

#[inline(always)]
fn softmax_generic<S: Simd>(s: S, row: &mut [f32]) {
    let lanes = S::LANES;
    let mut chunks = row.chunks_exact(lanes);
    let mut max_v = s.splat(f32::NEG_INFINITY);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds `lanes` floats.
        max_v = s.max(max_v, unsafe { s.load(chunk.as_ptr()) });
    }
    // The tail in scalar: a partial load's zero lanes would raise the max.
    let max = chunks
        .remainder()
        .iter()
        .fold(s.reduce_max(max_v), |m, &x| m.max(x));
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
