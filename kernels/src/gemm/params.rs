//! The cache parameters every GEMM is blocked by (KC, MC, NC), below both
//! the loop nest (`blocking.rs`) and the microkernels (`kernel.rs`), which
//! read them without reading each other.

// The cache sizes the blocking is derived from. They are this machine's (AMD
// EPYC Zen 4: 32 KiB L1d and 512 KiB L2 per core, a 32 MiB L3 shared) and no
// bigger than those of the CPUs we target (Intel since Skylake, Zen 2+,
// Neoverse), so elsewhere the blocks still fit. L1 holds no block of its own:
// the microkernel reads both micro-panels sequentially from L2 (88 bytes per
// 12 FMAs on AVX2, well within L2 bandwidth with the prefetchers ahead), and
// C is prefetched into L1 while the tile computes.
const L2_BYTES: usize = 512 << 10;
const L3_BYTES: usize = 32 << 20;
const F32: usize = std::mem::size_of::<f32>();

/// KC: how deep one K block is. The B micro-panel (`KC x NR` floats) is reused
/// by every A micro-panel of the block; it gets a quarter of L2, not L1. The
/// microkernel reads 64 bytes of it per 12 FMAs (AVX2), far inside what L2
/// feeds L1 with the hardware prefetcher running ahead, and a deeper block
/// means fewer passes over C: BERT's K (384 and 1536) is a single block, so
/// the epilogue runs in registers on the finished sum and C is written once.
/// Measured on Zen 4, K = 1536: one block beat four L1-sized ones (KC 384) by
/// ~6%. AVX2 (NR = 16): 2048; AVX-512 (NR = 32): 1024; NEON (NR = 12): 2720.
pub(crate) const fn kc_for(nr: usize) -> usize {
    let kc = L2_BYTES / 4 / (nr * F32);
    kc - kc % 16
}

/// MC: rows of A per packed block. The block (`MC x KC`) is re-read for every
/// B micro-panel, and the C strip it produces (`MC x` the task's columns)
/// streams out through L2 meanwhile; both must fit in half of L2, or the
/// writes to C evict A. A multiple of MR, at least MR. Measured on Zen 4,
/// 2048 x 384 x 1152 on one thread: MC 42 (what this gives) beat MC 168 (A
/// alone in half of L2) by ~5%.
pub(crate) const fn mc_for(mr: usize, kc: usize, c_cols: usize) -> usize {
    let mc = L2_BYTES / 2 / ((kc + c_cols) * F32);
    if mc < mr {
        mr
    } else {
        mc - mc % mr
    }
}

/// NC: the `KC x NC` slab of packed B is re-read for every A block, so it
/// should stay in L3. It gets a quarter of L3 (the cores share it, and
/// activations and C stream through it too). A multiple of NR. For BERT's
/// weights (at most 2.4 MB) the whole matrix is one slab.
pub(crate) const fn nc_for(nr: usize, kc: usize) -> usize {
    let nc = L3_BYTES / 4 / (kc * F32);
    nc - nc % nr
}
