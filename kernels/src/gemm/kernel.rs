//! The microkernel contract and the one generic register-tile kernel every
//! SIMD ISA instantiates.
//!
//! A microkernel computes one `MR x NR` tile of C from a packed A micro-panel
//! and a packed B micro-panel, then finishes the tile while it is still in
//! registers (see [`TileOut`]):
//!
//! ```text
//!                       B micro-panel: kc x NR, row p at b + p·NR
//!                      +------------------------------+
//!                      | b[p][0] ... ... ... b[p][NR) |   NR/LANES vector loads per p
//!                      +------------------------------+
//!   A micro-panel        C tile (accumulators): MR x NR
//!   kc x MR, column    +------------------------------+
//!   p at a + p·MR      | acc[0][0]  ...  acc[0][NV-1] |   MR x NV registers
//!   a[p][0] ---------> |   ...                        |
//!   a[p][MR-1] ------> | acc[MR-1][0] ...             |
//!   (broadcast)        +------------------------------+
//! ```
//!
//! For each `p`: load one row of B, broadcast each of the MR elements of A and
//! FMA it into its row of accumulators: `MR · NV` independent FMAs per `p`.

use super::Activation;
use crate::simd::{math, Simd};

/// A register-tile kernel for one ISA.
///
/// The blocking loop nest ([`super::blocking`]) is generic over this trait;
/// a new ISA or a new element type (bf16, int8: see the crate docs) is a new
/// implementation plus its packing, not a new loop nest.
pub(crate) trait Microkernel: Copy + Send + Sync {
    /// Rows of the register tile (rows of A per micro-panel).
    const MR: usize;
    /// Columns of the register tile (columns of B per packed panel).
    const NR: usize;
    /// The deepest K block: see [`super::params::kc_for`]. (MC and NC
    /// depend on the call's K block and columns: see `mc_for`, `nc_for`.)
    const KC: usize = super::params::kc_for(Self::NR);
    /// Whether the panels hold bf16 pairs along K (`kc` then counts pairs,
    /// and [`Microkernel::pack_a`] pairs as it packs): see `gemm/bf16.rs`.
    const PAIRS: bool = false;

    /// `dst[i] = pair(even[i], odd[i])` for `i < n`: word `i` holds `even[i]`
    /// rounded to bf16 in its low half and `odd[i]` in its high half (round
    /// to nearest even), the pair word the bf16 kernels read. Attention uses
    /// it to pair two rows of a panel along K. `dst` may be `even` or `odd`
    /// (each word is written after both its inputs are read).
    ///
    /// # Safety
    /// `even` and `odd` hold `n` readable floats, `dst` room for `n` words.
    unsafe fn interleave_pairs(self, dst: *mut f32, even: *const f32, odd: *const f32, n: usize) {
        for i in 0..n {
            // SAFETY: i < n (the caller's guarantee); both reads come first.
            unsafe { *dst.add(i) = super::bf16::pair(*even.add(i), *odd.add(i)) };
        }
    }

    /// Packs the `mc x kc` block of A at `a` (`A[i, p]` at `a[i·rsa + p·csa]`)
    /// into `MR`-row micro-panels at `dst` (see [`super::pack`]).
    ///
    /// # Safety
    /// As [`super::pack::pack_a`].
    unsafe fn pack_a(
        self,
        dst: *mut f32,
        a: *const f32,
        rsa: usize,
        csa: usize,
        mc: usize,
        kc: usize,
    );

    /// Widens `pairs` rows of bf16 pair words of a B micro-panel (`[pairs][NR]`
    /// words at `src`, see `gemm/bf16.rs`) into an f32 micro-panel
    /// `[2·pairs][NR]` at `dst`, for bf16 storage with f32 compute.
    ///
    /// # Safety
    /// `src` holds `pairs · NR` readable words, `dst` room for `2 · pairs · NR` floats.
    unsafe fn widen_pairs(self, dst: *mut f32, src: *const f32, pairs: usize);

