//! [`Simd`] for AVX2 + FMA (`__m256`, 8 lanes) and AVX-512F (`__m512`, 16 lanes).

use std::arch::x86_64::*;

use super::Simd;
use crate::isa::{Avx2Token, Avx512Token};

/// Runs an intrinsic whose features the token `self` proves.
macro_rules! proven {
    ($e:expr) => {{
        // SAFETY: `self` is an ISA token, which exists only on CPUs that have
        // the intrinsic's features (see `crate::isa`).
        unsafe { $e }
    }};
}

/// The 8 x 8 transpose of `rows` in registers: lane `i` of column `c` is
/// lane `c` of row `i`. Shared by [`Simd::transpose_block`] and the AVX2
/// A packer. Written out rather than with array closures, which are
/// compiled without the caller's target features.
#[inline(always)]
pub(crate) fn transpose8(token: Avx2Token, rows: [__m256; 8]) -> [__m256; 8] {
    let _ = token;
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    // SAFETY: the token proves AVX.
    unsafe {
        // Lane pairs: t0 = r00 r10 r01 r11 | r04 r14 r05 r15, ...
        let t0 = _mm256_unpacklo_ps(r0, r1);
        let t1 = _mm256_unpackhi_ps(r0, r1);
        let t2 = _mm256_unpacklo_ps(r2, r3);
        let t3 = _mm256_unpackhi_ps(r2, r3);
        let t4 = _mm256_unpacklo_ps(r4, r5);
        let t5 = _mm256_unpackhi_ps(r4, r5);
        let t6 = _mm256_unpacklo_ps(r6, r7);
        let t7 = _mm256_unpackhi_ps(r6, r7);
        // Quads: u_c holds column c of rows 0..4 in its low half and column
        // c + 4 in its high half; v_c the same for rows 4..8.
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let v0 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let v1 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let v2 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let v3 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        // Halves.
        [
            _mm256_permute2f128_ps::<0x20>(u0, v0),
            _mm256_permute2f128_ps::<0x20>(u1, v1),
            _mm256_permute2f128_ps::<0x20>(u2, v2),
            _mm256_permute2f128_ps::<0x20>(u3, v3),
            _mm256_permute2f128_ps::<0x31>(u0, v0),
            _mm256_permute2f128_ps::<0x31>(u1, v1),
            _mm256_permute2f128_ps::<0x31>(u2, v2),
            _mm256_permute2f128_ps::<0x31>(u3, v3),
        ]
    }
}

