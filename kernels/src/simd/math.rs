//! Vector transcendental functions, written once over [`Simd`].
//!
//! Accuracy (checked against f64 in `tests/ops.rs`): `exp` within ~2 ulp,
//! `erf` within 1.5e-7 absolute, `tanh` within ~2e-7 absolute.

use super::Simd;
use crate::Activation;

/// The lowest argument whose `2^n` stays normal: `ln(f32::MIN_POSITIVE)`.
const EXP_LOWEST: f32 = -87.336_55;

/// `x = n·ln2 + r` with `|r| <= ln2/2`, for `x` already clamped to the range
/// where `2^n` is a normal f32: returns `(n, r)`.
#[inline(always)]
fn exp_reduce<S: Simd>(s: S, x: S::V) -> (S::V, S::V) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| <= 128.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = s.round(s.mul(x, s.splat(LOG2E)));
    let r = s.mul_add(n, s.splat(-LN2_HI), x);
    (n, s.mul_add(n, s.splat(-LN2_LO), r))
}

/// `e^x`, lane-wise. Flushes to 0 below `-87.3` (so `exp(-inf) = 0`, as
/// softmax needs for masked scores) and saturates at `e^88`.
///
/// Cephes' `expf`: `x = n·ln2 + r` with `|r| <= ln2/2`, `e^r` by a degree-6
/// polynomial, `2^n` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    const HIGHEST: f32 = 88.0; // below ln(f32::MAX) - ln 2, so n <= 127
    let clamped = s.min(s.max(x, s.splat(EXP_LOWEST)), s.splat(HIGHEST));
    let (n, r) = exp_reduce(s, clamped);
    let mut p = s.splat(1.987_569_1e-4);
    p = s.mul_add(p, r, s.splat(1.398_2e-3));
    p = s.mul_add(p, r, s.splat(8.333_452e-3));
    p = s.mul_add(p, r, s.splat(4.166_579_6e-2));
    p = s.mul_add(p, r, s.splat(1.666_666_5e-1));
    p = s.mul_add(p, r, s.splat(0.5));
    let r2 = s.mul(r, r);
    let e_r = s.add(s.mul_add(p, r2, r), s.splat(1.0));
    let y = s.mul(e_r, s.pow2i(n));
    s.select_lt(x, s.splat(EXP_LOWEST), s.zero(), y)
}

/// `2^x` for `x <= 0`, as attention's softmax evaluates it (scores scaled
/// by `log2 e`, minus their max): `x = n + r` with `n = round(x)` and
/// `|r| <= 1/2` (the subtraction is exact), `2^r` by a degree-6 polynomial in
/// Horner form (coefficients fitted for relative error: within 8e-8 in f32,
/// ~1 ulp; checked against f64 below), `2^n` built in the exponent bits.
/// Two thirds of [`exp`]'s instructions: no `log2 e` multiply, no two-step
/// `ln 2` reduction, no upper clamp. Below `-126` it returns `2^-126`
/// (about `1.2e-38`) rather than 0, invisible beside a softmax sum of at
/// least 1.
#[inline(always)]
pub(crate) fn exp2_nonpositive<S: Simd>(s: S, x: S::V) -> S::V {
    let x = s.max(x, s.splat(-126.0));
    let n = s.round(x);
    let r = s.sub(x, n);
    // 1 + r·(c1 + r·(c2 + r·(c3 + r·(c4 + r·(c5 + r·c6)))))
    let mut p = s.splat(1.535_358_3e-4);
    p = s.mul_add(p, r, s.splat(1.339_896_7e-3));
    p = s.mul_add(p, r, s.splat(9.618_437e-3));
    p = s.mul_add(p, r, s.splat(5.550_332_4e-2));
    p = s.mul_add(p, r, s.splat(2.402_264_8e-1));
    p = s.mul_add(p, r, s.splat(6.931_472e-1));
    p = s.mul_add(p, r, s.splat(1.0));
    s.mul(p, s.pow2i(n))
}

