//! The BLIS loop nest around a [`Microkernel`], and how it is split over threads.
//! The block sizes come from [`super::params`].
//!
//! ```text
//! for jc in N, step NC            // 5th loop: a KC x NC slab of packed B (L3)
//!   for pc in K, step KC          // 4th loop: one K block
//!     for ic in M, step MC        // 3rd loop: pack A[ic.., pc..] (MC x KC, L2)
//!       for jr in NC, step NR     // 2nd loop: one B micro-panel (KC x NR, L2 -> L1)
//!         for ir in MC, step MR   // 1st loop: one A micro-panel (MR x KC, L2 -> L1)
//!           microkernel           // MR x NR tile of C in registers
//! ```
//!
//! B is packed once, when the model loads ([`super::PackedMatrix`]), so the
//! 5th and 4th loops only pick offsets into it; A is packed per block into a
//! per-thread buffer that is reused, never freed.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::kernel::{Microkernel, TileOut};
use super::pack::{with_scratch, AlignedBuf, LINE};
use super::params::{mc_for, nc_for};
use super::{Activation, Threading};

/// Below this many multiply-adds per task, splitting costs more than it saves
/// (a rayon fork-join is a few microseconds; this is ~10 µs of work on one core).
const MIN_MACS_PER_TASK: usize = 1 << 20;

/// A task owns at least this many B panels (NR columns each) when N is split...
const MIN_PANELS_PER_TASK: usize = 2;
/// ...and at least this many MR-row tiles when M is split.
const MIN_TILES_PER_TASK: usize = 4;
/// Once N is split, each thread's columns are cut into up to this many row
/// blocks, tasks that a thread which finished early can take over. On a
/// shared or virtualised host a thread can lose its core mid-GEMM, and with
/// one task per thread the whole GEMM waits for it. A thread still works
/// through its own columns (its share of the weights) first, and A is packed
/// no more often than with one task. Measured on the 2-vCPU Zen 4 VM against
/// one task per thread: bulk (1000 pairs) 2-3% faster in two alternating
/// rounds; seed20 and one-pair latency no different.
const ROW_TASKS_PER_THREAD: usize = 4;

/// Up to this many blocks of rows, bf16 panels are widened again for each
/// (a few percent of a tile's work each time) rather than kept as a slab,
/// if the widened panel fits in L1 (measured on Zen 4, one 64-token pair:
/// AVX2's 24 KiB panels gained ~10% at K = 384, AVX-512's 48 KiB ones lost
/// ~20%).
const PANEL_WIDENING_MAX_ROW_BLOCKS: usize = 4;
/// See [`PANEL_WIDENING_MAX_ROW_BLOCKS`]: a 32 KiB L1.
const PANEL_WIDENING_MAX_BYTES: usize = 32 << 10;

thread_local! {
    /// This thread's packed-A block, reused across calls.
    static PACK_A: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    /// This thread's slab of bf16 B widened to f32 (see [`Problem::b_pairs`]).
    static WIDE_B: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
}

/// Sizes this thread's packed-A block to the floor (see `gemm::reserve_thread_buffers`).
pub(crate) fn reserve_thread_buffers() {
    // (Zeroed memory from the allocator: pages a path never uses, such as
    // the widened bf16 of a CPU with AVX512_BF16, are never touched.)
    for key in [&PACK_A, &WIDE_B] {
        key.with(|buf| {
            if let Ok(mut buf) = buf.try_borrow_mut() {
                buf.reserve_floor();
            }
        });
    }
}

