//! x86-64 microkernels.

pub(crate) mod avx2;
pub(crate) mod avx512;
