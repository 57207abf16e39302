//! The portable microkernel: a 4 x 8 tile of plain Rust.
//!
//! Why 4 x 8: one portable vector is 8 lanes, two SSE registers on a default
//! x86-64 build (16 registers): 4 rows x 1 vector = 8 registers of
//! accumulators, 2 for the row of B, 1 for the broadcast: 11, so nothing
//! spills without AVX.

use crate::gemm::kernel::{self, Microkernel, TileOut};
use crate::gemm::pack;
use crate::simd::portable::Portable;

/// Plain Rust, 4 x 8.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PortableKernel;

const MR: usize = 4;
const NV: usize = 1;

impl Microkernel for PortableKernel {
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
        // SAFETY: the caller's guarantee.
        unsafe { kernel::tile::<Portable, MR, NV>(Portable, kc, a, b, c, ldc, rows, cols, out) }
    }

    unsafe fn widen_pairs(self, dst: *mut f32, src: *const f32, pairs: usize) {
        // SAFETY: the caller's guarantee.
        unsafe { super::bf16::widen_pairs::<{ NV * 8 }>(dst, src, pairs) }
    }
}