    /// Computes `C[rows, cols] = out(A·B)` for one tile.
    ///
    /// # Safety
    /// * `a` holds `kc · MR` floats (`a[p·MR + r]`), `b` holds `kc · NR` floats
    ///   (`b[p·NR + j]`), both readable.
    /// * `rows <= MR`, `cols <= NR`; `c[r·ldc + j]` is writable (and readable
    ///   if `out.beta != 0`) for `r < rows`, `j < cols`.
    /// * `out`'s pointers are valid as [`TileOut`] describes.
    /// * No other thread touches this tile of C meanwhile.
    #[allow(clippy::too_many_arguments)]
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
    );
}

/// How a tile's `A·B` becomes C: `C = act(alpha·A·B + beta·C + bias + residual)`.
///
/// The blocking loop sets `beta = 1` for every K block after the first (the
/// tile accumulates onto its partial sum) and sets `bias`, `residual` and
/// `act` only on the last K block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileOut {
    /// Scale of `A·B`.
    pub(crate) alpha: f32,
    /// Scale of the old C; exactly 0 means C is not read.
    pub(crate) beta: f32,
    /// Null, or `[cols]` floats: the bias of this tile's columns.
    pub(crate) bias: *const f32,
    /// Null, or this tile's `[rows, cols]` of the residual, row stride `ld_residual`.
    pub(crate) residual: *const f32,
    /// Row stride of `residual`.
    pub(crate) ld_residual: usize,
    /// Applied last.
    pub(crate) act: Option<Activation>,
    /// Null, or `prefetch_lines` cache lines (64 bytes each) from here that
    /// a later tile will read: fetched one per step of k while this one
    /// computes. A hint only; never dereferenced.
    pub(crate) prefetch: *const f32,
    /// Cache lines to fetch from `prefetch`.
    pub(crate) prefetch_lines: usize,
    /// Whether C may be far from L1, so that its rows are worth fetching
    /// before the K loop (a GEMM's output; not attention's scores and
    /// partial output, which stay in L1).
    pub(crate) prefetch_c: bool,
}

impl TileOut {
    /// `C = alpha·A·B + beta·C`: no bias, residual or activation.
    pub(crate) fn plain(alpha: f32, beta: f32) -> TileOut {
        TileOut {
            alpha,
            beta,
            bias: std::ptr::null(),
            residual: std::ptr::null(),
            ld_residual: 0,
            act: None,
            prefetch: std::ptr::null(),
            prefetch_lines: 0,
            prefetch_c: false,
        }
    }
}

/// The register-tile kernel, generic over the ISA: `MR` rows by `NV` vectors.
///
/// # Safety
/// As [`Microkernel::tile`] with `NR = NV · S::LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
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
    unsafe { tile_with::<S, Fma, MR, NV>(s, Fma, kc, a, b, c, ldc, rows, cols, out) }
}

/// What one step of k does to a tile's accumulators: `acc[r] += a[p][r] ·
/// b[p]` for every row r, in the element format of the packed panels. The
/// tile around it (prefetching, the K loop, the epilogue) is the same for
/// every format.
pub(crate) trait Step<S: Simd>: Copy {
    /// One step `p` of the packed micro-panels.
    ///
    /// # Safety
    /// `p < kc`, with `a` and `b` as [`tile_with`] takes them.
    unsafe fn step<const MR: usize, const NV: usize>(
        self,
        s: S,
        acc: &mut [[S::V; NV]; MR],
        a: *const f32,
        b: *const f32,
        p: usize,
    );
}

/// f32 panels: one FMA per (row, vector).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fma;

impl<S: Simd> Step<S> for Fma {
    #[inline(always)]
    unsafe fn step<const MR: usize, const NV: usize>(
        self,
        s: S,
        acc: &mut [[S::V; NV]; MR],
        a: *const f32,
        b: *const f32,
        p: usize,
    ) {
        // SAFETY: the caller's guarantee.
        unsafe { k_step::<S, MR, NV>(s, acc, a, b, p) }
    }
}

