//! int8 GEMM: `C[m, n] = epilogue(A[m, k] · B[k, n])` with both operands
//! quantized to 8 bits in blocks of [`QBLOCK`] along K, as llama.cpp's Q8_0.
//!
//! # The scheme
//!
//! - B (a weight, `[n, k]` as `nn.Linear` stores it) is quantized once, at
//!   load: per column j and K block b, `sw[j][b] = max|w| / 127` and
//!   `qw = round(w / sw)` in `[-127, 127]` ([`Kernels::quantize_linear`]);
//!   or, [`WeightScales::PerColumn`], one `sw[j]` over all of K.
//! - A (the activations) is quantized per call, the same way per row and K
//!   block: `sa[i][b]`, `qa[i][p]`. Its scales depend on the row alone, never
//!   on the rest of the batch, so a sequence's result does not depend on
//!   which others share its batch.
//! - `C[i][j] = Σ_b fma(dot_b as f32, sa[i][b]·sw[j][b], ·)` over the blocks
//!   in order, `dot_b` the exact int32 dot product of one block, then the
//!   f32 epilogue (bias, activation, residual) while the tile is in
//!   registers. With per-column weight scales, `C[i][j] = sw[j] ·
//!   Σ_b fma(dot_b as f32, sa[i][b], ·)`: one multiply less per block and
//!   accumulator. Every ISA computes exactly this, in this order, so results
//!   are bit-identical across ISAs and thread counts.
//!
//! Blocks of 32 rather than one scale per row: measured by fake quantization
//! on all-MiniLM-L6-v2 (issue 12), per-row activation scales give a
//! cross-encoder Spearman of 0.991 against f32, blocks of 32 0.9992. K is
//! padded with zeros to a whole number of blocks.
//!
//! Weights may take one scale per column instead ([`WeightScales`]): the
//! activations' blocks are what carry the accuracy (their outlier features),
//! and a block's scale product is a third of the work a block adds besides
//! its `vpdpbusd`s. Measured on all-MiniLM-L6-v2 (tests/precision.rs), per
//! column on the four linears that read the hidden state costs little;
//! on FFN-down, whose input is 1,536 GELU outputs, it does not meet the
//! issue's targets, so that one keeps blocks (see `src/model/encoder.rs`).
//!
//! # Kernels
//!
//! - AVX-512 VNNI (`vnni.rs`): `vpdpbusd` multiplies unsigned by signed
//!   bytes, so A is stored as `qa + 128` and each block's sum starts from
//!   `-128 · Σ qw` (precomputed per column and block), which makes it exact.
//! - AVX-VNNI (`vnni_ymm.rs`): the same on ymm, VEX-encoded where the CPU
//!   has AVX-VNNI, EVEX-encoded (AVX-512 VNNI + VL) otherwise.
//! - AVX2 (`avx2.rs`): both operands widened to 16 bits, `vpmaddwd`: exact,
//!   and 1.6x the FMA rate in multiply-adds where `vpmaddubsw` with the
//!   sign trick signed activations need was 1.3x (Zen 4).
//! - NEON (`neon.rs`): `sdot` where the CPU has FEAT_DotProd, else `smull`
//!   and pairwise widening adds; both exact.
//! - portable (`portable.rs`): plain Rust, the reference every SIMD path must
//!   match bit for bit.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;
mod portable;
#[cfg(target_arch = "x86_64")]
mod vnni;
#[cfg(target_arch = "x86_64")]
mod vnni_ymm;

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use crate::gemm::pack::LOAD_PANELS_PER_TASK;
use crate::gemm::Epilogue;
use crate::{Kernels, Threading};

/// K values per quantization block.
pub const QBLOCK: usize = 32;
/// K values per group: one 32-bit lane of a dot-product instruction.
const GROUP: usize = 4;
/// Groups per block.
const GROUPS: usize = QBLOCK / GROUP;

/// How a weight's scales run along K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightScales {
    /// One scale per column and block of [`QBLOCK`], as the activations.
    PerBlock,
    /// One scale per column: the tile folds a block into its sums with one
    /// FMA instead of a multiply and an FMA (the int8 GEMM 7% faster on
    /// Zen 4 at BERT's shapes), and applies the column's scale once at the end.
    PerColumn,
}

/// The int8 kernel a [`Kernels`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QBackend {
    /// AVX-512 with VNNI (`vpdpbusd` on zmm).
    #[cfg(target_arch = "x86_64")]
    Vnni(crate::isa::Avx512VnniToken),
    /// AVX-VNNI (`vpdpbusd` on ymm, VEX).
    #[cfg(target_arch = "x86_64")]
    AvxVnni(crate::isa::AvxVnniToken),
    /// AVX-512 VNNI on ymm (`vpdpbusd` on ymm, EVEX): the AVX-VNNI kernel.
    #[cfg(target_arch = "x86_64")]
    VnniYmm(crate::isa::Avx512VlVnniToken),
    /// AVX2 (`vpmaddwd` on ymm, both operands widened to 16 bits as the
    /// tiles read them).
    #[cfg(target_arch = "x86_64")]
    Avx2(crate::isa::Avx2Token),
    /// NEON with `sdot`.
    #[cfg(target_arch = "aarch64")]
    NeonDot(crate::isa::NeonDotToken),
    /// NEON without `sdot`.
    #[cfg(target_arch = "aarch64")]
    Neon(crate::isa::NeonToken),
    /// Plain Rust.
    Portable,
}