/// The error function, lane-wise, within 1.5e-7 absolute: Abramowitz & Stegun
/// 7.1.26, the same form PyTorch's vectorised `erf` evaluates.
#[inline(always)]
pub(crate) fn erf<S: Simd>(s: S, x: S::V) -> S::V {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let ax = s.abs(x);
    let one = s.splat(1.0);
    let t = s.div(one, s.mul_add(s.splat(P), ax, one));
    let mut poly = s.mul_add(s.splat(A5), t, s.splat(A4));
    poly = s.mul_add(poly, t, s.splat(A3));
    poly = s.mul_add(poly, t, s.splat(A2));
    poly = s.mul_add(poly, t, s.splat(A1));
    poly = s.mul(poly, t);
    let e = exp(s, s.sub(s.zero(), s.mul(ax, ax)));
    let y = s.sub(one, s.mul(poly, e));
    s.copysign(y, x)
}

/// `tanh(x) = sign(x) · (1 - 2 / (e^{2|x|} + 1))`, lane-wise; within ~2e-7
/// absolute (the form loses relative accuracy near 0, where |tanh x| is tiny).
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let e = exp(s, s.mul(s.splat(2.0), s.abs(x)));
    let y = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    s.copysign(y, x)
}

/// `act(x)`, lane-wise, as [`crate::reference::activation`] defines each activation.
#[inline(always)]
pub(crate) fn activation<S: Simd>(s: S, act: Activation, x: S::V) -> S::V {
    match act {
        Activation::GeluErf => {
            // x/2 · (1 + erf(x/√2))
            let half_x = s.mul(s.splat(0.5), x);
            let e = erf(s, s.mul(x, s.splat(std::f32::consts::FRAC_1_SQRT_2)));
            s.mul_add(half_x, e, half_x)
        }
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            let half_x = s.mul(s.splat(0.5), x);
            let x3 = s.mul(s.mul(x, x), x);
            let inner = s.mul(
                s.splat(SQRT_2_OVER_PI),
                s.mul_add(s.splat(0.044_715), x3, x),
            );
            s.mul_add(half_x, tanh(s, inner), half_x)
        }
        Activation::Relu => s.max(x, s.zero()),
        Activation::Tanh => tanh(s, x),
    }
}

#[cfg(test)]
mod tests {
    use super::exp2_nonpositive;
    use crate::simd::portable::Portable;
    use crate::simd::Simd;

    #[test]
    fn exp2_nonpositive_within_2e7_relative() {
        let s = Portable;
        let lanes = Portable::LANES;
        let mut worst = 0.0f64;
        // Every 1/4096 from -126 to 0, points off that grid, and the clamp
        // region below.
        let xs: Vec<f32> = (0..=126 * 4096)
            .map(|i| -(i as f32) / 4096.0)
            .chain((0..10_000).map(|i| -(i as f32) * 0.012_345_7))
            .chain([-126.0001, -126.5, -149.0, -1e30, f32::NEG_INFINITY])
            .collect();
        for chunk in xs.chunks(lanes) {
            let mut buf = vec![0.0f32; lanes];
            buf[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: buf holds LANES floats.
            let y = unsafe { s.load(buf.as_ptr()) };
            let mut out = vec![0.0f32; lanes];
            // SAFETY: as above.
            unsafe { s.store(out.as_mut_ptr(), exp2_nonpositive(s, y)) };
            for (&x, &got) in chunk.iter().zip(&out) {
                let want = (x as f64).exp2();
                if x >= -126.0 {
                    let rel = ((got as f64 - want) / want).abs();
                    worst = worst.max(rel);
                    assert!(rel <= 2e-7, "exp2({x}) = {got}, want {want}");
                } else {
                    assert!((0.0..=1.2e-38).contains(&got), "exp2({x}) = {got}");
                }
            }
        }
        assert!(worst > 0.0, "the check compared nothing");
    }
}
