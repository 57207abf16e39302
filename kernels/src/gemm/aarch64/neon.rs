//! The NEON microkernel: an 8 x 12 register tile.
//!
//! Why 8 x 12: aarch64 has 32 128-bit registers. The tile takes 8 rows x 3
//! vectors = 24 accumulators, plus 3 for the row of B and 1 for the broadcast
//! element of A: 28. Cortex-A76/Neoverse cores have two FMA pipes at 4-cycle
//! latency, so 24 independent chains keep them busy. Column edges go through
//! a stack copy (NEON has no masked stores).

use crate::gemm::kernel::simd_microkernel;
use crate::isa::NeonToken;

simd_microkernel! {
    /// NEON, 8 x 12.
    NeonKernel(NeonToken), mr: 8, nv: 3, lanes: 4, features: "neon"
}
