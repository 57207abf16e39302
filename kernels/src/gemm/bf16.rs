//! bf16 weights: `C[m, n] = epilogue(A[m, k] · B[k, n])` with B stored as
//! bf16 (half the bytes of f32), through the same loop nest as f32.
//!
//! # The format
//!
//! B is packed in the f32 panel layout with each 32-bit word holding a *pair*
//! of bf16 along K: word `(q, j)` of a panel is `B[2q, j]` in its low half and
//! `B[2q + 1, j]` in its high half, what `vdpbf16ps` reads. A panel is then
//! `[k/2][NR]` words, so KC, MC and NC (sized in 4-byte words) keep their
//! cache footprint. K must be even (every BERT size is); an odd K stays f32
//! (the caller's choice: [`Kernels::pack_linear_bf16`] returns `None`).
//!
//! # Two ways to compute
//!
//! - **AVX512_BF16** (`x86_64/avx512_bf16.rs`): A is rounded to bf16 as it is
//!   packed (`vcvtne2ps2bf16`, round to nearest even) and each step of the
//!   tile is one `vdpbf16ps` per (row, vector): 32 products of bf16 pairs,
//!   exact in f32, summed into f32 lanes.
//! - **NEON with BF16** (`aarch64/neon_bf16.rs`): the same with `bfdot`, A
//!   rounded by [`to_bf16`] as it is packed.
//! - **Everywhere else**: bf16 storage, f32 compute. Each K block's slab of B
//!   is widened to f32 panels (a shift: bf16 is the top half of an f32) in a
//!   per-thread buffer, then the ISA's f32 microkernel runs on it with A in
//!   full f32. The widening is `k·n` work against the GEMM's `m·k·n`.
//!
//! Either way each row's result depends on that row alone, never on the rest
//! of the batch: A is rounded element by element, and the order of the sums
//! is the nest's, the same for every row.

use rayon::prelude::*;

use super::blocking::{self, Problem};
use super::pack::{AlignedBuf, LOAD_PANELS_PER_TASK};
use super::{PackedMatrix, Threading};
use crate::Kernels;

/// `x` rounded to bf16 (its top 16 bits), to nearest with ties to even, as
/// `vcvtne2ps2bf16` rounds; a NaN stays a (quiet) NaN. The one definition the
/// packing of B uses on every ISA.
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The f32 a bf16 stands for (exact).
#[inline]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Two bf16 as one 32-bit word, `lo` in the low half (the even K index).
#[inline]
pub(crate) fn pair(lo: f32, hi: f32) -> f32 {
    f32::from_bits(to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16)
}

/// Widens `pairs` rows of `NR` pair words at `src` into `2 · pairs` rows of
/// `NR` floats at `dst`: row `2q` from the low halves, `2q + 1` the high.
/// (`NR` a constant, so each row is a few whole vectors.)
///
/// # Safety
/// `src` holds `pairs · NR` readable words, `dst` room for `2 · pairs · NR` floats.
#[inline(always)]
pub(crate) unsafe fn widen_pairs<const NR: usize>(dst: *mut f32, src: *const f32, pairs: usize) {
    for q in 0..pairs {
        // SAFETY: q < pairs: row q of src and rows 2q, 2q + 1 of dst are
        // inside them (the caller's guarantee).
        let (words, even, odd) = unsafe {
            (
                &*src.add(q * NR).cast::<[f32; NR]>(),
                &mut *dst.add(2 * q * NR).cast::<[f32; NR]>(),
                &mut *dst.add((2 * q + 1) * NR).cast::<[f32; NR]>(),
            )
        };
        // Whole rows in and out, so the shifts and masks become vector ops.
        let words: [u32; NR] = words.map(f32::to_bits);
        *even = words.map(|w| f32::from_bits(w << 16));
        *odd = words.map(|w| f32::from_bits(w & 0xFFFF_0000));
    }
}

