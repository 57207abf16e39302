//! Benchmarks shipped as `crossenc bench ...`: the numbers are a product
//! feature, measured on the user's own machine against its own FMA peak.

pub mod gemm;
pub mod model;
pub mod peak_loop;
#[cfg(feature = "server")]
pub mod serve;
pub mod workloads;
