//! Row-wise layer normalisation.

use crate::simd::{simd_dispatch, Simd};

/// Sum of `x`, over four vector accumulators (which also makes it more
/// accurate than a sequential f32 sum: each accumulator sees a quarter).
#[inline(always)]
pub(crate) fn sum<S: Simd>(s: S, x: &[f32], f: impl Fn(S::V) -> S::V) -> f32 {
    let lanes = S::LANES;
    let mut acc = [s.zero(); 4];
    let mut blocks = x.chunks_exact(4 * lanes);
    for block in &mut blocks {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: the block holds 4·lanes floats.
            *acc = s.add(*acc, f(unsafe { s.load(block.as_ptr().add(i * lanes)) }));
        }
    }
    let mut rest = blocks.remainder().chunks(lanes);
    for (chunk, acc) in (&mut rest).zip(acc.iter_mut()) {
        // SAFETY: the chunk holds chunk.len() <= lanes floats.
        let v = f(unsafe { s.load_upto(chunk.as_ptr(), chunk.len()) });
        let v = if chunk.len() == lanes {
            v
        } else {
            // The lanes past a short chunk loaded as 0, but f(0) need not be 0
            // (a squared deviation is not): keep only the first len lanes.
            debug_assert!(lanes <= 16);
            let mut buf = [0.0f32; 16];
            // SAFETY: buf holds 16 >= lanes floats; we read back len < lanes.
            unsafe {
                s.store(buf.as_mut_ptr(), v);
                s.load_partial(buf.as_ptr(), chunk.len())
            }
        };
        *acc = s.add(*acc, v);
    }
    s.reduce_add(s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3])))
}

#[inline(always)]
fn layer_norm_generic<S: Simd>(
    s: S,
    x: &mut [f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let lanes = S::LANES;
    for row in x.chunks_exact_mut(width) {
        // Two passes, as PyTorch does: the mean first, then the variance
        // around it, which stays accurate when |mean| >> std.
        let mean = sum(s, row, |v| v) / width as f32;
        let mean_v = s.splat(mean);
        let var = sum(s, row, |v| {
            let d = s.sub(v, mean_v);
            s.mul(d, d)
        }) / width as f32;
        let inv = s.splat(1.0 / (var + eps).sqrt());
        for j in (0..width).step_by(lanes) {
            let n = width - j;
            // SAFETY: j < width, and min(n, lanes) floats from j are inside
            // the row, gamma and beta (all `width` long).
            unsafe {
                let v = s.load_upto(row.as_ptr().add(j), n);
                let g = s.load_upto(gamma.as_ptr().add(j), n);
                let b = s.load_upto(beta.as_ptr().add(j), n);
                let y = s.mul_add(s.mul(s.sub(v, mean_v), inv), g, b);
                s.store_upto(row.as_mut_ptr().add(j), n, y);
            }
        }
    }
}

simd_dispatch! {
    pub(crate) fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) = layer_norm_generic;
}