/// Packs an `mc x kc`-pair block of f32 A into `MR`-row micro-panels of
/// pair words (`[kc][MR]`, word `(p, r)` = `A[r, 2p]` low, `A[r, 2p + 1]`
/// high, by [`to_bf16`]), zeros past `mc`: the packing of kernels without a
/// conversion instruction of their own.
///
/// # Safety
/// `csa == 2`; `a[i·rsa + j]` is readable for `i < mc`, `j < 2·kc`; `dst` has
/// room for `mc.div_ceil(MR) · MR · kc` words.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) unsafe fn pack_a_pairs<const MR: usize>(
    dst: *mut f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    mc: usize,
    kc: usize,
) {
    debug_assert_eq!(csa, 2, "bf16 A must be contiguous along K");
    for i0 in (0..mc).step_by(MR) {
        let rows = MR.min(mc - i0);
        for p in 0..kc {
            for r in 0..MR {
                let word = if r < rows {
                    // SAFETY: row i0 + r < mc, floats 2p and 2p + 1 < 2·kc.
                    unsafe {
                        let src = a.add((i0 + r) * rsa + 2 * p);
                        pair(*src, *src.add(1))
                    }
                } else {
                    0.0
                };
                // SAFETY: (i0 + p·MR + r) is inside the micro-panel at i0·kc.
                unsafe { *dst.add(i0 * kc + p * MR + r) = word };
            }
        }
    }
}

/// How the bf16 GEMM computes on these kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bf16Backend {
    /// `vdpbf16ps` on zmm.
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16(crate::isa::Avx512Bf16Token),
    /// `bfdot` on NEON.
    #[cfg(target_arch = "aarch64")]
    NeonBf16(crate::isa::NeonBf16Token),
    /// bf16 storage widened to f32 for the ISA's f32 microkernel.
    Widen,
}

impl Kernels {
    /// The bf16 path: `vdpbf16ps` where the ISA is AVX-512 and the CPU has
    /// AVX512_BF16, else f32 compute on bf16 storage. (The CPU is asked once
    /// per process.)
    pub(crate) fn bf16_backend(&self) -> Bf16Backend {
        if let Some(forced) = self.bf16 {
            return forced;
        }
        #[cfg(target_arch = "x86_64")]
        if let crate::Backend::Avx512(_) = self.backend {
            static BF16: std::sync::OnceLock<Option<crate::isa::Avx512Bf16Token>> =
                std::sync::OnceLock::new();
            if let Some(token) = *BF16.get_or_init(crate::isa::Avx512Bf16Token::detect) {
                return Bf16Backend::Avx512Bf16(token);
            }
        }
        #[cfg(target_arch = "aarch64")]
        if let crate::Backend::Neon(_) = self.backend {
            static BF16: std::sync::OnceLock<Option<crate::isa::NeonBf16Token>> =
                std::sync::OnceLock::new();
            if let Some(token) = *BF16.get_or_init(crate::isa::NeonBf16Token::detect) {
                return Bf16Backend::NeonBf16(token);
            }
        }
        Bf16Backend::Widen
    }

    /// These kernels with each bf16 path this CPU can run with this ISA, the
    /// default first (the dot-product instruction where there is one, then
    /// the widening to f32): for tests and benchmarks that must exercise
    /// every path the host has.
    pub fn bf16_variants(&self) -> Vec<Kernels> {
        let mut kernels = vec![*self];
        if self.bf16_backend() != Bf16Backend::Widen {
            kernels.push(Kernels {
                bf16: Some(Bf16Backend::Widen),
                ..*self
            });
        }
        kernels
    }

    /// Whether bf16 products run on a bf16 dot-product instruction here
    /// (`vdpbf16ps`, `bfdot`) rather than widened to f32: then attention's
    /// products take bf16 operands when asked ([`crate::HeadAttention::bf16`]).
    pub fn bf16_dot(&self) -> bool {
        self.bf16_backend() != Bf16Backend::Widen
    }

