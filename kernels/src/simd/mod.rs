//! One vector trait, implemented per ISA; every kernel is written once over it.
//!
//! A kernel is an `#[inline(always)]` generic function over [`Simd`]. The
//! [`simd_dispatch!`] macro instantiates it inside one `#[target_feature]`
//! function per ISA, so the intrinsics inline into code compiled for that ISA,
//! and picks the instance from the [`Backend`](crate::Backend) a
//! [`Kernels`](crate::Kernels) holds.

pub(crate) mod math;
pub(crate) mod portable;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// A vector of `LANES` f32s and the operations the kernels need.
///
/// Implementors are the ISA tokens of [`crate::isa`] (plus [`portable::Portable`]).
/// A method may only be called on a value of the type, and a value exists only
/// when the CPU has the instructions, which is why the methods are safe.
/// They are `#[inline(always)]`: called from a function compiled with the
/// ISA's `#[target_feature]`, each becomes one or two instructions.
///
/// # Safety
///
/// An implementor must only be constructible on CPUs that support every
/// instruction its methods use.
pub(crate) unsafe trait Simd: Copy + Send + Sync + 'static {
    /// The register type.
    type V: Copy;
    /// f32 lanes in [`Simd::V`].
    const LANES: usize;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused where the ISA has FMA.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise minimum.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|`.
    fn abs(self, a: Self::V) -> Self::V;
    /// `|mag|` with the sign of `sign`.
    fn copysign(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// `a` rounded to the nearest integer (ties to even). `|a| < 2^22`.
    fn round(self, a: Self::V) -> Self::V;
    /// `2^n` for integral `n` in `[-126, 127]`, built in the exponent bits.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// Lane-wise `if a < b { t } else { f }`.
    fn select_lt(self, a: Self::V, b: Self::V, t: Self::V, f: Self::V) -> Self::V;
    /// Sum of the lanes.
    fn reduce_add(self, a: Self::V) -> f32;
    /// Maximum of the lanes.
    fn reduce_max(self, a: Self::V) -> f32;

    /// Loads `LANES` floats.
    ///
    /// # Safety
    /// `p..p + LANES` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores `LANES` floats.
    ///
    /// # Safety
    /// `p..p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Loads the first `n < LANES` lanes (masked where the ISA can); the rest are 0.
    ///
    /// # Safety
    /// `p..p + n` must be readable; nothing past it is touched.
    unsafe fn load_partial(self, p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n < LANES` lanes (masked where the ISA can).
    ///
    /// # Safety
    /// `p..p + n` must be writable; nothing past it is touched.
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: Self::V);

    /// Copies the `LANES x LANES` block at `src` (row stride `lds`) to `dst`
    /// (row stride `ldd`) transposed: `dst[j·ldd + i] = src[i·lds + j]`.
    /// The default moves one float at a time; an ISA with lane shuffles
    /// overrides it with a register transpose.
    ///
    /// # Safety
    /// Both blocks are valid (`src` for reads, `dst` for writes) and do not overlap.
    #[inline(always)]
    unsafe fn transpose_block(self, src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        for i in 0..Self::LANES {
            for j in 0..Self::LANES {
                // SAFETY: i, j < LANES: inside both blocks (the caller's guarantee).
                unsafe { *dst.add(j * ldd + i) = *src.add(i * lds + j) };
            }
        }
    }

    /// Hints that the cache line holding `p` will be read soon. `p` need not
    /// be valid: a prefetch never faults. The default does nothing.
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        let _ = p;
    }

    /// Every lane 0.
    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }

    /// Loads `min(n, LANES)` lanes: a full load when `n >= LANES`.
    ///
    /// # Safety
    /// `p..p + min(n, LANES)` must be readable.
    #[inline(always)]
    unsafe fn load_upto(self, p: *const f32, n: usize) -> Self::V {
        if n >= Self::LANES {
            // SAFETY: the caller guarantees LANES readable floats.
            unsafe { self.load(p) }
        } else {
            // SAFETY: the caller guarantees n readable floats.
            unsafe { self.load_partial(p, n) }
        }
    }

    /// Stores `min(n, LANES)` lanes: a full store when `n >= LANES`.
    ///
    /// # Safety
    /// `p..p + min(n, LANES)` must be writable.
    #[inline(always)]
    unsafe fn store_upto(self, p: *mut f32, n: usize, v: Self::V) {
        if n >= Self::LANES {
            // SAFETY: the caller guarantees LANES writable floats.
            unsafe { self.store(p, v) }
        } else {
            // SAFETY: the caller guarantees n writable floats.
            unsafe { self.store_partial(p, n, v) }
        }
    }
}

/// Defines `fn $name(backend: Backend, args...)` that runs the generic
/// `$generic::<S: Simd>(s, args...)` compiled for the backend's ISA.
///
/// Each arm wraps the generic function in a `#[target_feature]` function so
/// the `#[inline(always)]` vector methods inline into code built for that ISA;
/// the token in the backend is the proof that calling it is sound. An
/// `unsafe fn` dispatches to an `unsafe` generic function and passes its
/// caller's obligations on.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $generic:ident;) => {
        $crate::simd::simd_dispatch!(@ [] $(#[$meta])* $vis $name($($arg: $ty),*) $(-> $ret)? = $generic);
    };
    ($(#[$meta:meta])* $vis:vis unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $generic:ident;) => {
        $crate::simd::simd_dispatch!(@ [unsafe] $(#[$meta])* $vis $name($($arg: $ty),*) $(-> $ret)? = $generic);
    };
    (@ [$($unsafe:tt)?] $(#[$meta:meta])* $vis:vis $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $generic:ident) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis $($unsafe)? fn $name(backend: $crate::Backend, $($arg: $ty),*) $(-> $ret)? {
            match backend {
                #[cfg(target_arch = "x86_64")]
                $crate::Backend::Avx512(token) => {
                    #[target_feature(enable = "avx512f,avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    $($unsafe)? fn avx512(token: $crate::isa::Avx512Token, $($arg: $ty),*) $(-> $ret)? {
                        // SAFETY (unsafe fn): the caller took on the generic function's contract.
                        $($unsafe)? { $generic(token, $($arg),*) }
                    }
                    // SAFETY: the token proves this CPU has avx512f, avx2 and fma.
                    unsafe { avx512(token, $($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                $crate::Backend::Avx2(token) => {
                    #[target_feature(enable = "avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    $($unsafe)? fn avx2(token: $crate::isa::Avx2Token, $($arg: $ty),*) $(-> $ret)? {
                        // SAFETY (unsafe fn): as above.
                        $($unsafe)? { $generic(token, $($arg),*) }
                    }
                    // SAFETY: the token proves this CPU has avx2 and fma.
                    unsafe { avx2(token, $($arg),*) }
                }
                #[cfg(target_arch = "aarch64")]
                $crate::Backend::Neon(token) => {
                    #[target_feature(enable = "neon")]
                    #[allow(clippy::too_many_arguments)]
                    $($unsafe)? fn neon(token: $crate::isa::NeonToken, $($arg: $ty),*) $(-> $ret)? {
                        // SAFETY (unsafe fn): as above.
                        $($unsafe)? { $generic(token, $($arg),*) }
                    }
                    // SAFETY: the token proves this CPU has neon.
                    unsafe { neon(token, $($arg),*) }
                }
                // SAFETY (unsafe fn): as above.
                $crate::Backend::Portable => $($unsafe)? { $generic($crate::simd::portable::Portable, $($arg),*) },
            }
        }
    };
}
pub(crate) use simd_dispatch;

/// `S::LANES`, for code (macros) that has a value of `S` but cannot name it.
#[inline(always)]
pub(crate) fn lanes_of<S: Simd>(_: S) -> usize {
    S::LANES
}

#[cfg(test)]
mod tests {
    use super::Simd;

    /// `transpose_block` of one ISA against the definition, between padded
    /// row strides.
    fn check_transpose<S: Simd>(s: S) {
        let l = S::LANES;
        let (lds, ldd) = (l + 3, l + 5);
        let src: Vec<f32> = (0..l * lds).map(|i| i as f32).collect();
        let mut dst = vec![-1.0f32; l * ldd];
        // SAFETY: both buffers hold LANES rows at their strides.
        unsafe { s.transpose_block(src.as_ptr(), lds, dst.as_mut_ptr(), ldd) };
        for i in 0..l {
            for j in 0..ldd {
                let want = if j < l { src[j * lds + i] } else { -1.0 };
                assert_eq!(dst[i * ldd + j], want, "dst[{i}][{j}]");
            }
        }
    }

    #[test]
    fn transpose_block_every_isa() {
        check_transpose(super::portable::Portable);
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(token) = crate::isa::Avx2Token::detect() {
                check_transpose(token);
            }
            if let Some(token) = crate::isa::Avx512Token::detect() {
                check_transpose(token);
            }
        }
        #[cfg(target_arch = "aarch64")]
        if let Some(token) = crate::isa::NeonToken::detect() {
            check_transpose(token);
        }
    }
}