impl QBackend {
    /// Panel width: columns of B per packed panel (and per register tile).
    fn nr(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Vnni(_) => vnni::NR,
            #[cfg(target_arch = "x86_64")]
            QBackend::AvxVnni(_) | QBackend::VnniYmm(_) => vnni_ymm::NR,
            #[cfg(target_arch = "x86_64")]
            QBackend::Avx2(_) => avx2::NR,
            #[cfg(target_arch = "aarch64")]
            QBackend::NeonDot(_) | QBackend::Neon(_) => neon::NR,
            QBackend::Portable => portable::NR,
        }
    }

    /// Where value `t` (0-3) of column `j`'s group sits among a panel
    /// group's `nr · 4` bytes: `[column][4]`, what a dot-product instruction
    /// reads, but for AVX2's `[pair][column][2]` (`avx2::group_offset`),
    /// what `vpmaddwd` with a broadcast pair of A values reads.
    fn group_offset(self, j: usize, t: usize) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Avx2(_) => avx2::group_offset(j, t),
            #[allow(unreachable_patterns)] // which kernels exist depends on the target
            _ => j * GROUP + t,
        }
    }

    /// Rows per register tile.
    fn mr(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Vnni(_) => vnni::MR,
            #[cfg(target_arch = "x86_64")]
            QBackend::AvxVnni(_) | QBackend::VnniYmm(_) => vnni_ymm::MR,
            #[cfg(target_arch = "x86_64")]
            QBackend::Avx2(_) => avx2::MR,
            #[cfg(target_arch = "aarch64")]
            QBackend::NeonDot(_) | QBackend::Neon(_) => neon::MR,
            QBackend::Portable => portable::MR,
        }
    }

    /// Whether A is stored as `qa + 128` (unsigned), for `vpdpbusd`.
    pub(crate) fn unsigned_a(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Vnni(_) | QBackend::AvxVnni(_) | QBackend::VnniYmm(_) => true,
            #[allow(unreachable_patterns)] // which kernels exist depends on the target
            _ => false,
        }
    }

    /// Bytes of one quantized row of A in `kb` blocks (`kp`) as it is
    /// stored: a byte per value for every kernel.
    pub(crate) fn a_row_bytes(self, kb: usize) -> usize {
        kb * QBLOCK
    }

    /// Bytes of one row of A as the tiles read it: 2 a value where the
    /// kernel multiplies 16-bit integers (AVX2's `vpmaddwd`, which
    /// [`compute`] widens a row block at a time, in cache), else as stored.
    fn tile_row_bytes(self, kb: usize) -> usize {
        let width = match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Avx2(_) => 2,
            #[allow(unreachable_patterns)] // which kernels exist depends on the target
            _ => 1,
        };
        kb * QBLOCK * width
    }

    /// Rows of A per row block in [`compute`] (a multiple of [`Self::mr`]),
    /// for rows of `kp` bytes as the tiles read them
    /// ([`Self::tile_row_bytes`]): each block stays in cache while every
    /// panel of the task's columns passes over it (BLIS's MC).
    ///
    /// - AVX2, where one tile's A and a B panel fit in half of a 32 KiB L1
    ///   (K up to 512 or so): one register tile, kept in L1. The tile reads
    ///   its six rows of 16-bit A as six strided streams, which L2 serves
    ///   worse than the one sequential stream of B panels. On Zen 3 (512 KiB
    ///   L2), M = 2048, K = 384, N = 384/1152/1536, with the 6 x 8 tile
    ///   `avx2.rs` had before: 85-95 GOP/s on one thread against 71-75 with
    ///   [`A_BLOCK_BYTES`], 111-129 on two against 98-109. At K = 1536
    ///   (30 KiB a tile and panel) one tile was 5% slower. With the 6 x 16
    ///   tile, seed20 int8 took 1.15x the time with [`A_BLOCK_BYTES`] at
    ///   K = 384 too (paired median of 10 alternating rounds).
    /// - otherwise [`A_BLOCK_BYTES`].
    fn a_block_rows(self, kp: usize) -> usize {
        let mr = self.mr();
        #[cfg(target_arch = "x86_64")]
        if let QBackend::Avx2(_) = self {
            // kp = 2 bytes a value; a panel is NR bytes a value.
            let tile_and_panel = mr * kp + kp / 2 * avx2::NR;
            if tile_and_panel <= 16 << 10 {
                return mr;
            }
        }
        (A_BLOCK_BYTES / kp).max(mr) / mr * mr
    }

    /// The name `-v` shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            QBackend::Vnni(_) => "avx512-vnni",
            #[cfg(target_arch = "x86_64")]
            QBackend::AvxVnni(_) => "avx-vnni",
            #[cfg(target_arch = "x86_64")]
            QBackend::VnniYmm(_) => "avx512-vnni-ymm",
            #[cfg(target_arch = "x86_64")]
            QBackend::Avx2(_) => "avx2",
            #[cfg(target_arch = "aarch64")]
            QBackend::NeonDot(_) => "neon-sdot",
            #[cfg(target_arch = "aarch64")]
            QBackend::Neon(_) => "neon",
            QBackend::Portable => "portable",
        }
    }
}

/// A weight quantized to int8 in blocks of [`QBLOCK`] along K and packed in
/// panels of `nr` columns for one int8 kernel ([`Kernels::quantize_linear`]).
///
/// Layout, for panel `p`, block `b`, group `g` (4 K values), column `j` of
/// the panel, value `t` of the group: `data[((p·kb + b)·8 + g)·nr·4 + j·4 + t]`,
/// so one group of a panel is `nr` columns x 4 bytes, what a dot-product
/// instruction reads; AVX2's groups hold the first pair of K values of
/// every column, then the second (`QBackend::group_offset`). Scales
/// `[p][b][nr]` f32 (`[p][nr]` per column) and, for the VNNI kernels only,
/// the offset sums `[p][b][nr]` i32 (`-128 · Σ qw` of the block) sit beside
/// it. Columns past `n` and K past `k` are zeros.
#[derive(Clone, Debug)]
pub struct QuantizedMatrix {
    k: usize,
    n: usize,
    nr: usize,
    backend: QBackend,
    weight_scales: WeightScales,
    data: Vec<i8>,
    scales: Vec<f32>,
    // offsets: [p][b][nr], VNNI kernels only (else empty)
    offsets: Vec<i32>,
    // input_scales: [k], what A's columns are multiplied by before they are
    // quantized (Kernels::quantize_linear_smoothed; else empty)
    input_scales: Vec<f32>,
}

impl QuantizedMatrix {
    /// Depth (input features).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns (output features).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held: quantized values, scales, offsets and input scales.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + 4 * (self.scales.len() + self.offsets.len() + self.input_scales.len())
    }

    /// What the GEMMs multiply column `j` of A by before quantizing it (see
    /// [`Kernels::quantize_linear_smoothed`]); empty for
    /// [`Kernels::quantize_linear`]'s matrices.
    pub fn input_scales(&self) -> &[f32] {
        &self.input_scales
    }

    /// How the scales run along K.
    pub fn weight_scales(&self) -> WeightScales {
        self.weight_scales
    }

    /// K blocks.
    fn kb(&self) -> usize {
        self.k.div_ceil(QBLOCK)
    }

    /// Whether one scale serves a whole column.
    fn per_column(&self) -> bool {
        self.weight_scales == WeightScales::PerColumn
    }

    /// Scales per panel: `kb·nr`, or `nr` per column.
    fn panel_scales(&self) -> usize {
        if self.per_column() {
            self.nr
        } else {
            self.kb() * self.nr
        }
    }
}

