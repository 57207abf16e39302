//! The NEON microkernel: an 8 x 12 register tile.
//!
//! Why 8 x 12: aarch64 has 32 128-bit registers. The tile takes 8 rows x 3
//! vectors = 24 accumulators, plus 3 for the row of B and 1 for the broadcast
//! element of A: 28. Cortex-A76/Neoverse cores have two FMA pipes at 4-cycle
//! latency, so 24 independent chains keep them busy. Column edges go through
//! a stack copy (NEON has no masked stores).

use crate::gemm::kernel::{self, Microkernel, TileOut};
use crate::gemm::pack;
use crate::isa::NeonToken;

/// NEON, 8 x 12.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeonKernel(pub(crate) NeonToken);

const MR: usize = 8;
const NV: usize = 3;

impl Microkernel for NeonKernel {
    const MR: usize = MR;
    const NR: usize = NV * 4;

    unsafe fn pack_a(
        self,
        dst: *mut f32,
        a: *const f32,
        rsa: usize,
        csa: usize,
        mc: usize,
        kc: usize,
    ) {
        // SAFETY: the caller's guarantee.
        unsafe { pack::pack_a::<MR>(dst, a, rsa, csa, mc, kc) }
    }

    unsafe fn tile(
        self,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        out: &TileOut,
    ) {
        // SAFETY: the token proves NEON; the rest is the caller's guarantee.
        unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
    }
}

/// # Safety
/// As [`Microkernel::tile`]; the CPU has NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    token: NeonToken,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    out: &TileOut,
) {
    // SAFETY: the caller's guarantee.
    unsafe { kernel::tile::<NeonToken, MR, NV>(token, kc, a, b, c, ldc, rows, cols, out) }
}