/// One GEMM, `C = act(alpha·A·B + beta·C + bias + residual)`, with B packed.
/// Pointers rather than slices because threads write disjoint tiles of one C.
pub(crate) struct Problem {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// `A[i, p]` at `a[i·rsa + p·csa]`.
    pub(crate) a: *const f32,
    pub(crate) rsa: usize,
    pub(crate) csa: usize,
    /// Packed B: panel `j` at `b + j·b_depth·NR` (see [`super::pack`]).
    pub(crate) b: *const f32,
    /// Rows each packed panel of B holds: `k`, or more when the product uses
    /// rows `p0..p0 + k` of a deeper packed matrix (`b` then points at row
    /// `p0` of panel 0).
    pub(crate) b_depth: usize,
    /// B holds bf16 pairs (`super::bf16`): each 32-bit word of a panel is
    /// rows `2q` and `2q + 1` of one column, `b_depth` counts pairs, and
    /// each micro-panel is widened to f32 before the f32 microkernel reads it
    /// (bf16 storage with f32 compute; see `task`).
    pub(crate) b_pairs: bool,
    /// `C[i, j]` at `c[i·ldc + j]`.
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
    /// Null or `[n]`.
    pub(crate) bias: *const f32,
    /// Null or `[m, n]` with row stride `ld_residual`.
    pub(crate) residual: *const f32,
    pub(crate) ld_residual: usize,
    pub(crate) act: Option<Activation>,
}

// SAFETY: `Problem` is shared by the tasks of one `run`; they only read A, B,
// bias and residual, and each writes a disjoint set of C tiles (see `run`).
unsafe impl Sync for Problem {}

/// Runs `problem` with `kernel`, on the calling thread or split over the
/// current rayon pool.
///
/// # Safety
/// Every pointer in `problem` is valid for the shape it describes, and nothing
/// else accesses C during the call.
pub(crate) unsafe fn run<K: Microkernel>(kernel: K, problem: &Problem, threading: Threading) {
    let Problem { m, k, n, .. } = *problem;
    if m == 0 || n == 0 {
        return;
    }
    let m_tiles = m.div_ceil(K::MR);
    let n_panels = n.div_ceil(K::NR);
    let threads = match threading {
        Threading::Auto => rayon::current_num_threads(),
        Threading::Single => 1,
    };
    let max_tasks = (m * n * k.max(1) / MIN_MACS_PER_TASK).clamp(1, threads.max(1));
    // Split N first, so each thread streams its own share of the weights;
    // then M, into row blocks for load balance (when there is more than one
    // thread's worth of work) and for threads N left idle, as far as M is
    // tall enough.
    let tn = max_tasks.min(n_panels / MIN_PANELS_PER_TASK).max(1);
    // Each row task widens its bf16 panels again: one per column share there.
    let row_tasks = if max_tasks > 1 && !problem.b_pairs {
        ROW_TASKS_PER_THREAD
    } else {
        1
    };
    let tm = (max_tasks / tn * row_tasks)
        .min(m_tiles / MIN_TILES_PER_TASK)
        .max(1);
    let rows_of = |i: usize| {
        let tiles = share(m_tiles, tm, i);
        tiles.start * K::MR..(tiles.end * K::MR).min(m)
    };
    if tm * tn == 1 {
        // SAFETY: the caller's guarantee; the one task covers all of C.
        unsafe { task(kernel, problem, 0..m, 0..n_panels) };
    } else {
        // Column share j's row blocks are adjacent in t, so rayon's halving
        // of 0..tm·tn hands each thread whole column shares first.
        (0..tm * tn).into_par_iter().for_each(|t| {
            let (i, j) = (t % tm, t / tm);
            // SAFETY: the caller's guarantee; task (i, j) writes only rows
            // `rows_of(i)` x panels `share(.., j)` of C, disjoint from every
            // other task's.
            unsafe { task(kernel, problem, rows_of(i), share(n_panels, tn, j)) };
        });
    }
}

/// Part `i` of `0..len` split into `parts` near-equal ranges.
fn share(len: usize, parts: usize, i: usize) -> Range<usize> {
    len * i / parts..len * (i + 1) / parts
}