/// Per-row int8 quantization of `x` in blocks of [`QBLOCK`]: the scale and
/// the values, `q = round_ties_even(x · (127 / max|x|))` clamped to
/// ±127, scale `max|x| / 127` (0 for an all-zero block, whose values are 0).
/// The one definition every path uses.
#[inline]
pub fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        q.iter_mut().for_each(|v| *v = 0);
        return if max.is_finite() { 0.0 } else { f32::NAN };
    }
    let inv = 127.0 / max;
    for (v, &x) in q.iter_mut().zip(x) {
        *v = round_ties_even_small(x * inv).clamp(-127.0, 127.0) as i8;
    }
    max / 127.0
}

/// `y.round_ties_even()` for `|y| <= 2^22`: adding and subtracting 1.5·2^23
/// leaves the integer part, rounded to nearest even by the addition. The
/// same value, without the libm call `round_ties_even` becomes on x86_64's
/// baseline (it cost int8 models ~50 ms of load, a call per weight).
#[inline]
fn round_ties_even_small(y: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23
    (y + SHIFT) - SHIFT
}

/// Activations quantized for one call: `[m][kb·32]` values (signed bytes,
/// or bytes with 128 added for VNNI) and `[m][kb]` scales.
#[derive(Default)]
struct QuantizedRows {
    bytes: Vec<u8>,
    scales: Vec<f32>,
}

/// Activations quantized as an int8 GEMM's A, kept between two GEMMs:
/// [`Kernels::qgemm_requantize`] writes them and [`Kernels::qgemm_quantized`]
/// reads them. Holds `m` rows of `k` values in blocks of [`QBLOCK`] (bytes
/// and scales, a quarter of the f32 bytes plus 1/32), and a few rows of f32
/// per thread for the GEMM that makes them. Buffers grow and never shrink.
#[derive(Default)]
pub struct QuantizedActivations {
    m: usize,
    k: usize,
    kb: usize,
    backend: Option<QBackend>,
    // bytes: [m][kb·32] values (`QBackend::a_row_bytes` a row); scales: [m][kb]
    bytes: Vec<u8>,
    scales: Vec<f32>,
    // chunks: [threads][REQUANTIZE_ROWS][k], the f32 rows being quantized
    chunks: Vec<f32>,
}

