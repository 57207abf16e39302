//! Snapshot of the first kernels API (dev copy).
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(missing_docs)]
pub mod gemm;
pub mod isa;
pub mod ops;
pub mod reference;
pub use gemm::{Epilogue, PackedMatrix, Threading};
pub use isa::Isa;
pub use ops::{Activation, AttentionShape, HeadAttention};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaError {
    pub requested: String,
    pub reason: String,
}
impl std::fmt::Display for IsaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "instruction set `{}` cannot be used: {}",
            self.requested, self.reason
        )
    }
}
impl std::error::Error for IsaError {}
impl Kernels {
    pub fn detect() -> Result<Kernels, IsaError> {
        match std::env::var("CROSSENC_ISA") {
            Ok(name) if !name.trim().is_empty() => {
                let isa: Isa = name.trim().parse()?;
                Kernels::with_isa(isa)
            }
            _ => Ok(Kernels { isa: Isa::best() }),
        }
    }
    pub fn with_isa(isa: Isa) -> Result<Kernels, IsaError> {
        if isa.available() {
            Ok(Kernels { isa })
        } else {
            Err(IsaError {
                requested: isa.name().to_string(),
                reason: "unsupported".into(),
            })
        }
    }
    pub fn portable() -> Kernels {
        Kernels { isa: Isa::Portable }
    }
    pub fn isa(&self) -> Isa {
        self.isa
    }
}
