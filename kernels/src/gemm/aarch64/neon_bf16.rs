//! The NEON bf16 microkernel (`bfdot`, FEAT_BF16, Armv8.6+): the f32 NEON
//! kernel's 8 x 12 tile, one `bfdot` per (row, vector) per pair of K.
//!
//! The nest counts K in pairs (see `gemm/bf16.rs`): a B micro-panel is
//! `[kc][12]` pair words and an A micro-panel `[kc][8]`. Per pair: three
//! loads of B and, per row, a broadcast of its pair and three `bfdot` (8
//! multiply-adds each, 4 lanes x 2). `bfdot` goes through `asm!` (its
//! intrinsic is not stable yet). A is rounded to bf16 as it is packed, by
//! the same [`to_bf16`](crate::gemm::bf16::to_bf16) the weights use.

use std::arch::aarch64::*;

use crate::gemm::kernel::{tile_with, Microkernel, Step, TileOut};
use crate::isa::{NeonBf16Token, NeonToken};

/// Rows per tile.
const MR: usize = 8;
/// Vectors of 4 lanes per tile row.
const NV: usize = 3;

/// NEON with BF16, 8 x 12 (in pairs of K).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeonBf16Kernel(pub(crate) NeonBf16Token);

/// One pair step: `acc[r][v] += a_pair[r] · b_pairs[v]` by `bfdot`.
#[derive(Clone, Copy, Debug)]
struct Bfdot;

impl Step<NeonToken> for Bfdot {
    #[inline(always)]
    unsafe fn step<const R: usize, const V: usize>(
        self,
        _s: NeonToken,
        acc: &mut [[float32x4_t; V]; R],
        a: *const f32,
        b: *const f32,
        p: usize,
    ) {
        // SAFETY: p < kc, v < V and r < R stay inside the micro-panels
        // (`tile_with`'s contract); the caller runs with `bf16` enabled
        // (`tile` below), which the token proves.
        unsafe {
            let bv: [float32x4_t; V] = std::array::from_fn(|v| vld1q_f32(b.add((p * V + v) * 4)));
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let ar = vld1q_dup_f32(a.add(p * R + r));
                for (acc, bv) in acc_row.iter_mut().zip(bv) {
                    std::arch::asm!(
                        "bfdot {acc:v}.4s, {a:v}.8h, {b:v}.8h",
                        acc = inout(vreg) *acc,
                        a = in(vreg) ar,
                        b = in(vreg) bv,
                        options(pure, nomem, nostack),
                    );
                }
            }
        }
    }
}

impl Microkernel for NeonBf16Kernel {
    const MR: usize = MR;
    const NR: usize = NV * 4;
    const PAIRS: bool = true;

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
        unsafe { crate::gemm::bf16::pack_a_pairs::<MR>(dst, a, rsa, csa, mc, kc) }
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
        // SAFETY: the token proves the features; the rest is the caller's guarantee.
        unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
    }

    unsafe fn widen_pairs(self, dst: *mut f32, src: *const f32, pairs: usize) {
        // Not used (this kernel reads the pairs themselves); correct anyway.
        // SAFETY: the caller's guarantee.
        unsafe { crate::gemm::bf16::widen_pairs::<{ NV * 4 }>(dst, src, pairs) }
    }
}

/// # Safety
/// As [`Microkernel::tile`], `kc` counting pairs; the CPU has NEON and BF16.
#[target_feature(enable = "neon,bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    token: NeonBf16Token,
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
    unsafe { tile_with::<_, _, MR, NV>(token.neon(), Bfdot, kc, a, b, c, ldc, rows, cols, out) }
}