impl QuantizedActivations {
    /// Empty buffers; the first GEMM sizes them.
    pub fn new() -> QuantizedActivations {
        QuantizedActivations::default()
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Values per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Shapes this for `m` rows of `k` values made on `threads` threads.
    fn resize(&mut self, backend: QBackend, m: usize, k: usize, threads: usize) {
        let kb = k.div_ceil(QBLOCK);
        (self.m, self.k, self.kb, self.backend) = (m, k, kb, Some(backend));
        let grow = |len: usize, have: usize| len.saturating_sub(have);
        let bytes = m * backend.a_row_bytes(kb);
        self.bytes
            .extend(std::iter::repeat_n(0, grow(bytes, self.bytes.len())));
        self.scales
            .extend(std::iter::repeat_n(0.0, grow(m * kb, self.scales.len())));
        let chunks = threads.min(m.div_ceil(REQUANTIZE_ROWS)).max(1) * REQUANTIZE_ROWS * k;
        self.chunks
            .extend(std::iter::repeat_n(0.0, grow(chunks, self.chunks.len())));
    }
}

/// Rows of f32 per chunk of [`Kernels::qgemm_requantize`]: a multiple of
/// every MR; 48 rows of BERT-base's 3,072 are 576 KiB, of MiniLM's 1,536
/// 288 KiB, which stay in a Zen 4 or Sapphire Rapids L2 while quantized.
const REQUANTIZE_ROWS: usize = 48;

thread_local! {
    /// The calling thread's quantized A, grown to the largest call and reused.
    static QUANTIZED_A: RefCell<QuantizedRows> = RefCell::new(QuantizedRows::default());
    /// A row of A times B's input scales, on its way to the quantizer
    /// ([`Kernels::quantize_linear_smoothed`]).
    static SCALED_ROW: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A row block of A widened to 16 bits for AVX2's tiles ([`compute`]).
    static WIDE_A: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The smallest quantized-A buffer a thread keeps: 1 MiB of values (a batch
/// of 2,730 tokens at K = 384, or 682 at K = 1536), so that which pool
/// thread first meets a GEMM of ordinary size does not decide whether a
/// later one allocates.
const FLOOR_BYTES: usize = 1 << 20;

/// Sizes this thread's quantized-A and scaled-row buffers to their floors (see
/// [`crate::gemm::reserve_thread_buffers`]).
pub(crate) fn reserve_thread_buffers() {
    QUANTIZED_A.with(|cell| {
        if let Ok(mut qa) = cell.try_borrow_mut() {
            qa.reserve(FLOOR_BYTES);
        }
    });
    SCALED_ROW.with(|cell| {
        if let Ok(mut row) = cell.try_borrow_mut() {
            row.reserve(SCALED_ROW_FLOOR);
        }
    });
    WIDE_A.with(|cell| {
        if let Ok(mut block) = cell.try_borrow_mut() {
            block.reserve(A_BLOCK_BYTES);
        }
    });
}

/// Values the scaled-row buffer holds from the start (BERT-base's rows
/// have 768, BERT-large's 1,024): wider rows grow it once.
const SCALED_ROW_FLOOR: usize = 4096;

impl QuantizedRows {
    /// Room for `bytes` values and their scales, grown to a power of two (at
    /// least the floor) when it must grow.
    fn reserve(&mut self, bytes: usize) {
        if self.bytes.len() < bytes {
            let len = bytes.max(FLOOR_BYTES).next_power_of_two();
            self.bytes = vec![0; len];
            self.scales = vec![0.0; len / QBLOCK];
        }
    }
}

/// Bytes of quantized A per row block (all kernels but AVX2's: see
/// [`QBackend::a_block_rows`]): a quarter of a 512 KiB L2, leaving room for
/// the B panel, C's tiles and the other thread's traffic.
const A_BLOCK_BYTES: usize = 128 << 10;

/// Rows per parallel quantization task.
const QUANTIZE_ROWS_PER_TASK: usize = 16;

/// Rows of C per task when M is split (a multiple of every MR).
const ROWS_PER_TASK: usize = 48;

/// Row blocks per thread once N is split, as the f32 GEMM's
/// (`gemm::blocking`): tasks a thread that finished early can take over,
/// where a thread of a shared host loses its core mid-GEMM. With 2 (until
/// 2026-12-01) rayon's halving left one task to steal per thread. Measured
/// on a noisy 2-vCPU Zen 3 VM, AVX2, M = 2048, 5 alternating rounds: K = 384
/// medians 153 and 143 GOP/s against 142 and 111 (N = 1152 and 384), K = 1536
/// no different.
const ROW_TASKS_PER_THREAD: usize = 8;

/// Below this many multiply-adds a GEMM stays on the calling thread.
const MIN_MACS_PER_TASK: usize = 1 << 21;

impl Kernels {
    /// The int8 kernel these kernels use: AVX-512 VNNI where the ISA is
    /// AVX-512 and the CPU has VNNI, AVX2 on the other x86 paths, NEON (with
    /// `sdot` where the CPU has it) on aarch64, else the portable one. (The
    /// CPU is asked once per process.)
    pub(crate) fn qbackend(&self) -> QBackend {
        if let Some(forced) = self.int8 {
            return forced;
        }
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            crate::Backend::Avx512(token) => {
                static VNNI: std::sync::OnceLock<Option<crate::isa::Avx512VnniToken>> =
                    std::sync::OnceLock::new();
                match *VNNI.get_or_init(crate::isa::Avx512VnniToken::detect) {
                    Some(vnni) => QBackend::Vnni(vnni),
                    None => QBackend::Avx2(token.avx2()),
                }
            }
            #[cfg(target_arch = "x86_64")]
            crate::Backend::Avx2(token) => {
                static AVX_VNNI: std::sync::OnceLock<Option<crate::isa::AvxVnniToken>> =
                    std::sync::OnceLock::new();
                match *AVX_VNNI.get_or_init(crate::isa::AvxVnniToken::detect) {
                    Some(vnni) => QBackend::AvxVnni(vnni),
                    None => QBackend::Avx2(token),
                }
            }
            #[cfg(target_arch = "aarch64")]
            crate::Backend::Neon(token) => {
                static DOT: std::sync::OnceLock<Option<crate::isa::NeonDotToken>> =
                    std::sync::OnceLock::new();
                match *DOT.get_or_init(crate::isa::NeonDotToken::detect) {
                    Some(dot) => QBackend::NeonDot(dot),
                    None => QBackend::Neon(token),
                }
            }
            #[allow(unreachable_patterns)] // which ISAs reach here depends on the target
            _ => QBackend::Portable,
        }
    }

    /// The name of the int8 kernel in use (`avx512-vnni`, `avx-vnni`,
    /// `avx2`, `neon-sdot`, `portable`, ...).
    pub fn int8_path(&self) -> &'static str {
        self.qbackend().name()
    }

    /// These kernels with each int8 kernel this CPU can run beside this ISA's
    /// f32 ones, the default first: for tests and benchmarks that must
    /// exercise every int8 path the host has (e.g. AVX-512 VNNI on zmm, on
    /// ymm, and AVX2's `vpmaddwd` on an AVX-512 VNNI CPU).
    pub fn int8_variants(&self) -> Vec<Kernels> {
        let default = self.qbackend();
        let mut paths = vec![default];
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = crate::isa::Avx2Token::detect() {
            if !matches!(self.backend, crate::Backend::Portable) {
                paths.extend(crate::isa::AvxVnniToken::detect().map(QBackend::AvxVnni));
                paths.extend(crate::isa::Avx512VlVnniToken::detect().map(QBackend::VnniYmm));
                paths.push(QBackend::Avx2(token));
            }
        }
        #[cfg(target_arch = "aarch64")]
        if let crate::Backend::Neon(token) = self.backend {
            paths.push(QBackend::Neon(token));
        }
        let mut kernels: Vec<Kernels> = Vec::new();
        for path in paths {
            if !kernels.iter().any(|k| k.qbackend() == path) {
                kernels.push(Kernels {
                    int8: Some(path),
                    ..*self
                });
            }
        }
        kernels
    }

    /// Quantizes a PyTorch `nn.Linear` weight (`[out, input]`, row-major) as
    /// the B of `x · Wᵀ` for [`Kernels::qgemm`], with `weight_scales`.
    ///
    /// # Panics
    /// If `weight` is shorter than `out · input`.
    pub fn quantize_linear(
        &self,
        weight: &[f32],
        out: usize,
        input: usize,
        weight_scales: WeightScales,
    ) -> QuantizedMatrix {
        assert!(
            weight.len() >= out * input,
            "quantize_linear: weight too short"
        );
        let backend = self.qbackend();
        let nr = backend.nr();
        let (k, n) = (input, out);
        let kb = k.div_ceil(QBLOCK);
        let panels = n.div_ceil(nr);
        let per_column = weight_scales == WeightScales::PerColumn;
        let panel_scales = if per_column { nr } else { kb * nr };
        let mut data = vec![0i8; panels * kb * QBLOCK * nr];
        let mut scales = vec![0.0f32; panels * panel_scales];
        // Panels are independent: quantized on the current pool's threads
        // (loading a model's linears is most of an int8 model's start).
        // In blocks, each row by the backend's activation quantizer (SIMD,
        // and the same bits as `quantize_block`), its bytes made signed
        // again; per column, by `quantize_block` over the whole row.
        let unsigned = backend.unsigned_a();
        let quantize_panel = |p: usize, (data, scales): (&mut [i8], &mut [f32])| {
            let mut bytes = vec![0u8; kb * QBLOCK];
            let mut row_scales = vec![0.0f32; kb];
            let mut column = vec![0i8; if per_column { k } else { 0 }];
            for (jj, j) in (p * nr..n.min((p + 1) * nr)).enumerate() {
                let row = &weight[j * k..(j + 1) * k];
                if per_column {
                    scales[jj] = quantize_block(row, &mut column);
                    let flip = if unsigned { 0x80 } else { 0 };
                    for (d, &q) in bytes.iter_mut().zip(&column) {
                        *d = q as u8 ^ flip;
                    }
                    bytes[k..].fill(flip);
                } else {
                    quantize_row(backend, row, kb, &mut bytes, &mut row_scales);
                    for (b, &scale) in row_scales.iter().enumerate() {
                        scales[b * nr + jj] = scale;
                    }
                }
                for (b, block) in bytes.chunks_exact(QBLOCK).enumerate() {
                    for (g, four) in block.chunks_exact(GROUP).enumerate() {
                        let group = &mut data[(b * GROUPS + g) * nr * GROUP..][..nr * GROUP];
                        for (t, &v) in four.iter().enumerate() {
                            group[backend.group_offset(jj, t)] =
                                if unsigned { (v ^ 0x80) as i8 } else { v as i8 };
                        }
                    }
                }
            }
        };
        let mut offsets = vec![0i32; if unsigned { panels * kb * nr } else { 0 }];
        if kb > 0 {
            data.par_chunks_mut(kb * QBLOCK * nr)
                .zip(scales.par_chunks_mut(panel_scales))
                .enumerate()
                .with_min_len(LOAD_PANELS_PER_TASK)
                .for_each(|(p, panel)| quantize_panel(p, panel));
            // offsets[b][j] of a panel: -128 · Σ over the block's 8 groups
            // of column j's 4 values (VNNI only; else empty, and this does nothing).
            offsets
                .par_chunks_mut(kb * nr)
                .zip(data.par_chunks(kb * QBLOCK * nr))
                .with_min_len(LOAD_PANELS_PER_TASK)
                .for_each(|(offsets, panel)| {
                    for (b, block_offsets) in offsets.chunks_exact_mut(nr).enumerate() {
                        for g in 0..GROUPS {
                            let group = &panel[(b * GROUPS + g) * nr * GROUP..][..nr * GROUP];
                            for (offset, four) in
                                block_offsets.iter_mut().zip(group.chunks_exact(GROUP))
                            {
                                *offset -= 128 * four.iter().map(|&v| v as i32).sum::<i32>();
                            }
                        }
                    }
                });
        }
        QuantizedMatrix {
            k,
            n,
            nr,
            backend,
            weight_scales,
            data,
            scales,
            offsets,
            input_scales: Vec::new(),
        }
    }

    /// [`Kernels::quantize_linear`] with the range of each input feature
    /// moved between the activations and the weights (SmoothQuant, Xiao et
    /// al. 2022): weight column `j` (input feature `j`) is multiplied by
    /// `smooth[j]` before it is quantized, and the GEMMs multiply A's column
    /// `j` by `1 / smooth[j]` before quantizing A's rows, so the product is
    /// the same in exact arithmetic. A feature whose activations reach far
    /// beyond the rest's (a transformer's outlier features) then takes less
    /// of its block's 8 bits.
    ///
    /// # Panics
    /// As [`Kernels::quantize_linear`]; also if `smooth` does not hold
    /// `input` finite positive values.
    pub fn quantize_linear_smoothed(
        &self,
        mut weight: Vec<f32>,
        out: usize,
        input: usize,
        weight_scales: WeightScales,
        smooth: &[f32],
    ) -> QuantizedMatrix {
        assert!(
            smooth.len() == input && smooth.iter().all(|s| s.is_finite() && *s > 0.0),
            "quantize_linear_smoothed: smooth must hold {input} finite positive values"
        );
        assert!(
            weight.len() >= out * input,
            "quantize_linear_smoothed: weight too short"
        );
        // Scaled where it lies: a copy would be another weight's worth of
        // fresh pages to fault in at load.
        for row in weight[..out * input].chunks_exact_mut(input.max(1)) {
            for (w, s) in row.iter_mut().zip(smooth) {
                *w *= s;
            }
        }
        let mut matrix = self.quantize_linear(&weight, out, input, weight_scales);
        matrix.input_scales = smooth.iter().map(|s| 1.0 / s).collect();
        matrix
    }

    /// `C[m, n] = epilogue(A[m, k] · B[k, n])` with B quantized by
    /// [`Kernels::quantize_linear`] and A quantized here, per row (see the
    /// module docs). `a` has row stride `lda >= k`, `c` row stride `ldc >= n`.
    ///
    /// # Panics
    /// If a slice is too short for its shape, the epilogue's operands do not
    /// match, or `b` was quantized by other kernels.
    #[allow(clippy::too_many_arguments)]
    pub fn qgemm(
        &self,
        m: usize,
        a: &[f32],
        lda: usize,
        b: &QuantizedMatrix,
        c: &mut [f32],
        ldc: usize,
        epilogue: Epilogue<'_>,
        threading: Threading,
    ) {
        let backend = self.qbackend();
        assert_eq!(
            b.backend, backend,
            "qgemm: B was quantized for another kernel"
        );
        let (k, n) = (b.k, b.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k, "qgemm: A's row stride shorter than a row");
        assert!(
            a.len() >= (m - 1) * lda + k,
            "qgemm: A too short for [{m}, {k}]"
        );
        let kb = b.kb();
        let kp = backend.a_row_bytes(kb);
        with_quantized_a(m * kp, |qa| {
            let (bytes, scales) = (&mut qa.bytes[..m * kp], &mut qa.scales[..m * kb]);
            quantize_rows(a, lda, b, backend, bytes, scales, threading);
            let a = Rows {
                bytes,
                scales,
                kp,
                kb,
            };
            multiply(backend, &a, m, b, c, ldc, epilogue, threading);
        });
    }

    /// [`Kernels::qgemm`] whose result goes straight on to another int8
    /// GEMM: `out` receives `epilogue(A·B)` quantized per row in blocks of
    /// [`QBLOCK`], exactly as [`Kernels::qgemm`] would quantize it as its A,
    /// and [`Kernels::qgemm_quantized`] multiplies it. The f32 result exists
    /// only a few rows at a time, in cache, so the pair costs neither the
    /// f32 `[m, n]` buffer nor a pass over it; the bits are those of
    /// `qgemm` into f32 followed by `qgemm` (tested).
    ///
    /// # Panics
    /// As [`Kernels::qgemm`].
    #[allow(clippy::too_many_arguments)]
    pub fn qgemm_requantize(
        &self,
        m: usize,
        a: &[f32],
        lda: usize,
        b: &QuantizedMatrix,
        epilogue: Epilogue<'_>,
        out: &mut QuantizedActivations,
        threading: Threading,
    ) {
        let backend = self.qbackend();
        assert_eq!(
            b.backend, backend,
            "qgemm_requantize: B was quantized for another kernel"
        );
        let (k, n) = (b.k, b.n);
        let threads = match threading {
            Threading::Auto => rayon::current_num_threads(),
            Threading::Single => 1,
        };
        out.resize(backend, m, n, threads);
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k, "qgemm_requantize: row stride shorter than a row");
        assert!(
            a.len() >= (m - 1) * lda + k,
            "qgemm_requantize: A too short for [{m}, {k}]"
        );
        let tiles = crate::gemm::tile_out(m, n, epilogue);
        let kb = b.kb();
        let kp = backend.a_row_bytes(kb);
        let (kb_out, kp_out) = (out.kb, backend.a_row_bytes(out.kb));
        let panels = n.div_ceil(b.nr);
        with_quantized_a(m * kp, |qa| {
            let (bytes, scales) = (&mut qa.bytes[..m * kp], &mut qa.scales[..m * kb]);
            quantize_rows(a, lda, b, backend, bytes, scales, threading);
            let a = Rows {
                bytes,
                scales,
                kp,
                kb,
            };
            // One task per thread, each a run of whole chunks of rows: a
            // chunk's f32 rows are computed into the task's own buffer and
            // quantized from there while they are still in L2.
            let chunks = m.div_ceil(REQUANTIZE_ROWS);
            let tasks = threads.min(chunks).max(1);
            let rows_per_task = chunks.div_ceil(tasks) * REQUANTIZE_ROWS;
            let task = |t: usize, (bytes, (scales, buf)): (&mut [u8], (&mut [f32], &mut [f32]))| {
                let first = t * rows_per_task;
                for (c, (bytes, scales)) in bytes
                    .chunks_mut(REQUANTIZE_ROWS * kp_out)
                    .zip(scales.chunks_mut(REQUANTIZE_ROWS * kb_out))
                    .enumerate()
                {
                    let rows =
                        first + c * REQUANTIZE_ROWS..(first + (c + 1) * REQUANTIZE_ROWS).min(m);
                    // SAFETY: `buf` holds REQUANTIZE_ROWS rows of n floats,
                    // and the chunk has at most that many.
                    unsafe {
                        compute(
                            backend,
                            &a,
                            rows.clone(),
                            0..panels,
                            b,
                            buf.as_mut_ptr(),
                            rows.start,
                            n,
                            &tiles,
                        )
                    };
                    for (r, (row_bytes, row_scales)) in bytes
                        .chunks_exact_mut(kp_out)
                        .zip(scales.chunks_exact_mut(kb_out))
                        .enumerate()
                    {
                        quantize_row(
                            backend,
                            &buf[r * n..(r + 1) * n],
                            kb_out,
                            row_bytes,
                            row_scales,
                        );
                    }
                }
            };
            let (bytes, scales) = (&mut out.bytes[..m * kp_out], &mut out.scales[..m * kb_out]);
            let buffers = &mut out.chunks[..tasks * REQUANTIZE_ROWS * n];
            let (bytes_per_task, scales_per_task) =
                (rows_per_task * kp_out, rows_per_task * kb_out);
            let buffer = REQUANTIZE_ROWS * n;
            if tasks == 1 {
                task(0, (bytes, (scales, buffers)));
            } else {
                bytes
                    .par_chunks_mut(bytes_per_task)
                    .zip(
                        scales
                            .par_chunks_mut(scales_per_task)
                            .zip(buffers.par_chunks_mut(buffer)),
                    )
                    .enumerate()
                    .for_each(|(t, part)| task(t, part));
            }
        });
    }

