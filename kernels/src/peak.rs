//! The machine's FMA peak, measured: the denominator of "% of peak".
//!
//! A register-resident loop of independent vector FMAs, no memory traffic, on
//! `threads` threads at once. What it reaches is what the cores can do at the
//! clock they actually run under that load (turbo, AVX offsets, a busy
//! neighbour VM), which a datasheet number cannot tell.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::simd::{simd_dispatch, Simd};
use crate::Kernels;

/// Independent accumulator chains: more than FMA pipes x latency (2 x 4 on
/// Zen 4 and Skylake-X), so the loop is throughput-bound.
const CHAINS: usize = 12;

#[inline(always)]
fn fma_chains<S: Simd>(s: S, iters: u64, seed: f32) -> f32 {
    let x = s.splat(std::hint::black_box(seed));
    let y = s.splat(std::hint::black_box(1.0 - seed));
    let mut acc = [s.zero(); CHAINS];
    for _ in 0..iters {
        for acc in &mut acc {
            *acc = s.mul_add(*acc, x, y);
        }
    }
    let total = acc.into_iter().fold(s.zero(), |t, a| s.add(t, a));
    s.reduce_add(total)
}

simd_dispatch! {
    fn fma_loop(iters: u64, seed: f32) -> f32 = fma_chains;
}

/// The FMA loop for one ISA and thread count, calibrated once; each
/// [`FmaPeak::sample`] is one timed run of about 30 ms.
///
/// Benchmarks on a shared machine can interleave samples with their own
/// measurements and take the median, so the peak and the numbers divided by
/// it see the same conditions.
#[derive(Clone, Copy, Debug)]
pub struct FmaPeak {
    kernels: Kernels,
    threads: usize,
    iters: u64,
}

impl FmaPeak {
    /// Calibrates the loop for `kernels`' ISA on `threads` threads (at least 1).
    pub fn new(kernels: Kernels, threads: usize) -> FmaPeak {
        let iters = calibrate(|iters| {
            std::hint::black_box(fma_loop(kernels.backend, iters, 0.5));
        });
        FmaPeak {
            kernels,
            threads: threads.max(1),
            iters,
        }
    }

    /// One run on all threads at once: FP32 GFLOP/s (an FMA counts as two
    /// flops), timed to the slowest thread. Runs on its own scoped threads,
    /// not rayon's, so all of them are busy at the same time.
    pub fn sample(&self) -> f64 {
        let FmaPeak {
            kernels,
            threads,
            iters,
        } = *self;
        let flops_per_iter = (CHAINS * vector_lanes(kernels) * 2) as f64;
        let slowest = slowest_of(threads, |t| {
            std::hint::black_box(fma_loop(kernels.backend, iters, 0.5 + t as f32 * 1e-3));
        });
        threads as f64 * iters as f64 * flops_per_iter / slowest.as_secs_f64() / 1e9
    }
}

/// Iterations of `run` that take about 30 ms on one thread.
fn calibrate(run: impl Fn(u64)) -> u64 {
    let mut iters: u64 = 1 << 14;
    loop {
        let start = Instant::now();
        run(iters);
        let elapsed = start.elapsed();
        if elapsed > Duration::from_millis(5) {
            let scale = 0.030 / elapsed.as_secs_f64();
            return ((iters as f64 * scale) as u64).max(1);
        }
        iters *= 4;
    }
}