    /// The name of the bf16 path in use: `avx512-bf16`, or `<isa>-widen`
    /// (bf16 storage, f32 compute on the ISA's f32 kernel).
    pub fn bf16_path(&self) -> &'static str {
        match self.bf16_backend() {
            #[cfg(target_arch = "x86_64")]
            Bf16Backend::Avx512Bf16(_) => "avx512-bf16",
            #[cfg(target_arch = "aarch64")]
            Bf16Backend::NeonBf16(_) => "neon-bfdot",
            Bf16Backend::Widen => match self.isa() {
                crate::Isa::Avx512 => "avx512-widen",
                crate::Isa::Avx2 => "avx2-widen",
                crate::Isa::Neon => "neon-widen",
                crate::Isa::Portable => "portable-widen",
            },
        }
    }

    /// Packs a PyTorch `nn.Linear` weight (`[out, input]`, row-major) as the
    /// bf16 B of `x · Wᵀ` for [`Kernels::gemm`] (see the module docs), or
    /// `None` when `input` is odd.
    ///
    /// # Panics
    /// If `weight` is shorter than `out · input`.
    pub fn pack_linear_bf16(
        &self,
        weight: &[f32],
        out: usize,
        input: usize,
    ) -> Option<PackedMatrix> {
        assert!(
            weight.len() >= out * input,
            "pack_linear_bf16: weight too short"
        );
        if !input.is_multiple_of(2) {
            return None;
        }
        let (k, n) = (input, out);
        let nr = self.gemm_blocking().nr;
        let pairs = k / 2;
        let mut data = AlignedBuf::zeroed(n.div_ceil(nr) * pairs * nr);
        if pairs > 0 {
            data.as_mut_slice()
                .par_chunks_exact_mut(pairs * nr)
                .enumerate()
                .with_min_len(LOAD_PANELS_PER_TASK)
                .for_each(|(p, panel)| {
                    for (jj, j) in (p * nr..n.min((p + 1) * nr)).enumerate() {
                        let row = &weight[j * k..(j + 1) * k];
                        for (q, two) in row.chunks_exact(2).enumerate() {
                            panel[q * nr + jj] = pair(two[0], two[1]);
                        }
                    }
                });
        }
        Some(PackedMatrix {
            k,
            n,
            isa: self.isa(),
            nr,
            bf16: true,
            data,
        })
    }
}

/// Runs a bf16 `problem` (built by `Kernels::gemm` with real K and f32 A).
///
/// # Safety
/// As [`blocking::run`], with B holding bf16 pairs for `problem.k` rows.
pub(crate) unsafe fn run(kernels: &Kernels, mut problem: Problem, threading: Threading) {
    match kernels.bf16_backend() {
        #[cfg(target_arch = "x86_64")]
        Bf16Backend::Avx512Bf16(token) => {
            // The nest counts K in pairs: A's column p is the pair at
            // `a + 2p`, B's row p the pair word.
            problem.k /= 2;
            problem.csa *= 2;
            problem.b_depth /= 2;
            let kernel = super::x86_64::avx512_bf16::Avx512Bf16Kernel(token);
            // SAFETY: the caller's guarantee, restated in pairs.
            unsafe { blocking::run(kernel, &problem, threading) }
        }
        #[cfg(target_arch = "aarch64")]
        Bf16Backend::NeonBf16(token) => {
            // As above.
            problem.k /= 2;
            problem.csa *= 2;
            problem.b_depth /= 2;
            let kernel = super::aarch64::neon_bf16::NeonBf16Kernel(token);
            // SAFETY: the caller's guarantee, restated in pairs.
            unsafe { blocking::run(kernel, &problem, threading) }
        }
        Bf16Backend::Widen => {
            problem.b_pairs = true;
            problem.b_depth /= 2;
            // SAFETY: the caller's guarantee.
            super::with_microkernel!(kernels.backend, |kernel| unsafe {
                blocking::run(kernel, &problem, threading)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even_and_keeps_nan() {
        // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // Just above halfway rounds up.
        assert_eq!(to_bf16(f32::from_bits(0x3F80_8001)), 0x3F81);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to even.
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        let w = pair(0.5, -3.0).to_bits();
        assert_eq!(
            (from_bf16(w as u16), from_bf16((w >> 16) as u16)),
            (0.5, -3.0)
        );
    }
}