    /// `C[m, n] = epilogue(A · B)` for an A that [`Kernels::qgemm_requantize`]
    /// produced (`m` = its rows); otherwise as [`Kernels::qgemm`].
    ///
    /// # Panics
    /// If `a` was made by other kernels or for another K, or as [`Kernels::qgemm`].
    #[allow(clippy::too_many_arguments)]
    pub fn qgemm_quantized(
        &self,
        a: &QuantizedActivations,
        b: &QuantizedMatrix,
        c: &mut [f32],
        ldc: usize,
        epilogue: Epilogue<'_>,
        threading: Threading,
    ) {
        let backend = self.qbackend();
        assert_eq!(
            b.backend, backend,
            "qgemm_quantized: B was quantized for another kernel"
        );
        let (m, n) = (a.m, b.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(
            a.backend == Some(backend) && a.k == b.k,
            "qgemm_quantized: A was quantized for another kernel or another K"
        );
        let (kb, kp) = (a.kb, backend.a_row_bytes(a.kb));
        let rows = Rows {
            bytes: &a.bytes[..m * kp],
            scales: &a.scales[..m * kb],
            kp,
            kb,
        };
        multiply(backend, &rows, m, b, c, ldc, epilogue, threading);
    }
}

/// Runs `f` on this thread's quantized-A buffer, grown to `bytes` (a buffer
/// of its own when re-entered on this thread).
fn with_quantized_a(bytes: usize, f: impl FnOnce(&mut QuantizedRows)) {
    with_thread_buffer(&QUANTIZED_A, |qa| {
        qa.reserve(bytes);
        f(qa)
    })
}

/// Runs `f` on this thread's buffer `key`, or on a fresh one when the
/// thread's is already borrowed (re-entered on this thread).
fn with_thread_buffer<T: Default + 'static, R>(
    key: &'static std::thread::LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut T::default()),
    })
}