/// [`tile`] with the k step `step`: the panels hold 32-bit words of
/// whatever `step` reads (f32, or pairs of bf16).
///
/// # Safety
/// As [`Microkernel::tile`] with `NR = NV · S::LANES`, `kc` counting words.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_with<S: Simd, St: Step<S>, const MR: usize, const NV: usize>(
    s: S,
    step: St,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    out: &TileOut,
) {
    let lanes = S::LANES;
    let nr = NV * lanes;
    // Start fetching the tile's rows of C and of the residual: the epilogue
    // touches them only after the K loop's 1000+ cycles. C is often far
    // bigger than L2, and a tile that waits on 2·MR cache misses stalls both
    // FMA pipes; the residual (the layer's input) was last read a whole GEMM
    // ago, and profiled on MiniLM its load missed for ~5% of tile time.
    // (Attention's tiles are in L1 and skip this: `prefetch_c`.)
    if out.prefetch_c {
        prefetch_rows(s, c, ldc, MR.min(rows), nr);
    }
    if !out.residual.is_null() {
        prefetch_rows(s, out.residual, out.ld_residual, MR.min(rows), nr);
    }
    let mut acc = [[s.zero(); NV]; MR];
    // One step of k: a row of B, MR broadcasts of A, MR·NV independent FMAs.
    // (LLVM keeps this loop as written: 2 loads, 6 broadcasts and 12 FMAs on
    // AVX2, all accumulators in registers; a hand-unrolled version that went
    // through a closure spilled them.)
    let lines = if out.prefetch.is_null() {
        0
    } else {
        out.prefetch_lines.min(kc)
    };
    for p in 0..lines {
        s.prefetch(out.prefetch.wrapping_add(p * super::pack::LINE));
        // SAFETY: p < kc.
        unsafe { step.step::<MR, NV>(s, &mut acc, a, b, p) };
    }
    for p in lines..kc {
        // SAFETY: p < kc.
        unsafe { step.step::<MR, NV>(s, &mut acc, a, b, p) };
    }

    // A full tile (the common case) takes an epilogue with constant trip
    // counts and whole-vector accesses: LLVM unrolls it and finishes the
    // accumulators in place. The general one's bounds checks made it park
    // all MR·NV of them on the stack, which cost ~15% of a tile whose K loop
    // is short (attention's Q·Kᵀ runs 32 or 64 steps).
    let full = rows == MR && cols == nr;
    let plain = out.bias.is_null() && out.residual.is_null() && out.act.is_none();
    if full && plain && out.beta == 0.0 {
        // SAFETY: the caller's guarantee, for the whole tile.
        unsafe { finish_plain::<S, MR, NV, false>(s, acc, c, ldc, out.alpha) }
    } else if full && plain && out.beta == 1.0 {
        // SAFETY: as above; C is readable since beta != 0.
        unsafe { finish_plain::<S, MR, NV, true>(s, acc, c, ldc, out.alpha) }
    } else if full {
        // SAFETY: the caller's guarantee, for the whole tile.
        unsafe { finish::<S, MR, NV, true>(s, acc, c, ldc, rows, cols, out) }
    } else {
        // SAFETY: the caller's guarantee.
        unsafe { finish::<S, MR, NV, false>(s, acc, c, ldc, rows, cols, out) }
    }
}

/// One step of k: `acc[r] += a[p][r] · b[p]` for every row r.
///
/// # Safety
/// `p < kc`, with `a` and `b` as [`tile`] takes them.
#[inline(always)]
unsafe fn k_step<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    a: *const f32,
    b: *const f32,
    p: usize,
) {
    let lanes = S::LANES;
    let nr = NV * lanes;
    // SAFETY: p < kc and v·lanes < NR, within the kc·NR floats of b.
    let bv: [S::V; NV] = std::array::from_fn(|v| unsafe { s.load(b.add(p * nr + v * lanes)) });
    for (r, acc_row) in acc.iter_mut().enumerate() {
        // SAFETY: p < kc and r < MR, within the kc·MR floats of a.
        let ar = s.splat(unsafe { *a.add(p * MR + r) });
        for (acc, bv) in acc_row.iter_mut().zip(bv) {
            *acc = s.mul_add(ar, bv, *acc);
        }
    }
}

