//! Vector transcendental functions, written once over [`Simd`].
//!
//! Accuracy (checked against f64 in `tests/ops.rs`): `exp` within ~2 ulp,
//! `erf` within 1.5e-7 absolute, `tanh` within ~2e-7 absolute.

use super::Simd;
use crate::Activation;

/// `e^x`, lane-wise. Flushes to 0 below `-87.3` (so `exp(-inf) = 0`, as
/// softmax needs for masked scores) and saturates at `e^88`.
///
/// Cephes' `expf`: `x = n·ln2 + r` with `|r| <= ln2/2`, `e^r` by a degree-6
/// polynomial, `2^n` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| <= 128.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LOWEST: f32 = -87.336_55; // ln(f32::MIN_POSITIVE): 2^n stays normal
    const HIGHEST: f32 = 88.0; // below ln(f32::MAX) - ln 2, so n <= 127
    let clamped = s.min(s.max(x, s.splat(LOWEST)), s.splat(HIGHEST));
    let n = s.round(s.mul(clamped, s.splat(LOG2E)));
    let r = s.mul_add(n, s.splat(-LN2_HI), clamped);
    let r = s.mul_add(n, s.splat(-LN2_LO), r);
    let mut p = s.splat(1.987_569_1e-4);
    p = s.mul_add(p, r, s.splat(1.398_2e-3));
    p = s.mul_add(p, r, s.splat(8.333_452e-3));
    p = s.mul_add(p, r, s.splat(4.166_579_6e-2));
    p = s.mul_add(p, r, s.splat(1.666_666_5e-1));
    p = s.mul_add(p, r, s.splat(0.5));
    let r2 = s.mul(r, r);
    let e_r = s.add(s.mul_add(p, r2, r), s.splat(1.0));
    let y = s.mul(e_r, s.pow2i(n));
    s.select_lt(x, s.splat(LOWEST), s.zero(), y)
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