/// `C[m, n] = epilogue(A·B)` over all `m` rows of quantized `a` (row
/// stride `ldc`), split among threads.
///
/// # Panics
/// If `c` is too short or `ldc < n`, or the epilogue's operands do not match.
#[allow(clippy::too_many_arguments)]
fn multiply(
    backend: QBackend,
    a: &Rows<'_>,
    m: usize,
    b: &QuantizedMatrix,
    c: &mut [f32],
    ldc: usize,
    epilogue: Epilogue<'_>,
    threading: Threading,
) {
    let n = b.n;
    assert!(ldc >= n, "qgemm: C's row stride shorter than a row");
    assert!(
        c.len() >= (m - 1) * ldc + n,
        "qgemm: C too short for [{m}, {n}]"
    );
    let out = &crate::gemm::tile_out(m, n, epilogue);
    let c = SendPtr(c.as_mut_ptr());
    let panels = n.div_ceil(b.nr);
    let work = m * n * a.kb * QBLOCK;
    let threads = match threading {
        Threading::Auto => rayon::current_num_threads(),
        Threading::Single => 1,
    };
    let tasks = threads.min(work / MIN_MACS_PER_TASK).max(1);
    if tasks == 1 {
        // SAFETY: C holds m rows of stride ldc (asserted above).
        unsafe { compute(backend, a, 0..m, 0..panels, b, c.get(), 0, ldc, out) };
    } else {
        // Column shares first (each thread streams its own weights), then
        // row blocks: for the threads N leaves idle, and for load balance.
        let tn = tasks.min(panels).max(1);
        let row_blocks = m.div_ceil(ROWS_PER_TASK);
        let tm = (tasks * ROW_TASKS_PER_THREAD / tn).min(row_blocks).max(1);
        (0..tm * tn).into_par_iter().for_each(|t| {
            let (i, j) = (t % tm, t / tm);
            let blocks = share(row_blocks, tm, i);
            let rows = blocks.start * ROWS_PER_TASK..(blocks.end * ROWS_PER_TASK).min(m);
            // SAFETY: C holds m rows of stride ldc (asserted above); the
            // tasks' (rows, panels) shares do not overlap.
            unsafe {
                compute(
                    backend,
                    a,
                    rows,
                    share(panels, tn, j),
                    b,
                    c.get(),
                    0,
                    ldc,
                    out,
                )
            };
        });
    }
}

