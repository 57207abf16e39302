//! aarch64 microkernels.

pub(crate) mod neon;