/// The epilogue of a whole tile with no bias, residual or activation:
/// `C = alpha·acc (+ C when ACCUMULATE)`. Attention's products (K = 32 or 64
/// for `Q·Kᵀ`) and every K block but the last take it; with nothing to
/// decide per vector it is MR·NV multiplies and stores.
///
/// # Safety
/// As [`tile`], with `rows == MR`, `cols == NR`.
#[inline(always)]
unsafe fn finish_plain<S: Simd, const MR: usize, const NV: usize, const ACCUMULATE: bool>(
    s: S,
    acc: [[S::V; NV]; MR],
    c: *mut f32,
    ldc: usize,
    alpha: f32,
) {
    let alpha = s.splat(alpha);
    for (r, acc_row) in acc.iter().enumerate() {
        for (v, &acc) in acc_row.iter().enumerate() {
            // SAFETY: r < MR and v < NV: inside the tile the caller vouches for.
            unsafe {
                let dst = c.add(r * ldc + v * S::LANES);
                // Rounded as `finish` rounds it (a row's result must not
                // depend on which tile it lands in): the product, then the sum.
                let x = s.mul(acc, alpha);
                let x = if ACCUMULATE { s.add(x, s.load(dst)) } else { x };
                s.store(dst, x);
            }
        }
    }
}