/// `C[rows, panels] = out(A·B)`, row `i` of C at `c + (i - c_row)·ldc`.
///
/// # Safety
/// Those rows of C (and the panels' columns, up to `n`) must be writable
/// and written by no one else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn compute(
    backend: QBackend,
    a: &Rows<'_>,
    rows: Range<usize>,
    panels: Range<usize>,
    b: &QuantizedMatrix,
    c: *mut f32,
    c_row: usize,
    ldc: usize,
    out: &crate::gemm::TileOuts,
) {
    let (n, kp, kb) = (b.n, a.kp, a.kb);
    let mr = backend.mr();
    // Row blocks whose quantized A stays in cache while every panel of the
    // task's columns passes over it (BLIS's MC): without them each
    // 32-column panel streamed all of A from L3, and two threads at
    // M = 2048 ran at half the one-thread rate.
    let block = backend.a_block_rows(backend.tile_row_bytes(kb));
    for rb in rows.clone().step_by(block) {
        let block_rows = rb..rows.end.min(rb + block);
        let a_block = Rows {
            bytes: &a.bytes[block_rows.start * kp..block_rows.end * kp],
            scales: &a.scales[block_rows.start * kb..block_rows.end * kb],
            kp,
            kb,
        };
        with_tile_rows(backend, &a_block, |a_block| {
            for p in panels.clone() {
                for r0 in (0..block_rows.len()).step_by(mr) {
                    let i = block_rows.start + r0;
                    let tile_rows = mr.min(block_rows.len() - r0);
                    let cols = b.nr.min(n - p * b.nr);
                    let out = out.offset(i, p * b.nr);
                    let tile = Tile {
                        a: a_block,
                        r0,
                        rows: tile_rows,
                        b,
                        p,
                        c: c.wrapping_add((i - c_row) * ldc + p * b.nr),
                        ldc,
                        cols,
                        out: &out,
                    };
                    // SAFETY: the caller's guarantee covers this tile's rows
                    // and columns; `tile` describes them.
                    unsafe {
                        match backend {
                            #[cfg(target_arch = "x86_64")]
                            QBackend::Vnni(token) => vnni::tile(token, &tile),
                            #[cfg(target_arch = "x86_64")]
                            QBackend::AvxVnni(token) => vnni_ymm::tile_vex(token, &tile),
                            #[cfg(target_arch = "x86_64")]
                            QBackend::VnniYmm(token) => vnni_ymm::tile_evex(token, &tile),
                            #[cfg(target_arch = "x86_64")]
                            QBackend::Avx2(token) => avx2::tile(token, &tile),
                            #[cfg(target_arch = "aarch64")]
                            QBackend::NeonDot(token) => neon::tile_dot(token, &tile),
                            #[cfg(target_arch = "aarch64")]
                            QBackend::Neon(token) => neon::tile(token, &tile),
                            QBackend::Portable => portable::tile(&tile),
                        }
                    }
                }
            }
        });
    }
}

/// Runs `f` on the rows `a` as the backend's tiles read them: AVX2's widened
/// to 16 bits in this thread's buffer (a row block, in cache, read by every
/// panel of the task: A is stored a byte a value, so the intermediate an
/// int8 FFN keeps and the quantized A of each call take half the memory),
/// the others' as they are.
// Only x86_64 has a backend that widens.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn with_tile_rows(backend: QBackend, a: &Rows<'_>, f: impl FnOnce(&Rows<'_>)) {
    #[cfg(target_arch = "x86_64")]
    if let QBackend::Avx2(token) = backend {
        return with_thread_buffer(&WIDE_A, |wide| {
            let len = 2 * a.bytes.len();
            if wide.len() < len {
                wide.resize(len, 0);
            }
            avx2::widen(token, a.bytes, &mut wide[..len]);
            f(&Rows {
                bytes: &wide[..len],
                scales: a.scales,
                kp: 2 * a.kp,
                kb: a.kb,
            })
        });
    }
    f(a)
}

/// The int8 peak's loops (see [`crate::peak::Int8Peak`]).
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{madd_loop as avx2_loop, PEAK_MACS_PER_ITER as AVX2_PEAK_MACS_PER_ITER};
#[cfg(target_arch = "x86_64")]
pub(crate) use vnni::{dpbusd_loop as vnni_loop, PEAK_MACS_PER_ITER as VNNI_PEAK_MACS_PER_ITER};

