//! The AVX2 + FMA microkernel: a 6 x 16 register tile.
//!
//! Why 6 x 16: x86-64 has 16 ymm registers. The tile takes 6 rows x 2 vectors
//! = 12 accumulators, plus 2 for the row of B and 1 for the broadcast element
//! of A: 15. Zen 4 (like Haswell and later) has two FMA pipes with a 4-cycle
//! latency, so at least 8 independent accumulators keep both busy; 12 leaves
//! slack. Per step of k: 12 FMAs against 2 vector loads and 6 broadcasts,
//! inside the 2-3 loads per cycle these cores sustain.

use std::arch::x86_64::*;

use crate::gemm::kernel::simd_microkernel;
use crate::gemm::pack;
use crate::isa::Avx2Token;
use crate::simd::x86_64::transpose8;

simd_microkernel! {
    /// AVX2 + FMA, 6 x 16.
    Avx2Kernel(Avx2Token), mr: 6, nv: 2, lanes: 8, features: "avx2,fma", pack_a: pack_a
}

/// [`pack::pack_a`] for 6-row micro-panels, with whole panels of row-major A
/// moved 8 steps of k at a time: 6 row loads, an 8 x 8 register transpose
/// ([`transpose8`], rows 6 and 7 zero) and 8 stores, where the generic
/// packer moves one float at a time. Profiled on MiniLM, packing A was ~6% of the run.
/// Transposed A (unit row stride) moves a step of k per load and store.
///
/// # Safety
/// As [`pack::pack_a`].
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a(
    token: Avx2Token,
    dst: *mut f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    mc: usize,
    kc: usize,
) {
    let whole = if csa == 1 || rsa == 1 {
        mc / MR * MR
    } else {
        0
    };
    if rsa == 1 && csa != 1 {
        // A transposed (attention's Vᵀ): each step of k is MR adjacent
        // floats, moved by one load and one store.
        for i0 in (0..whole).step_by(MR) {
            // SAFETY: rows i0..i0 + MR < mc and p < kc are inside the block
            // (load6 reads just MR floats); the panel is inside
            // dst, and each store's 2 spare lanes land where the next step
            // writes, except the last step's, which store6 leaves out.
            unsafe {
                let panel = dst.add(i0 * kc);
                for p in 0..kc {
                    let v = load6(a.add(i0 + p * csa));
                    if p + 1 < kc {
                        _mm256_storeu_ps(panel.add(p * MR), v);
                    } else {
                        store6(panel.add(p * MR), v);
                    }
                }
            }
        }
        if whole < mc {
            // SAFETY: the caller's guarantee, for the remaining rows.
            unsafe {
                pack::pack_a::<MR>(dst.add(whole * kc), a.add(whole), rsa, csa, mc - whole, kc)
            };
        }
        return;
    }
    let steps = kc / 8 * 8;
    let z = _mm256_setzero_ps();
    for i0 in (0..whole).step_by(MR) {
        // SAFETY: rows i0..i0 + MR < mc and columns p < kc are inside the
        // block; the panel (MR·kc floats at i0·kc) is inside dst.
        unsafe {
            let panel = dst.add(i0 * kc);
            let rows: [*const f32; MR] = std::array::from_fn(|r| a.add((i0 + r) * rsa));
            // The next panel's rows, fetched a cache line per row per 16
            // steps: a BERT row is only 24 lines (K = 384), too short for
            // the hardware prefetcher to learn, and A (the previous layer's
            // output) is in L3 at best.
            let next: [*const f32; MR] =
                std::array::from_fn(|r| a.wrapping_add((i0 + MR + r) * rsa));
            for p0 in (0..steps).step_by(8) {
                if p0 % 16 == 0 {
                    for row in next {
                        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(p0).cast());
                    }
                }
                // Rows 6 and 7 of the 8 x 8 transpose are zero: out[p] lane
                // i = A[i0 + i][p0 + p].
                let r: [__m256; MR] = std::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(p0)));
                let out = transpose8(token, [r[0], r[1], r[2], r[3], r[4], r[5], z, z]);
                // Step p's 6 floats at (p0 + p)·MR; each store's 2 spare
                // lanes land where the next one writes.
                let d = panel.add(p0 * MR);
                for (p, &v) in out[..7].iter().enumerate() {
                    _mm256_storeu_ps(d.add(p * MR), v);
                }
                // The last one as just 6 floats: a full store would write 2
                // past the panel.
                store6(d.add(7 * MR), out[7]);
            }
            for p in steps..kc {
                for (i, row) in rows.iter().enumerate() {
                    *panel.add(p * MR + i) = *row.add(p);
                }
            }
        }
    }
    if whole < mc {
        // SAFETY: the caller's guarantee, for the remaining rows.
        unsafe {
            pack::pack_a::<MR>(
                dst.add(whole * kc),
                a.add(whole * rsa),
                rsa,
                csa,
                mc - whole,
                kc,
            )
        };
    }
}

/// The first 6 lanes of `v` to `p..p + 6`: a 4-float and a 2-float store
/// (AMD cores run `vmaskmovps` stores as slow microcode).
///
/// # Safety
/// `p..p + 6` is writable; the CPU has AVX2.
#[inline(always)]
unsafe fn store6(p: *mut f32, v: __m256) {
    // SAFETY: the caller's guarantee.
    unsafe {
        _mm_storeu_ps(p, _mm256_castps256_ps128(v));
        _mm_storel_epi64(
            p.add(4).cast(),
            _mm_castps_si128(_mm256_extractf128_ps::<1>(v)),
        );
    }
}

/// `p..p + 6` into the first 6 lanes (the rest 0), reading nothing past them.
///
/// # Safety
/// `p..p + 6` is readable; the CPU has AVX2.
#[inline(always)]
unsafe fn load6(p: *const f32) -> __m256 {
    // SAFETY: the caller's guarantee.
    unsafe {
        let low = _mm_loadu_ps(p);
        let high = _mm_castsi128_ps(_mm_loadl_epi64(p.add(4).cast()));
        _mm256_set_m128(high, low)
    }
}
