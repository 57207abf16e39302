//! Numeric kernels for crossenc: numbers in, numbers out. No model, no I/O.
//!
//! # The contract
//!
//! * Every matrix is `f32`, row-major, described by a slice, its shape and a
//!   row stride (`lda`, `ldc`: elements between the starts of two rows).
//!   Slices must be long enough for the last row: `(rows - 1) * ld + cols`.
//! * The right-hand operand of a model GEMM is a weight. It is packed once,
//!   when the model is built, into a [`PackedMatrix`] laid out for the
//!   microkernel of the ISA that will run it; activations (the left operand)
//!   are packed on the fly inside [`Kernels::gemm`].
//! * Work that follows a GEMM (bias, activation, residual add) is an
//!   [`Epilogue`], applied while the output tile is still hot.
//!
//! # Dispatch
//!
//! [`Kernels::detect`] asks the CPU once (see [`isa`]) and picks the best
//! instruction set this crate has kernels for; `CROSSENC_ISA=avx512|avx2|neon|portable`
//! forces one, so tests and benchmarks can exercise each path. The chosen
//! [`Kernels`] value is small and `Copy`: a model holds one and calls through it,
//! so no call re-checks the CPU. It holds the ISA's token ([`isa::Avx2Token`]
//! and friends), a value that can only exist when the CPU has the feature, and
//! each kernel is one generic function over a vector trait, instantiated per ISA
//! inside a `#[target_feature]` function the token makes safe to call.
//! [`Kernels::describe`] (also its `Display`) says what was chosen, for the log.
//!
//! # GEMM
//!
//! BLIS-style: a register-tile microkernel per ISA (AVX-512F 12x32, AVX2+FMA
//! 6x16, NEON 8x12, portable 4x8), inside the five-loop blocking of
//! `gemm/blocking.rs` with KC/MC/NC derived from the L2/L3 sizes. Threads
//! come from the current rayon pool ([`Threading::Auto`]) and split the
//! weight's panels first, so each core streams its own share of B;
//! [`Threading::Single`] stays on the calling thread for callers that are
//! already parallel. Bias, activation and residual are applied to the tile
//! in registers, after its last K block.
//!
//! # Reduced precision
//!
//! * **bf16** ([`gemm::bf16`]): [`Kernels::pack_linear_bf16`] stores a
//!   weight as pairs of bf16 along K, one 32-bit word per pair, in the f32
//!   panel layout; [`Kernels::gemm`] takes it like an f32 one. The loop nest
//!   is the f32 one (it counts K in pairs), and the microkernel is the f32
//!   tile with another k step (`gemm/kernel.rs`'s `Step`): `vdpbf16ps` on
//!   AVX512_BF16, `bfdot` on NEON with BF16, A rounded to bf16 as it is
//!   packed. Elsewhere each B micro-panel is widened to f32 as the nest
//!   reaches it and the f32 microkernel runs (bf16 storage, f32 compute).
//! * **int8** ([`qgemm`]): blocks of 32 along K for the activations, and
//!   for the weights or one scale per weight column ([`WeightScales`]), as
//!   llama.cpp's Q8_0 scheme, with its own tiles: `vpdpbusd` on zmm
//!   (AVX-512 VNNI) or ymm (AVX-VNNI, or AVX-512 VNNI + VL), AVX2's
//!   `vpmaddwd` (operands widened to 16 bits), NEON's `sdot` or `smull`, and portable Rust; every one
//!   gives the same bits. [`Kernels::int8_variants`] and `CROSSENC_INT8`
//!   reach each one the host runs.
//!
//! # Example
//!
//! ```
//! use crossenc_kernels::{Epilogue, Kernels, Threading};
//!
//! let k = Kernels::portable();
//! // A linear layer as in PyTorch: weight [out = 2, in = 3], y = x W^T + b.
//! let weight = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
//! let packed = k.pack_linear(&weight, 2, 3);
//! let x = [1.0, 2.0, 3.0]; // [tokens = 1, in = 3]
//! let bias = [0.5, -0.5];
//! let mut y = [0.0; 2];
//! k.gemm(1, &x, 3, &packed, &mut y, 2, Epilogue::Bias(&bias), Threading::Auto);
//! assert_eq!(y, [1.5, 4.5]);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod gemm;
pub mod isa;
pub mod ops;
pub mod peak;
pub mod qgemm;
pub mod reference;
mod simd;

pub use gemm::{Epilogue, GemmBlocking, PackedMatrix, Threading};
pub use isa::Isa;
pub use ops::{Activation, AttentionShape, HeadAttention};
pub use qgemm::{QuantizedActivations, QuantizedMatrix, WeightScales};

#[cfg(target_arch = "aarch64")]
use isa::NeonToken;
#[cfg(target_arch = "x86_64")]
use isa::{Avx2Token, Avx512Token};

