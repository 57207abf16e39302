//! The AVX2 + FMA microkernel: a 6 x 16 register tile.
//!
//! Why 6 x 16: x86-64 has 16 ymm registers. The tile takes 6 rows x 2 vectors
//! = 12 accumulators, plus 2 for the row of B and 1 for the broadcast element
//! of A: 15. Zen 4 (like Haswell and later) has two FMA pipes with a 4-cycle
//! latency, so at least 8 independent accumulators keep both busy; 12 leaves
//! slack. Per step of k: 12 FMAs against 2 vector loads and 6 broadcasts,
//! inside the 2-3 loads per cycle these cores sustain.

use crate::gemm::kernel::{self, Microkernel, TileOut};
use crate::gemm::pack;
use crate::isa::Avx2Token;

/// AVX2 + FMA, 6 x 16.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Kernel(pub(crate) Avx2Token);

const MR: usize = 6;
const NV: usize = 2;

impl Microkernel for Avx2Kernel {
    const MR: usize = MR;
    const NR: usize = NV * 8;

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
        // SAFETY: the token proves AVX2 + FMA; the rest is the caller's guarantee.
        unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
    }
}

/// # Safety
/// As [`Microkernel::tile`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    token: Avx2Token,
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
    unsafe { kernel::tile::<Avx2Token, MR, NV>(token, kc, a, b, c, ldc, rows, cols, out) }
}
