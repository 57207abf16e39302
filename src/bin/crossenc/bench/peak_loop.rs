//! The peak each precision is measured against (shared by `bench gemm` and
//! `bench model`).

use crossenc::Precision;
use crossenc_kernels::{peak, Isa, Kernels};

/// The peak a precision's throughput is divided by, measured in the same
/// run: a register-resident loop of the instruction its kernel is built on
/// (`vpdpbusd` for int8 on AVX-512 VNNI, `vpmaddwd` on AVX2, `vdpbf16ps` for bf16 on
/// AVX512_BF16), else the FMA loop of the best ISA (f32, and the paths that
/// compute in f32 or have no SIMD instruction of their own).
pub enum Peak {
    /// f32 FMAs.
    Fma(peak::FmaPeak, Isa),
    /// The int8 kernel's instruction (`vpdpbusd` on zmm, `vpmaddwd` on ymm).
    Int8(peak::Int8Peak),
    /// `vdpbf16ps` on zmm.
    Bf16(peak::Bf16Peak),
}

impl Peak {
    /// Calibrates the loop for `precision` on `kernels` (the ones in use) and `threads`.
    pub fn new(kernels: Kernels, precision: Precision, threads: usize) -> std::io::Result<Peak> {
        let int8 = || peak::Int8Peak::new(kernels, threads).map(Peak::Int8);
        let bf16 = || peak::Bf16Peak::new(kernels, threads).map(Peak::Bf16);
        let special = match precision {
            Precision::F32 => None,
            Precision::Int8 => int8(),
            Precision::Bf16 => bf16(),
        };
        match special {
            Some(peak) => Ok(peak),
            None => {
                let best = Kernels::with_isa(Isa::best()).map_err(std::io::Error::other)?;
                Ok(Peak::Fma(peak::FmaPeak::new(best, threads), best.isa()))
            }
        }
    }

    /// One timed run: G(FL)OP/s, a multiply-add counting two.
    pub fn sample(&self) -> f64 {
        match self {
            Peak::Fma(p, _) => p.sample(),
            Peak::Int8(p) => p.sample(),
            Peak::Bf16(p) => p.sample(),
        }
    }

    /// What the loop runs, for the table's header.
    pub fn describe(&self) -> String {
        match self {
            Peak::Fma(_, isa) => format!("an {isa} FMA loop"),
            Peak::Int8(p) => format!("a {} loop (int8 GOP/s)", p.instruction()),
            Peak::Bf16(_) => "a vdpbf16ps zmm loop".to_string(),
        }
    }

    /// A short name: `FMA`, `int8`, `bf16`.
    pub fn name(&self) -> &'static str {
        match self {
            Peak::Fma(..) => "FMA",
            Peak::Int8(_) => "int8",
            Peak::Bf16(_) => "bf16",
        }
    }
}
