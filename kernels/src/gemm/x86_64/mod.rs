//! x86-64 microkernels.

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod avx512_bf16;
