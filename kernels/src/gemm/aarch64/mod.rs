//! aarch64 microkernels.

pub(crate) mod neon;
pub(crate) mod neon_bf16;