/// A chosen set of kernels. Cheap to copy; pick it once with [`Kernels::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    backend: Backend,
    /// The int8 kernel, when not the ISA's default ([`Kernels::int8_variants`]).
    int8: Option<qgemm::QBackend>,
    /// The bf16 path, when not the ISA's default ([`Kernels::bf16_variants`]).
    bf16: Option<gemm::bf16::Bf16Backend>,
}

/// The ISA of a [`Kernels`], with the token that proves the CPU has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512Token),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Token),
    #[cfg(target_arch = "aarch64")]
    Neon(NeonToken),
    Portable,
}

/// Why a requested instruction set cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaError {
    /// What was asked for (the value of `CROSSENC_ISA`, or the ISA's name).
    pub requested: String,
    /// Why it was refused.
    pub reason: String,
}

impl std::fmt::Display for IsaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "instruction set `{}` cannot be used: {} (CROSSENC_ISA takes avx512, avx2, neon or portable)",
            self.requested, self.reason
        )
    }
}

impl std::error::Error for IsaError {}

impl Kernels {
    /// The best kernels this CPU can run, unless `CROSSENC_ISA` names one;
    /// `CROSSENC_INT8` may name the int8 kernel among
    /// [`Kernels::int8_variants`] (`avx512-vnni`, `avx512-vnni-ymm`,
    /// `avx-vnni`, `avx2`, `neon-sdot`, `neon`, `portable`), and
    /// `CROSSENC_BF16` the bf16 path among [`Kernels::bf16_variants`]
    /// (`avx512-bf16`, `neon-bfdot`, `<isa>-widen`).
    ///
    /// Fails only when `CROSSENC_ISA` names an unknown ISA or one this CPU
    /// (or this build) lacks, or `CROSSENC_INT8` a kernel it cannot run.
    pub fn detect() -> Result<Kernels, IsaError> {
        let kernels = match std::env::var("CROSSENC_ISA") {
            Ok(name) if !name.trim().is_empty() => {
                let isa: Isa = name.trim().parse()?;
                Kernels::with_isa(isa)?
            }
            _ => Kernels::with_isa(Isa::best())?,
        };
        let kernels = match std::env::var("CROSSENC_BF16") {
            Ok(name) if !name.trim().is_empty() => {
                let name = name.trim();
                let variants = kernels.bf16_variants();
                variants
                    .iter()
                    .find(|k| k.bf16_path().eq_ignore_ascii_case(name))
                    .copied()
                    .ok_or_else(|| IsaError {
                        requested: format!("CROSSENC_BF16={name}"),
                        reason: format!(
                            "this CPU runs these bf16 paths with {}: {}",
                            kernels.isa(),
                            variants
                                .iter()
                                .map(|k| k.bf16_path())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?
            }
            _ => kernels,
        };
        match std::env::var("CROSSENC_INT8") {
            Ok(name) if !name.trim().is_empty() => {
                let name = name.trim();
                let variants = kernels.int8_variants();
                variants
                    .iter()
                    .find(|k| k.int8_path().eq_ignore_ascii_case(name))
                    .copied()
                    .ok_or_else(|| IsaError {
                        requested: format!("CROSSENC_INT8={name}"),
                        reason: format!(
                            "this CPU runs these int8 kernels with {}: {}",
                            kernels.isa(),
                            variants
                                .iter()
                                .map(|k| k.int8_path())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            }
            _ => Ok(kernels),
        }
    }

    /// Kernels for `isa`, if this CPU and this build support it.
    pub fn with_isa(isa: Isa) -> Result<Kernels, IsaError> {
        let backend = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Avx512Token::detect().map(Backend::Avx512),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Avx2Token::detect().map(Backend::Avx2),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => NeonToken::detect().map(Backend::Neon),
            Isa::Portable => Some(Backend::Portable),
            #[allow(unreachable_patterns)] // which ISAs reach here depends on the target
            _ => None,
        };
        backend
            .map(|backend| Kernels {
                backend,
                int8: None,
                bf16: None,
            })
            .ok_or_else(|| IsaError {
                requested: isa.name().to_string(),
                reason: "this CPU or build does not support it".to_string(),
            })
    }

    /// The portable kernels, which run everywhere.
    pub fn portable() -> Kernels {
        Kernels {
            backend: Backend::Portable,
            int8: None,
            bf16: None,
        }
    }

    /// The instruction set these kernels use.
    pub fn isa(&self) -> Isa {
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(_) => Isa::Avx512,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(_) => Isa::Avx2,
            #[cfg(target_arch = "aarch64")]
            Backend::Neon(_) => Isa::Neon,
            Backend::Portable => Isa::Portable,
        }
    }

    /// One line for the log: the ISA, the GEMM tile and blocking, and the
    /// threads of the current rayon pool, e.g.
    /// `avx2: gemm 6x16 microkernel, KC <= 2048; 2 rayon threads`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let GemmBlocking { mr, nr, kc } = self.gemm_blocking();
        write!(
            f,
            "{}: gemm {mr}x{nr} microkernel, KC <= {kc}; {} rayon threads",
            self.isa(),
            rayon::current_num_threads()
        )
    }
}
