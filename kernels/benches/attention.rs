//! Fused attention throughput, one thread: every head of one sequence
//! (`Kernels::attention`) at MiniLM's shape (12 heads of 32) and BERT-base's
//! (12 of 64), in GFLOP/s (`Q·Kᵀ` and `P·V`, 4·len²·hidden) and as a share of
//! the one-thread FMA peak measured in the same run (before and after each
//! shape). Times are the median and the best of the runs. The last columns
//! time the same heads with bf16 products (`HeadAttention::bf16`, what the
//! reduced precisions use; f32 where the CPU has no bf16 dot product) and
//! give f32's median over bf16's.
//!
//! Run: `cargo bench -p crossenc-kernels --bench attention`
//! (`CROSSENC_ISA=avx2` etc. forces a path).

use std::time::{Duration, Instant};

use crossenc_kernels::{peak, AttentionShape, HeadAttention, Kernels};

/// Time spent on one shape.
const CELL_TIME: Duration = Duration::from_millis(400);

fn main() {
    let kernels = Kernels::detect().expect("detect kernels");
    let fma = peak::FmaPeak::new(kernels, 1);
    println!("kernels: {}", kernels.describe());
    println!(
        "{:>5} {:>5} {:>4} {:>9} {:>9} {:>8} {:>7} {:>9} {:>8}",
        "len", "heads", "dim", "median us", "best us", "GFLOP/s", "% peak", "bf16 us", "speedup"
    );
    for (heads, head_dim) in [(12, 32), (12, 64)] {
        for len in [64, 190, 512] {
            let shape = AttentionShape {
                len,
                heads,
                head_dim,
            };
            let hidden = shape.hidden();
            let qkv: Vec<f32> = (0..len * 3 * hidden)
                .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut ctx = vec![0.0f32; len * hidden];
            let mut scratch = vec![0.0f32; shape.scratch_len()];
            let mut run = || {
                kernels.attention(shape, &qkv, 3 * hidden, &mut ctx, hidden, &mut scratch);
            };
            let mut peaks = vec![fma.sample()];
            let samples = time(&mut run);
            peaks.push(fma.sample());
            let head = HeadAttention {
                rows: len,
                len,
                head_dim,
                ld_q: 3 * hidden,
                ld_kv: 3 * hidden,
                ld_out: hidden,
                bf16: true,
            };
            let mut ctx16 = vec![0.0f32; len * hidden];
            let mut run_bf16 = || {
                for h in 0..heads {
                    let d0 = h * head_dim;
                    // SAFETY: ctx16 holds len rows of `hidden` floats; this
                    // call alone writes columns d0..d0 + head_dim.
                    unsafe {
                        kernels.attention_head(
                            head,
                            &qkv[d0..],
                            &qkv[hidden + d0..],
                            &qkv[2 * hidden + d0..],
                            ctx16.as_mut_ptr().add(d0),
                            &mut scratch,
                        )
                    };
                }
            };
            let bf16 = peak::median(time(&mut run_bf16));
            let best = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let seconds = peak::median(samples);
            let flops = 4.0 * (len * len * hidden) as f64;
            let gflops = flops / seconds / 1e9;
            let pct = 100.0 * gflops / peak::median(peaks);
            println!(
                "{len:>5} {heads:>5} {head_dim:>4} {:>9.1} {:>9.1} {gflops:>8.1} {pct:>6.1}% {:>9.1} {:>7.2}x",
                seconds * 1e6,
                best * 1e6,
                bf16 * 1e6,
                seconds / bf16
            );
        }
    }
}

/// Runs `f` once to warm up, then for [`CELL_TIME`] and at least 5 times:
/// the seconds of each run.
fn time(f: &mut impl FnMut()) -> Vec<f64> {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < CELL_TIME || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples
}
