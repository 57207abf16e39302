//! The AVX-512F microkernel: a 12 x 32 register tile.
//!
//! Why 12 x 32: AVX-512 has 32 zmm registers. The tile takes 12 rows x 2
//! vectors = 24 accumulators, plus 2 for the row of B and 1 for the broadcast
//! element of A: 27, leaving a few for the epilogue. 24 independent FMA chains
//! cover two FMA pipes at 4-cycle latency three times over. Column edges use
//! k-masked loads and stores (`Simd::load_partial` for `Avx512Token`), never a
//! scalar tail.

use crate::gemm::kernel::simd_microkernel;
use crate::isa::Avx512Token;

simd_microkernel! {
    /// AVX-512F, 12 x 32.
    Avx512Kernel(Avx512Token), mr: 12, nv: 2, lanes: 16, features: "avx512f,avx2,fma"
}