/// The depth of [`k_blocks`]' blocks: equal, at most `kc_max` (plus
/// `align - 1`), a multiple of `align`.
fn block_depth(k: usize, kc_max: usize, align: usize) -> usize {
    let count = k.div_ceil(kc_max).max(1);
    k.div_ceil(count).next_multiple_of(align)
}

/// K blocks of at most `kc_max`, equal in size so no block is a sliver,
/// each starting at a multiple of `align` (bf16 pairs must not be split).
/// `k = 0` is one empty block, so the epilogue still runs.
fn k_blocks(k: usize, kc_max: usize, align: usize) -> impl Iterator<Item = (usize, usize)> {
    let kc = block_depth(k, kc_max, align).max(1);
    let count = k.div_ceil(kc).max(1);
    (0..count).map(move |b| (b * kc, kc.min(k - (b * kc).min(k))))
}

/// The loop nest for rows `rows` of C and B panels `panels`.
///
/// # Safety
/// As [`run`], restricted to this part of C.
unsafe fn task<K: Microkernel>(kernel: K, pb: &Problem, rows: Range<usize>, panels: Range<usize>) {
    let (mr, nr) = (K::MR, K::NR);
    let kc_max = K::KC;
    let align = if pb.b_pairs { 2 } else { 1 };
    let kc_used = block_depth(pb.k, kc_max, align);
    let nc_panels = nc_for(nr, kc_used.max(1)) / nr;
    // The C strip an A block produces spans this task's columns (at most NC).
    let c_cols = (panels.len().min(nc_panels) * nr).min(pb.n);
    let mc_max = mc_for(mr, kc_used, c_cols).min(rows.len().div_ceil(mr) * mr);
    // bf16 pairs are widened one micro-panel at a time, as the first block
    // of rows reaches it, so the f32 copy is written while it is hot and
    // read at once. With few blocks of rows (a short batch) one micro-panel
    // of room is reused and each block widens it again (L1/L2-resident,
    // never written back: writing out a whole slab cost a one-pair batch
    // ~20% on AVX-512); with more, the K block's whole slab is kept for the
    // later blocks, which read it as the f32 path reads its packed B.
    let row_blocks = rows.len().div_ceil(mc_max);
    let panel_bytes = kc_used * nr * std::mem::size_of::<f32>();
    let few_row_blocks = row_blocks == 1
        || (row_blocks <= PANEL_WIDENING_MAX_ROW_BLOCKS && panel_bytes <= PANEL_WIDENING_MAX_BYTES);
    let wide_len = match (pb.b_pairs, few_row_blocks) {
        (false, _) => 0,
        (true, true) => kc_used * nr,
        (true, false) => panels.len().min(nc_panels) * kc_used * nr,
    };
    with_scratch(&WIDE_B, wide_len, |wide_b| {
        with_scratch(&PACK_A, mc_max * kc_used, |pack_a| {
            let pack_a = pack_a.as_mut_ptr();
            for jc in panels.clone().step_by(nc_panels) {
                let jc_end = (jc + nc_panels).min(panels.end);
                for (pc, kc) in k_blocks(pb.k, kc_max, align) {
                    let first = pc == 0;
                    let last = pc + kc == pb.k;
                    // Panel jr of this K block in B: at `slab + jr·depth·NR`,
                    // f32 (read in place) or bf16 pairs (widened into `wide_b`).
                    let wide = wide_b.as_mut_ptr();
                    let (slab, depth, words) = if pb.b_pairs {
                        (pb.b.wrapping_add(pc / 2 * nr), pb.b_depth, kc / 2 * nr)
                    } else {
                        (pb.b.wrapping_add(pc * nr), pb.b_depth, kc * nr)
                    };
                    for ic in rows.clone().step_by(mc_max) {
                        let mc = mc_max.min(rows.end - ic);
                        // SAFETY: rows ic..ic+mc and columns pc..pc+kc are inside A;
                        // the buffer holds mc_max·kc_max >= mc.div_ceil(MR)·MR·kc.
                        unsafe {
                            kernel.pack_a(
                                pack_a,
                                pb.a.wrapping_add(ic * pb.rsa + pc * pb.csa),
                                pb.rsa,
                                pb.csa,
                                mc,
                                kc,
                            )
                        };
                        let tiles = mc.div_ceil(mr);
                        // Lines of one B micro-panel, and each tile's share of
                        // the next one's prefetch.
                        let panel_lines = words.div_ceil(LINE);
                        let share_lines = panel_lines.div_ceil(tiles);
                        for jr in jc..jc_end {
                            let col = jr * nr;
                            let cols = nr.min(pb.n - col);
                            let b = if pb.b_pairs {
                                let at = if few_row_blocks {
                                    0
                                } else {
                                    (jr - jc) * kc * nr
                                };
                                if few_row_blocks || ic == rows.start {
                                    // SAFETY: `wide_b` has room for the panel at
                                    // `at` (one panel, or min(panels, nc_panels)
                                    // of kc_used >= kc rows); B holds panel jr's
                                    // rows pc..pc + kc (the caller's guarantee),
                                    // pc and kc even (align).
                                    unsafe {
                                        kernel.widen_pairs(
                                            wide.add(at),
                                            slab.add(jr * depth * nr),
                                            kc / 2,
                                        )
                                    };
                                }
                                wide.wrapping_add(at).cast_const()
                            } else {
                                slab.wrapping_add(jr * depth * nr)
                            };
                            // The first block of rows meets each B micro-panel
                            // cold: the previous GEMM read other weights, and a
                            // model's weights (42 MB for MiniLM-L6) outgrow L3.
                            // The hardware prefetcher runs too few lines ahead of
                            // a stream that fast to hide memory latency, so the
                            // tiles on this panel fetch the next one, a share
                            // each. Later blocks find B in L3 and need no help
                            // (measured: no faster with it). One-pair latency:
                            // ~10% faster. (A column share's later row-block
                            // tasks fetch it again, from L3: a hint, cheap.)
                            let next = if ic == rows.start && jr + 1 < jc_end {
                                Some(jr + 1)
                            } else {
                                None
                            };
                            for (t, ir) in (0..mc).step_by(mr).enumerate() {
                                let row = ic + ir;
                                let (prefetch, prefetch_lines) = match next {
                                    Some(jn) => {
                                        let first = (t * share_lines).min(panel_lines);
                                        (
                                            slab.wrapping_add(jn * depth * nr + first * LINE),
                                            share_lines.min(panel_lines - first),
                                        )
                                    }
                                    None => (std::ptr::null(), 0),
                                };
                                let out = TileOut {
                                    alpha: pb.alpha,
                                    beta: if first { pb.beta } else { 1.0 },
                                    bias: if last && !pb.bias.is_null() {
                                        pb.bias.wrapping_add(col)
                                    } else {
                                        std::ptr::null()
                                    },
                                    residual: if last && !pb.residual.is_null() {
                                        pb.residual.wrapping_add(row * pb.ld_residual + col)
                                    } else {
                                        std::ptr::null()
                                    },
                                    ld_residual: pb.ld_residual,
                                    act: if last { pb.act } else { None },
                                    prefetch,
                                    prefetch_lines,
                                    prefetch_c: true,
                                };
                                // SAFETY: the A micro-panel at ir·kc and the B
                                // micro-panel at b hold kc·MR and kc·NR floats; the
                                // tile (row, col) of min(MR, rows left) x cols is
                                // inside C and owned by this task (the caller's
                                // guarantee), and so are its bias and residual.
                                unsafe {
                                    kernel.tile(
                                        kc,
                                        pack_a.add(ir * kc),
                                        b,
                                        pb.c.wrapping_add(row * pb.ldc + col),
                                        pb.ldc,
                                        mr.min(mc - ir),
                                        cols,
                                        &out,
                                    )
                                };
                            }
                        }
                    }
                }
            }
        })
    });
}
