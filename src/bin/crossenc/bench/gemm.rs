//! `crossenc bench gemm`: our GEMM on BERT's shapes, in GFLOP/s, as a share
//! of this machine's FMA peak (measured in the same run), and against
//! matrixmultiply on the same shape and thread count.
//!
//! With `--precision int8`, the int8 GEMM (activations quantized per call
//! in blocks of 32, included in the time; weights as the encoder has them)
//! in GOP/s (a multiply-add is two operations) against the int8 peak: a register-resident loop of the int8
//! kernel's own instruction (`vpdpbusd` on AVX-512 VNNI, `vpmaddwd` +
//! `vpaddd` on AVX2), measured in the same run. Where the int8 path has no
//! such loop here (AVX-VNNI, NEON, portable), the f32 FMA peak stands in.
//! With `--precision bf16`, the bf16-weight GEMM against a `vdpbf16ps` loop
//! on AVX512_BF16, or the FMA peak where bf16 is widened to f32.
//!
//! Run: `crossenc bench gemm [--threads N] [--json] [--precision f32|bf16|int8]
//! [--rounds R]`, or `cargo bench --bench gemm` (same table). `CROSSENC_ISA`
//! picks the kernels.
//!
//! # Share of the peak on a shared machine
//!
//! A VM's speed moves between windows of a second or so, so a GEMM timed in
//! one window and the peak in another can be off by a quarter either way
//! (f32 once showed 103% of the FMA peak that way on a 2-vCPU Zen 3).
//! Each cell is therefore timed in `R` rounds (default [`DEFAULT_ROUNDS`]):
//! a peak sample, about [`ROUND_TIME`] of GEMM calls (their median rate), the
//! next peak sample, and so on. A round's share is its GEMM rate over the
//! mean of the two peak samples either side of it; the cell's `pct_peak` is
//! the median of its rounds' shares (`pct_peak_min` and `pct_peak_max` their
//! range), its `gflops` and `peak_gflops` the medians of its rounds' rates
//! and of its peak samples.
//!
//! matrixmultiply sizes its thread pool once per process (from
//! `MATMUL_NUM_THREADS`), so its numbers at each thread count come from a
//! child process: this executable re-run with the same arguments,
//! `MATMUL_NUM_THREADS=t` and `CROSSENC_BENCH_MATMUL_CHILD=1`, in which `run`
//! only times matrixmultiply and prints `matrixmultiply m k n gflops` lines.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crossenc::Precision;
use crossenc_kernels::{peak, Epilogue, Kernels, Threading, WeightScales};

/// Rows of A (tokens in a batch): one short pair, a long pair, a batch.
pub const M_SIZES: [usize; 3] = [64, 512, 2048];

/// `(K, N)` of BERT-base-like layers at hidden 384: QKV projection, attention
/// output, FFN up, FFN down.
pub const SHAPES: [(usize, usize); 4] = [(384, 1152), (384, 384), (384, 1536), (1536, 384)];

/// The environment variable that makes `run` a matrixmultiply-only child.
const CHILD_ENV: &str = "CROSSENC_BENCH_MATMUL_CHILD";

/// Time spent timing matrixmultiply on one (shape, threads) cell.
const CELL_TIME: Duration = Duration::from_millis(250);

/// Time spent timing our GEMM in one round of a cell (between two peak
/// samples of ~30 ms each). With [`DEFAULT_ROUNDS`] a cell takes about half a
/// second, and the command about 20 s on 2 cores (24 cells, plus
/// matrixmultiply's).
const ROUND_TIME: Duration = Duration::from_millis(40);

/// Paired rounds per cell unless `--rounds` says otherwise.
pub const DEFAULT_ROUNDS: usize = 7;

/// One line of the table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Rows of A.
    pub m: usize,
    /// Reduction length.
    pub k: usize,
    /// Columns of B.
    pub n: usize,
    /// Threads in the rayon pool (and matrixmultiply's pool).
    pub threads: usize,
    /// The precision timed.
    pub precision: Precision,
    /// Our GEMM, the median of its rounds' GFLOP/s (GOP/s for int8).
    pub gflops: f64,
    /// The peak loop's GFLOP/s (GOP/s of the int8 instruction for int8): the
    /// median of the samples taken between this cell's rounds.
    pub peak_gflops: f64,
    /// The median over the rounds of `100 · round's rate / mean of the peak
    /// samples either side` (see the module docs).
    pub pct_peak: f64,
    /// The lowest round's share of the peak, in %.
    pub pct_peak_min: f64,
    /// The highest round's share of the peak, in %.
    pub pct_peak_max: f64,
    /// matrixmultiply (threading feature, `MATMUL_NUM_THREADS = threads`), median GFLOP/s.
    pub matrixmultiply_gflops: f64,
    /// `gflops / matrixmultiply_gflops`.
    pub speedup: f64,
}