/// Runs `run(t)` on `threads` scoped threads released together (not
/// rayon's, so all of them are busy at the same time) and returns the
/// slowest one's time.
fn slowest_of(threads: usize, run: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, run) = (&barrier, &run);
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    run(t);
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("peak thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// FP32 GFLOP/s of `kernels`' vector FMA loop on `threads` threads at once:
/// the median of 5 [`FmaPeak::sample`]s.
pub fn measure_fma_gflops(kernels: Kernels, threads: usize) -> f64 {
    let peak = FmaPeak::new(kernels, threads);
    median((0..5).map(|_| peak.sample()).collect())
}

/// The median of `values` (the upper one of the middle two for an even count;
/// NaN for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// f32 lanes of one vector register of `kernels`' ISA.
pub fn vector_lanes(kernels: Kernels) -> usize {
    fn lanes<S: Simd>(_: S) -> usize {
        S::LANES
    }
    simd_dispatch! {
        fn lanes_of() -> usize = lanes;
    }
    lanes_of(kernels.backend)
}

/// The int8 peak: a register-resident loop of the int8 kernel's own
/// instruction (`vpdpbusd` on zmm for AVX-512 VNNI, `vpmaddwd` + `vpaddd`
/// on ymm for AVX2), on `threads` threads at once; `None` where the int8
/// path has no loop here to measure (AVX-VNNI, NEON, portable).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // no int8 loop to time there yet
pub struct Int8Peak {
    #[cfg(target_arch = "x86_64")]
    kind: Int8Loop,
    threads: usize,
    iters: u64,
}

/// Which loop an [`Int8Peak`] times.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
enum Int8Loop {
    Vnni(crate::isa::Avx512VnniToken),
    Avx2(crate::isa::Avx2Token),
}

#[cfg(target_arch = "x86_64")]
impl Int8Loop {
    /// `iters` rounds; `seed` varies the operands.
    fn run(self, iters: u64, seed: i32) -> i32 {
        match self {
            Int8Loop::Vnni(token) => crate::qgemm::vnni_loop(token, iters, seed),
            Int8Loop::Avx2(token) => crate::qgemm::avx2_loop(token, iters, seed),
        }
    }

    /// Multiply-adds per round.
    fn macs_per_iter(self) -> usize {
        match self {
            Int8Loop::Vnni(_) => crate::qgemm::VNNI_PEAK_MACS_PER_ITER,
            Int8Loop::Avx2(_) => crate::qgemm::AVX2_PEAK_MACS_PER_ITER,
        }
    }
}

impl Int8Peak {
    /// Calibrates the loop for `kernels`' int8 path on `threads` threads.
    pub fn new(kernels: Kernels, threads: usize) -> Option<Int8Peak> {
        #[cfg(target_arch = "x86_64")]
        {
            let kind = match kernels.qbackend() {
                crate::qgemm::QBackend::Vnni(token) => Some(Int8Loop::Vnni(token)),
                crate::qgemm::QBackend::Avx2(token) => Some(Int8Loop::Avx2(token)),
                _ => None,
            };
            if let Some(kind) = kind {
                let iters = calibrate(|iters| {
                    std::hint::black_box(kind.run(iters, 3));
                });
                return Some(Int8Peak {
                    kind,
                    threads: threads.max(1),
                    iters,
                });
            }
        }
        let _ = (kernels, threads);
        None
    }

    /// The instruction the loop runs, for a table's header.
    pub fn instruction(&self) -> &'static str {
        #[cfg(target_arch = "x86_64")]
        match self.kind {
            Int8Loop::Vnni(_) => "vpdpbusd zmm",
            Int8Loop::Avx2(_) => "vpmaddwd + vpaddd ymm",
        }
        #[cfg(not(target_arch = "x86_64"))]
        "none"
    }

    /// One run on all threads at once: int8 GOP/s (a multiply-add counts as
    /// two operations), timed to the slowest thread.
    pub fn sample(&self) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            let Int8Peak {
                kind,
                threads,
                iters,
            } = *self;
            let slowest = slowest_of(threads, |t| {
                std::hint::black_box(kind.run(iters, t as i32));
            });
            let ops = 2 * kind.macs_per_iter();
            threads as f64 * iters as f64 * ops as f64 / slowest.as_secs_f64() / 1e9
        }
        #[cfg(not(target_arch = "x86_64"))]
        f64::NAN
    }
}

/// The bf16 peak: a register-resident loop of `vdpbf16ps` on zmm (the bf16
/// kernel's instruction, AVX512_BF16), on `threads` threads at once; `None`
/// where the bf16 path computes in f32 (whose peak is [`FmaPeak`]).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // no bf16 loop to time there yet
pub struct Bf16Peak {
    #[cfg(target_arch = "x86_64")]
    token: crate::isa::Avx512Bf16Token,
    threads: usize,
    iters: u64,
}

impl Bf16Peak {
    /// Calibrates the loop for `kernels`' bf16 path on `threads` threads.
    pub fn new(kernels: Kernels, threads: usize) -> Option<Bf16Peak> {
        #[cfg(target_arch = "x86_64")]
        if let crate::gemm::bf16::Bf16Backend::Avx512Bf16(token) = kernels.bf16_backend() {
            use crate::gemm::x86_64::avx512_bf16::dpbf16_loop;
            let iters = calibrate(|iters| {
                std::hint::black_box(dpbf16_loop(token, iters, 0.5));
            });
            return Some(Bf16Peak {
                token,
                threads: threads.max(1),
                iters,
            });
        }
        let _ = (kernels, threads);
        None
    }

    /// One run on all threads at once: bf16 GFLOP/s (a multiply-add counts as
    /// two operations), timed to the slowest thread.
    pub fn sample(&self) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::gemm::x86_64::avx512_bf16::{dpbf16_loop, PEAK_MACS_PER_ITER};
            let Bf16Peak {
                token,
                threads,
                iters,
            } = *self;
            let slowest = slowest_of(threads, |t| {
                std::hint::black_box(dpbf16_loop(token, iters, 0.25 + t as f32));
            });
            let ops = 2 * PEAK_MACS_PER_ITER;
            threads as f64 * iters as f64 * ops as f64 / slowest.as_secs_f64() / 1e9
        }
        #[cfg(not(target_arch = "x86_64"))]
        f64::NAN
    }
}
