//! The AVX2 + FMA microkernel: a 6 x 16 register tile.
//!
//! Why 6 x 16: x86-64 has 16 ymm registers. The tile takes 6 rows x 2 vectors
//! = 12 accumulators, plus 2 for the row of B and 1 for the broadcast element
//! of A: 15. Zen 4 (like Haswell and later) has two FMA pipes with a 4-cycle
//! latency, so at least 8 independent accumulators keep both busy; 12 leaves
//! slack. Per step of k: 12 FMAs against 2 vector loads and 6 broadcasts,
//! inside the 2-3 loads per cycle these cores sustain.

use crate::gemm::kernel::simd_microkernel;
use crate::isa::Avx2Token;

simd_microkernel! {
    /// AVX2 + FMA, 6 x 16.
    Avx2Kernel(Avx2Token), mr: 6, nv: 2, lanes: 8, features: "avx2,fma"
}