impl Row {
    /// The row as one JSON object.
    pub fn to_json(self) -> String {
        format!(
            "{{\"precision\":\"{}\",\"m\":{},\"k\":{},\"n\":{},\"threads\":{},\"gflops\":{:.2},\"peak_gflops\":{:.2},\"pct_peak\":{:.2},\"pct_peak_min\":{:.2},\"pct_peak_max\":{:.2},\"matrixmultiply_gflops\":{:.2},\"speedup\":{:.3}}}",
            self.precision.name(),
            self.m,
            self.k,
            self.n,
            self.threads,
            self.gflops,
            self.peak_gflops,
            self.pct_peak,
            self.pct_peak_min,
            self.pct_peak_max,
            self.matrixmultiply_gflops,
            self.speedup
        )
    }
}

/// Runs the benchmark and writes the table (or JSON lines) to `out`.
///
/// `threads`: `Some(t)` for `t` threads only; `None` for 1 and the machine's
/// core count. Kernels come from `Kernels::detect` (so `CROSSENC_ISA` applies);
/// the peak is measured with the best ISA this CPU has. `rounds` (at least 1)
/// paired rounds per cell (see the module docs).
pub fn run(
    threads: Option<usize>,
    json: bool,
    precision: Precision,
    rounds: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rounds = rounds.max(1);
    if std::env::var_os(CHILD_ENV).is_some() {
        return matrixmultiply_child(out);
    }
    let kernels = Kernels::detect().map_err(io::Error::other)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts = match threads {
        Some(t) => vec![t.max(1)],
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    if !json {
        let path = match precision {
            Precision::F32 => String::new(),
            Precision::Int8 => format!(" (int8: {})", kernels.int8_path()),
            Precision::Bf16 => format!(" (bf16: {})", kernels.bf16_path()),
        };
        writeln!(out, "crossenc bench gemm: {kernels}{path}")?;
    }
    for &t in &thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(io::Error::other)?;
        let reference = matrixmultiply_in_child(t);
        let peak_loop = super::peak_loop::Peak::new(kernels, precision, t)?;
        let mut peak_samples = Vec::new();
        let mut cells = Vec::new();
        for m in M_SIZES {
            for (k, n) in SHAPES {
                let pairing = (&peak_loop, rounds, &mut peak_samples);
                let timed = time_ours(kernels, precision, (m, k, n), &pool, pairing);
                let mm = reference
                    .as_ref()
                    .and_then(|r| r.iter().find(|&&(rm, rk, rn, _)| (rm, rk, rn) == (m, k, n)))
                    .map(|&(_, _, _, g)| g)
                    .unwrap_or_else(|| time_matrixmultiply(m, k, n));
                cells.push((m, k, n, timed, mm));
            }
        }
        if !json {
            writeln!(out)?;
            writeln!(
                out,
                "{t} thread(s): {} peak {:.1} G(FL)OP/s (median of {} samples of {}); % peak: the median of {rounds} rounds' rates, each over the peak samples either side (min-max)",
                peak_loop.name(),
                peak::median(peak_samples.clone()),
                peak_samples.len(),
                peak_loop.describe(),
            )?;
            if reference.is_none() {
                writeln!(
                    out,
                    "  (matrixmultiply child process failed; timed in-process instead)"
                )?;
            }
            writeln!(
                out,
                "{:>6} {:>5} {:>5} {:>3} {:>9} {:>7} {:>13} {:>15} {:>8}",
                "M", "K", "N", "thr", "GFLOP/s", "% peak", "(min-max)", "matrixmultiply", "speedup"
            )?;
        }
        for (m, k, n, timed, mm) in cells {
            let row = Row {
                precision,
                m,
                k,
                n,
                threads: t,
                gflops: timed.gflops,
                peak_gflops: timed.peak_gflops,
                pct_peak: timed.pct_peak,
                pct_peak_min: timed.pct_peak_min,
                pct_peak_max: timed.pct_peak_max,
                matrixmultiply_gflops: mm,
                speedup: timed.gflops / mm,
            };
            if json {
                writeln!(out, "{}", row.to_json())?;
            } else {
                let range = format!("({:.0}-{:.0})", row.pct_peak_min, row.pct_peak_max);
                writeln!(
                    out,
                    "{:>6} {:>5} {:>5} {:>3} {:>9.1} {:>6.1}% {:>13} {:>15.1} {:>7.2}x",
                    m, k, n, t, row.gflops, row.pct_peak, range, mm, row.speedup
                )?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// Deterministic values in [-1, 1) (a xorshift), so runs are comparable.
fn filled(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Median GFLOP/s of `f`, timed repeatedly for about [`CELL_TIME`].
fn median_gflops(flops: f64, mut f: impl FnMut()) -> f64 {
    let reps = warm_up(&mut f, CELL_TIME, 5);
    timed_median(flops, reps, &mut f)
}

/// Runs `f` twice (warming caches, paging in buffers, spinning up threads)
/// and returns how many calls take about `time`, at least `min`.
fn warm_up(f: &mut impl FnMut(), time: Duration, min: usize) -> usize {
    f();
    let start = Instant::now();
    f();
    let once = start.elapsed().max(Duration::from_micros(1));
    (time.as_secs_f64() / once.as_secs_f64()).clamp(min as f64, 500.0) as usize
}

/// The median GFLOP/s of `reps` timed calls of `f`.
fn timed_median(flops: f64, reps: usize, f: &mut impl FnMut()) -> f64 {
    let gflops = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            flops / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    peak::median(gflops)
}

/// What [`paired`] measured of one cell.
struct Timed {
    gflops: f64,
    peak_gflops: f64,
    pct_peak: f64,
    pct_peak_min: f64,
    pct_peak_max: f64,
}

/// Times `f` (a GEMM of `flops`) on `pool` in `rounds` rounds between peak
/// samples, which are also appended to `samples` (see the module docs). The
/// peak runs on its own threads, outside the pool, so no idle rayon worker
/// competes with it.
fn paired(
    pool: &rayon::ThreadPool,
    peak: &super::peak_loop::Peak,
    rounds: usize,
    samples: &mut Vec<f64>,
    flops: f64,
    mut f: impl FnMut() + Send,
) -> Timed {
    let reps = pool.install(|| warm_up(&mut f, ROUND_TIME, 3));
    let mut before = peak.sample();
    let first = samples.len();
    samples.push(before);
    let (mut rates, mut shares) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let rate = pool.install(|| timed_median(flops, reps, &mut f));
        let after = peak.sample();
        samples.push(after);
        rates.push(rate);
        shares.push(100.0 * rate / ((before + after) / 2.0));
        before = after;
    }
    let (min, max) = shares.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &s| {
        (lo.min(s), hi.max(s))
    });
    Timed {
        gflops: peak::median(rates),
        peak_gflops: peak::median(samples[first..].to_vec()),
        pct_peak: peak::median(shares),
        pct_peak_min: min,
        pct_peak_max: max,
    }
}

/// Our GEMM, weight prepacked (or quantized, on `pool`) as the model does it:
/// int8 weights with one scale per column, but FFN-down's (the one shape with
/// K > N) in blocks, as `src/model/encoder.rs` has them; timed by [`paired`]
/// against `peak`, in `rounds` rounds, its samples appended to `samples`.
fn time_ours(
    kernels: Kernels,
    precision: Precision,
    (m, k, n): (usize, usize, usize),
    pool: &rayon::ThreadPool,
    (peak, rounds, samples): (&super::peak_loop::Peak, usize, &mut Vec<f64>),
) -> Timed {
    let a = filled(m * k, 1);
    let weight = filled(n * k, 2); // nn.Linear layout [out = n, in = k]
    let mut c = vec![0.0f32; m * n];
    let flops = 2.0 * (m * k * n) as f64;
    if precision == Precision::Int8 {
        let scales = if k > n {
            WeightScales::PerBlock
        } else {
            WeightScales::PerColumn
        };
        let quantized = pool.install(|| kernels.quantize_linear(&weight, n, k, scales));
        return paired(pool, peak, rounds, samples, flops, || {
            kernels.qgemm(
                m,
                &a,
                k,
                &quantized,
                &mut c,
                n,
                Epilogue::None,
                Threading::Auto,
            );
            std::hint::black_box(&mut c);
        });
    }
    let packed = pool.install(|| match precision {
        Precision::Bf16 => kernels
            .pack_linear_bf16(&weight, n, k)
            .expect("BERT's K is even"),
        _ => kernels.pack_linear(&weight, n, k),
    });
    paired(pool, peak, rounds, samples, flops, || {
        kernels.gemm(
            m,
            &a,
            k,
            &packed,
            &mut c,
            n,
            Epilogue::None,
            Threading::Auto,
        );
        std::hint::black_box(&mut c);
    })
}

/// matrixmultiply's `sgemm` with its own threading, on dense row-major operands.
fn time_matrixmultiply(m: usize, k: usize, n: usize) -> f64 {
    let a = filled(m * k, 1);
    let b = filled(k * n, 2);
    let mut c = vec![0.0f32; m * n];
    median_gflops(2.0 * (m * k * n) as f64, || {
        // SAFETY: a is [m, k], b is [k, n] and c is [m, n], all row-major and
        // contiguous, exactly the extents the strides below describe.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        std::hint::black_box(&mut c);
    })
}

/// In the child: time matrixmultiply on every shape, one line each.
fn matrixmultiply_child(out: &mut dyn Write) -> io::Result<()> {
    for m in M_SIZES {
        for (k, n) in SHAPES {
            writeln!(
                out,
                "matrixmultiply {m} {k} {n} {}",
                time_matrixmultiply(m, k, n)
            )?;
        }
    }
    out.flush()
}

/// matrixmultiply's GFLOP/s on every shape with `threads` threads, from a
/// child process (see the module docs); `None` if the child failed.
fn matrixmultiply_in_child(threads: usize) -> Option<Vec<(usize, usize, usize, f64)>> {
    let exe = std::env::current_exe().ok()?;
    let output = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .env("MATMUL_NUM_THREADS", threads.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let rows: Vec<_> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("matrixmultiply ")?.split_whitespace();
            let mut next = || fields.next()?.parse::<f64>().ok();
            Some((
                next()? as usize,
                next()? as usize,
                next()? as usize,
                next()?,
            ))
        })
        .collect();
    (rows.len() == M_SIZES.len() * SHAPES.len()).then_some(rows)
}
