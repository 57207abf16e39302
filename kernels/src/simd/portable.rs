//! [`Simd`] in plain Rust: 8-lane arrays written so LLVM vectorises them with
//! whatever the build targets (SSE2 on a default x86-64 build), correct anywhere.

use super::Simd;

/// The portable "ISA": always available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Portable;

/// Lanes per portable vector: one AVX register, or two SSE/NEON registers.
const LANES: usize = 8;

type V = [f32; LANES];

#[inline(always)]
fn map(a: V, f: impl Fn(f32) -> f32) -> V {
    let mut out = a;
    for x in &mut out {
        *x = f(*x);
    }
    out
}

#[inline(always)]
fn zip(a: V, b: V, f: impl Fn(f32, f32) -> f32) -> V {
    let mut out = a;
    for (x, y) in out.iter_mut().zip(b) {
        *x = f(*x, y);
    }
    out
}

// SAFETY: plain Rust; every CPU runs it.
unsafe impl Simd for Portable {
    type V = V;
    const LANES: usize = LANES;

    #[inline(always)]
    fn splat(self, x: f32) -> V {
        [x; LANES]
    }
    #[inline(always)]
    fn add(self, a: V, b: V) -> V {
        zip(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, a: V, b: V) -> V {
        zip(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, a: V, b: V) -> V {
        zip(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn div(self, a: V, b: V) -> V {
        zip(a, b, |x, y| x / y)
    }
    #[inline(always)]
    fn mul_add(self, a: V, b: V, c: V) -> V {
        // Unfused: `f32::mul_add` is a libm call on CPUs without FMA.
        let mut out = c;
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o += x * y;
        }
        out
    }
    #[inline(always)]
    fn max(self, a: V, b: V) -> V {
        zip(a, b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    fn min(self, a: V, b: V) -> V {
        zip(a, b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    fn abs(self, a: V) -> V {
        map(a, f32::abs)
    }
    #[inline(always)]
    fn copysign(self, mag: V, sign: V) -> V {
        zip(mag, sign, f32::copysign)
    }
    #[inline(always)]
    fn round(self, a: V) -> V {
        // Adding and subtracting 1.5·2^23 rounds |x| < 2^22 to an integer in
        // the current (nearest-even) mode without a libm call.
        const MAGIC: f32 = 12_582_912.0;
        map(a, |x| (x + MAGIC) - MAGIC)
    }
    #[inline(always)]
    fn pow2i(self, n: V) -> V {
        map(n, |n| f32::from_bits(((n as i32 + 127) << 23) as u32))
    }
    #[inline(always)]
    fn select_lt(self, a: V, b: V, t: V, f: V) -> V {
        let mut out = f;
        for i in 0..LANES {
            if a[i] < b[i] {
                out[i] = t[i];
            }
        }
        out
    }
    #[inline(always)]
    fn reduce_add(self, a: V) -> f32 {
        // Pairwise, matching the SIMD ISAs' tree order closely.
        let q = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
        (q[0] + q[2]) + (q[1] + q[3])
    }
    #[inline(always)]
    fn reduce_max(self, a: V) -> f32 {
        a.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> V {
        // SAFETY: the caller guarantees LANES readable floats.
        unsafe { p.cast::<V>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: V) {
        // SAFETY: the caller guarantees LANES writable floats.
        unsafe { p.cast::<V>().write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> V {
        let mut out = [0.0; LANES];
        // SAFETY: the caller guarantees n < LANES readable floats.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), n) };
        out
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: V) {
        // SAFETY: the caller guarantees n < LANES writable floats.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), p, n) };
    }
}