/// Part `i` of `0..len` split into `parts` near-equal ranges.
fn share(len: usize, parts: usize, i: usize) -> Range<usize> {
    len * i / parts..len * (i + 1) / parts
}

/// A pointer that may cross threads; every task writes its own tiles.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: only used to hand disjoint tiles of one C to rayon tasks.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Through a method, so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One register tile's job: `C[rows, cols] = out(A·B)` for rows
/// `r0..r0 + rows` of `a` and panel `p` of `b`, C's first element at `c`.
pub(crate) struct Tile<'a> {
    a: &'a Rows<'a>,
    r0: usize,
    rows: usize,
    b: &'a QuantizedMatrix,
    p: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    out: &'a crate::gemm::kernel::TileOut,
}

/// Quantized rows of A as a tile reads them: row `r`'s values at
/// `bytes[r·kp..]` (`kp` = [`QBackend::a_row_bytes`]), its block scales at
/// `scales[r·kb..]`.
pub(crate) struct Rows<'a> {
    bytes: &'a [u8],
    scales: &'a [f32],
    kp: usize,
    kb: usize,
}

/// Quantizes one row of `k <= kb·32` values into `row_bytes` (`kb·32`,
/// zero past `k`) and `row_scales` (`kb`), with 128 added where the backend
/// wants unsigned bytes.
fn quantize_row(
    backend: QBackend,
    row: &[f32],
    kb: usize,
    row_bytes: &mut [u8],
    row_scales: &mut [f32],
) {
    let k = row.len();
    #[cfg(target_arch = "x86_64")]
    match backend {
        QBackend::Vnni(token) => return vnni::quantize_row(token, row, row_bytes, row_scales),
        QBackend::Avx2(token) => return avx2::quantize_row(token, row, row_bytes, row_scales),
        QBackend::AvxVnni(vnni) => {
            // Signed bytes, then + 128 (a flip of the top bit).
            avx2::quantize_row(vnni.avx2(), row, row_bytes, row_scales);
            return row_bytes.iter_mut().for_each(|b| *b ^= 0x80);
        }
        QBackend::VnniYmm(vnni) => {
            avx2::quantize_row(vnni.avx2(), row, row_bytes, row_scales);
            return row_bytes.iter_mut().for_each(|b| *b ^= 0x80);
        }
        QBackend::Portable => {}
    }
    let unsigned = backend.unsigned_a();
    let mut block = [0.0f32; QBLOCK];
    let mut q = [0i8; QBLOCK];
    for b in 0..kb {
        let part = &row[(b * QBLOCK).min(k)..((b + 1) * QBLOCK).min(k)];
        block.fill(0.0);
        block[..part.len()].copy_from_slice(part);
        row_scales[b] = quantize_block(&block, &mut q);
        let dst = &mut row_bytes[b * QBLOCK..(b + 1) * QBLOCK];
        for (d, &v) in dst.iter_mut().zip(&q) {
            *d = if unsigned {
                (v as i16 + 128) as u8
            } else {
                v as u8
            };
        }
    }
}

/// Quantizes rows of `a` (row stride `lda`, the `k` values `b` reads each,
/// times `b`'s input scales if it has them) into `bytes` (`[m][kb·32]`
/// values as [`quantize_row`] writes them, zero past `k`) and `scales`
/// (`[m][kb]`).
fn quantize_rows(
    a: &[f32],
    lda: usize,
    b: &QuantizedMatrix,
    backend: QBackend,
    bytes: &mut [u8],
    scales: &mut [f32],
    threading: Threading,
) {
    let (k, kb, input_scales) = (b.k, b.kb(), &b.input_scales[..]);
    let kp = backend.a_row_bytes(kb);
    let one_row = |(i, (row_bytes, row_scales)): (usize, (&mut [u8], &mut [f32]))| {
        let row = &a[i * lda..i * lda + k];
        if input_scales.is_empty() {
            quantize_row(backend, row, kb, row_bytes, row_scales)
        } else {
            // The row times B's input scales, in this thread's row buffer.
            with_thread_buffer(&SCALED_ROW, |scaled| {
                scaled.clear();
                scaled.extend(row.iter().zip(input_scales).map(|(x, s)| x * s));
                quantize_row(backend, scaled, kb, row_bytes, row_scales)
            })
        }
    };
    let m = scales.len() / kb.max(1);
    if threading == Threading::Auto && m >= 2 * QUANTIZE_ROWS_PER_TASK {
        bytes
            .par_chunks_exact_mut(kp)
            .zip(scales.par_chunks_exact_mut(kb))
            .enumerate()
            .with_min_len(QUANTIZE_ROWS_PER_TASK)
            .for_each(one_row);
    } else {
        bytes
            .chunks_exact_mut(kp)
            .zip(scales.chunks_exact_mut(kb))
            .enumerate()
            .for_each(one_row);
    }
}

#[cfg(test)]
mod tests {
    /// AVX2's tiles read A widened: every byte value, at every position of
    /// a 16-byte group, becomes the same value as a little-endian i16.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_widening_sign_extends_every_byte() {
        let Some(token) = crate::isa::Avx2Token::detect() else {
            eprintln!(
                "skipped: avx2 not available on this CPU (avx2_widening_sign_extends_every_byte)"
            );
            return;
        };
        let src: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut dst = vec![0xAB; 2 * src.len()];
        super::avx2::widen(token, &src, &mut dst);
        let expected: Vec<u8> = src
            .iter()
            .flat_map(|&b| (b as i8 as i16).to_le_bytes())
            .collect();
        assert_eq!(dst, expected);
    }

    #[test]
    fn small_rounding_is_round_ties_even() {
        // Every half-step in the range quantization uses, and points off them.
        let mut ys: Vec<f32> = (-300..=300).map(|i| i as f32 * 0.5).collect();
        ys.extend((-10_000..=10_000).map(|i| i as f32 * 0.012_7));
        ys.extend([
            0.0,
            -0.0,
            126.5,
            -126.5,
            127.49999,
            4_194_303.5,
            -4_194_304.0,
        ]);
        for y in ys {
            assert_eq!(
                super::round_ties_even_small(y).to_bits() & 0x7FFF_FFFF,
                y.round_ties_even().to_bits() & 0x7FFF_FFFF,
                "round({y})"
            );
        }
    }
}
