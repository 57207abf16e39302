//! The AVX-512F microkernel: a 12 x 32 register tile.
//!
//! Why 12 x 32: AVX-512 has 32 zmm registers. The tile takes 12 rows x 2
//! vectors = 24 accumulators, plus 2 for the row of B and 1 for the broadcast
//! element of A: 27, leaving a few for the epilogue. 24 independent FMA chains
//! cover two FMA pipes at 4-cycle latency three times over. Column edges use
//! k-masked loads and stores (`Simd::load_partial` for `Avx512Token`), never a
//! scalar tail.

use crate::gemm::kernel::{self, Microkernel, TileOut};
use crate::gemm::pack;
use crate::isa::Avx512Token;

/// AVX-512F, 12 x 32.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Kernel(pub(crate) Avx512Token);

const MR: usize = 12;
const NV: usize = 2;

impl Microkernel for Avx512Kernel {
    const MR: usize = MR;
    const NR: usize = NV * 16;

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
        // SAFETY: the token proves AVX-512F; the rest is the caller's guarantee.
        unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
    }
}

/// # Safety
/// As [`Microkernel::tile`]; the CPU has AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    token: Avx512Token,
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
    unsafe { kernel::tile::<Avx512Token, MR, NV>(token, kc, a, b, c, ldc, rows, cols, out) }
}
