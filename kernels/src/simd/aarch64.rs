//! [`Simd`] for NEON (`float32x4_t`, 4 lanes).

use std::arch::aarch64::*;

use super::Simd;
use crate::isa::NeonToken;

/// Runs an intrinsic whose features the token `self` proves.
macro_rules! proven {
    ($e:expr) => {{
        // SAFETY: `self` is a `NeonToken`, which exists only on CPUs with NEON.
        unsafe { $e }
    }};
}

// SAFETY: a `NeonToken` exists only when the CPU has NEON, the only feature
// these methods use.
unsafe impl Simd for NeonToken {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        proven!(vdupq_n_f32(x))
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vaddq_f32(a, b))
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vsubq_f32(a, b))
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vmulq_f32(a, b))
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vdivq_f32(a, b))
    }
    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        proven!(vfmaq_f32(c, a, b))
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vmaxq_f32(a, b))
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        proven!(vminq_f32(a, b))
    }
    #[inline(always)]
    fn abs(self, a: float32x4_t) -> float32x4_t {
        proven!(vabsq_f32(a))
    }
    #[inline(always)]
    fn copysign(self, mag: float32x4_t, sign: float32x4_t) -> float32x4_t {
        proven!(vbslq_f32(vdupq_n_u32(0x8000_0000), sign, mag))
    }
    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        proven!(vrndnq_f32(a))
    }
    #[inline(always)]
    fn pow2i(self, n: float32x4_t) -> float32x4_t {
        proven!(vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(
            vcvtq_s32_f32(n),
            vdupq_n_s32(127)
        ))))
    }
    #[inline(always)]
    fn select_lt(
        self,
        a: float32x4_t,
        b: float32x4_t,
        t: float32x4_t,
        f: float32x4_t,
    ) -> float32x4_t {
        proven!(vbslq_f32(vcltq_f32(a, b), t, f))
    }
    #[inline(always)]
    fn reduce_add(self, a: float32x4_t) -> f32 {
        proven!(vaddvq_f32(a))
    }
    #[inline(always)]
    fn reduce_max(self, a: float32x4_t) -> f32 {
        proven!(vmaxvq_f32(a))
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        // SAFETY: the token proves NEON; the caller guarantees 4 readable floats.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        // SAFETY: the token proves NEON; the caller guarantees 4 writable floats.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> float32x4_t {
        // NEON has no masked loads: go through a zeroed stack copy.
        let mut lanes = [0.0f32; 4];
        // SAFETY: the caller guarantees n < 4 readable floats; the token proves NEON.
        unsafe {
            std::ptr::copy_nonoverlapping(p, lanes.as_mut_ptr(), n);
            vld1q_f32(lanes.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: float32x4_t) {
        let mut lanes = [0.0f32; 4];
        // SAFETY: the caller guarantees n < 4 writable floats; the token proves NEON.
        unsafe {
            vst1q_f32(lanes.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, n);
        }
    }
}