// SAFETY: an `Avx2Token` exists only when the CPU has AVX2 and FMA, the only
// features these methods use.
unsafe impl Simd for Avx2Token {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        proven!(_mm256_set1_ps(x))
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_mul_ps(a, b))
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_div_ps(a, b))
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        proven!(_mm256_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_max_ps(a, b))
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        proven!(_mm256_min_ps(a, b))
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        proven!(_mm256_andnot_ps(_mm256_set1_ps(-0.0), a))
    }
    #[inline(always)]
    fn copysign(self, mag: __m256, sign: __m256) -> __m256 {
        let sign_bit = self.splat(-0.0);
        proven!(_mm256_or_ps(
            _mm256_andnot_ps(sign_bit, mag),
            _mm256_and_ps(sign_bit, sign)
        ))
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        proven!(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn pow2i(self, n: __m256) -> __m256 {
        proven!(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(
            _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127))
        )))
    }
    #[inline(always)]
    fn select_lt(self, a: __m256, b: __m256, t: __m256, f: __m256) -> __m256 {
        proven!(_mm256_blendv_ps(f, t, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)))
    }
    #[inline(always)]
    fn reduce_add(self, a: __m256) -> f32 {
        proven!({
            let x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            let x = _mm_add_ss(x, _mm_movehdup_ps(x));
            _mm_cvtss_f32(x)
        })
    }
    #[inline(always)]
    fn reduce_max(self, a: __m256) -> f32 {
        proven!({
            let x = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
            let x = _mm_max_ss(x, _mm_movehdup_ps(x));
            _mm_cvtss_f32(x)
        })
    }

    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        proven!(_mm_prefetch::<_MM_HINT_T0>(p.cast()))
    }

    #[inline(always)]
    unsafe fn transpose_block(self, src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        // SAFETY: the token proves AVX; the caller guarantees both 8 x 8 blocks.
        unsafe {
            let rows = [
                _mm256_loadu_ps(src),
                _mm256_loadu_ps(src.add(lds)),
                _mm256_loadu_ps(src.add(2 * lds)),
                _mm256_loadu_ps(src.add(3 * lds)),
                _mm256_loadu_ps(src.add(4 * lds)),
                _mm256_loadu_ps(src.add(5 * lds)),
                _mm256_loadu_ps(src.add(6 * lds)),
                _mm256_loadu_ps(src.add(7 * lds)),
            ];
            for (c, column) in transpose8(self, rows).into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(c * ldd), column);
            }
        }
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the token proves AVX; the caller guarantees 8 readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: the token proves AVX; the caller guarantees 8 writable floats.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m256 {
        // SAFETY: the token proves AVX2; vmaskmovps reads only the lanes whose
        // mask is set (the first n), which the caller guarantees readable.
        unsafe { _mm256_maskload_ps(p, avx2_mask(n)) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: __m256) {
        // SAFETY: as in `load_partial`: only the first n lanes are written.
        unsafe { _mm256_maskstore_ps(p, avx2_mask(n), v) }
    }
}

/// A vmaskmovps mask selecting lanes `0..n`.
#[inline(always)]
fn avx2_mask(n: usize) -> __m256i {
    // SAFETY: only called from `Avx2Token` methods, which prove AVX2.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

// SAFETY: an `Avx512Token` exists only when the CPU has AVX-512F (and AVX2,
// FMA); these methods use AVX-512F only.
unsafe impl Simd for Avx512Token {
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        proven!(_mm512_set1_ps(x))
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_mul_ps(a, b))
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_div_ps(a, b))
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        proven!(_mm512_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_max_ps(a, b))
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        proven!(_mm512_min_ps(a, b))
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        proven!(_mm512_abs_ps(a))
    }
    #[inline(always)]
    fn copysign(self, mag: __m512, sign: __m512) -> __m512 {
        // Bitwise ops on floats need AVX-512DQ; on integers, only F.
        proven!({
            let sign_bit = _mm512_set1_epi32(i32::MIN);
            _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_andnot_si512(sign_bit, _mm512_castps_si512(mag)),
                _mm512_and_si512(sign_bit, _mm512_castps_si512(sign)),
            ))
        })
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        proven!(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        proven!(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(
            _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127))
        )))
    }
    #[inline(always)]
    fn select_lt(self, a: __m512, b: __m512, t: __m512, f: __m512) -> __m512 {
        proven!(_mm512_mask_blend_ps(
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b),
            f,
            t
        ))
    }
    #[inline(always)]
    fn reduce_add(self, a: __m512) -> f32 {
        proven!(_mm512_reduce_add_ps(a))
    }
    #[inline(always)]
    fn reduce_max(self, a: __m512) -> f32 {
        proven!(_mm512_reduce_max_ps(a))
    }

    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        proven!(_mm_prefetch::<_MM_HINT_T0>(p.cast()))
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 readable floats.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 writable floats.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m512 {
        // SAFETY: the token proves AVX-512F; a masked load reads (and may
        // fault on) only the lanes in the mask, the first n.
        unsafe { _mm512_maskz_loadu_ps(avx512_mask(n), p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: __m512) {
        // SAFETY: as in `load_partial`: only the first n lanes are written.
        unsafe { _mm512_mask_storeu_ps(p, avx512_mask(n), v) }
    }
}

/// A k-mask selecting lanes `0..n`, `n < 16`.
#[inline(always)]
fn avx512_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}