/// The epilogue of [`tile`]: `C = act(alpha·acc + beta·C + bias + residual)`
/// for the tile's `rows x cols`. `FULL` promises `rows == MR` and
/// `cols == NR`, so every access is a whole vector.
///
/// # Safety
/// As [`tile`].
#[inline(always)]
pub(crate) unsafe fn finish<S: Simd, const MR: usize, const NV: usize, const FULL: bool>(
    s: S,
    acc: [[S::V; NV]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    out: &TileOut,
) {
    let lanes = S::LANES;
    let alpha = s.splat(out.alpha);
    let beta = s.splat(out.beta);
    // The branches on `out` are uniform over the call and predicted.
    for (r, acc_row) in acc.iter().enumerate() {
        if !FULL && r >= rows {
            break;
        }
        for (v, &acc) in acc_row.iter().enumerate() {
            let col = v * lanes;
            if !FULL && col >= cols {
                break;
            }
            // Lanes of this vector inside the tile: a masked access when < lanes.
            let width = if FULL { lanes } else { cols - col };
            let mut x = acc;
            if out.alpha != 1.0 {
                x = s.mul(x, alpha);
            }
            // SAFETY: r < rows and col + min(width, lanes) <= cols, so every
            // access is inside the tile of C, bias and residual that the
            // caller vouches for.
            unsafe {
                let dst = c.add(r * ldc + col);
                if out.beta == 1.0 {
                    x = s.add(x, load::<S, FULL>(s, dst, width));
                } else if out.beta != 0.0 {
                    x = s.mul_add(beta, load::<S, FULL>(s, dst, width), x);
                }
                if !out.bias.is_null() {
                    x = s.add(x, load::<S, FULL>(s, out.bias.add(col), width));
                }
                if !out.residual.is_null() {
                    let res = out.residual.add(r * out.ld_residual + col);
                    x = s.add(x, load::<S, FULL>(s, res, width));
                }
                if let Some(act) = out.act {
                    x = math::activation(s, act, x);
                }
                if FULL {
                    s.store(dst, x);
                } else {
                    s.store_upto(dst, width, x);
                }
            }
        }
    }
}

/// `width` floats at `p` (a whole vector when `FULL`), zeros past them.
/// A function rather than a closure, so it inlines under `#[target_feature]`.
///
/// # Safety
/// `p..p + width` is readable; `width == LANES` when `FULL`.
#[inline(always)]
unsafe fn load<S: Simd, const FULL: bool>(s: S, p: *const f32, width: usize) -> S::V {
    // SAFETY: the caller's guarantee.
    unsafe {
        if FULL {
            s.load(p)
        } else {
            s.load_upto(p, width)
        }
    }
}

/// Prefetches the first and last element of `rows` rows of `nr` floats.
/// A function rather than a closure, so it inlines into the caller's
/// `#[target_feature]` context (see `ops::map_in_place`).
#[inline(always)]
fn prefetch_rows<S: Simd>(s: S, base: *const f32, ld: usize, rows: usize, nr: usize) {
    for r in 0..rows {
        let row = base.wrapping_add(r * ld);
        s.prefetch(row);
        s.prefetch(row.wrapping_add(nr - 1));
    }
}

/// One SIMD microkernel: the [`Microkernel`] impl for `$kernel` (which wraps
/// the ISA token `$token`, so holding one proves the CPU has the ISA) and the
/// `#[target_feature]` entry point that instantiates the generic [`tile`] for
/// that ISA. Each ISA's file keeps only its tile shape and why it fits.
macro_rules! simd_microkernel {
    (
        $(#[$doc:meta])*
        $kernel:ident($token:ty), mr: $mr:expr, nv: $nv:expr, lanes: $lanes:expr, features: $features:literal
        $(, pack_a: $pack_a:path)?
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $kernel(pub(crate) $token);

        const MR: usize = $mr;
        const NV: usize = $nv;

        impl $crate::gemm::kernel::Microkernel for $kernel {
            const MR: usize = MR;
            const NR: usize = NV * $lanes;

            #[allow(unreachable_code)]
            unsafe fn pack_a(self, dst: *mut f32, a: *const f32, rsa: usize, csa: usize, mc: usize, kc: usize) {
                // An ISA's own packer, when it has one...
                $(
                    // SAFETY: the token proves the CPU has the ISA; the rest is the caller's guarantee.
                    return unsafe { $pack_a(self.0, dst, a, rsa, csa, mc, kc) };
                )?
                // ...or the generic one.
                // SAFETY: the caller's guarantee.
                unsafe { $crate::gemm::pack::pack_a::<MR>(dst, a, rsa, csa, mc, kc) }
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
                out: &$crate::gemm::kernel::TileOut,
            ) {
                // SAFETY: the token proves the CPU has the ISA; the rest is the caller's guarantee.
                unsafe { tile(self.0, kc, a, b, c, ldc, rows, cols, out) }
            }

            unsafe fn widen_pairs(self, dst: *mut f32, src: *const f32, pairs: usize) {
                // SAFETY: the token proves the CPU has the ISA; the rest is the caller's guarantee.
                unsafe { widen_pairs(self.0, dst, src, pairs) }
            }
        }

        /// The generic widening, vectorised for this ISA.
        ///
        /// # Safety
        /// As [`Microkernel::widen_pairs`](crate::gemm::kernel::Microkernel::widen_pairs); the CPU has the ISA.
        #[target_feature(enable = $features)]
        unsafe fn widen_pairs(_token: $token, dst: *mut f32, src: *const f32, pairs: usize) {
            // SAFETY: the caller's guarantee.
            unsafe { $crate::gemm::bf16::widen_pairs::<{ NV * $lanes }>(dst, src, pairs) }
        }

        /// # Safety
        /// As [`Microkernel::tile`](crate::gemm::kernel::Microkernel::tile); the CPU has the ISA.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile(
            token: $token,
            kc: usize,
            a: *const f32,
            b: *const f32,
            c: *mut f32,
            ldc: usize,
            rows: usize,
            cols: usize,
            out: &$crate::gemm::kernel::TileOut,
        ) {
            // SAFETY: the caller's guarantee.
            unsafe { $crate::gemm::kernel::tile::<$token, MR, NV>(token, kc, a, b, c, ldc, rows, cols, out) }
        }
    };
}
pub(crate) use simd_microkernel;
