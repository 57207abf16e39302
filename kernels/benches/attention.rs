//! Fused attention throughput, one thread: every head of one sequence
//! (`Kernels::attention`) at MiniLM's shape (12 heads of 32) and BERT-base's
//! (12 of 64), in GFLOP/s (`Q·Kᵀ` and `P·V`, 4·len²·hidden) and as a share of
//! the one-thread FMA peak measured in the same run (before and after each
//! shape). Times are the median and the best of the runs.
//!
//! Run: `cargo bench -p crossenc-kernels --bench attention`
//! (`CROSSENC_ISA=avx2` etc. forces a path).

use std::time::{Duration, Instant};

use crossenc_kernels::{peak, AttentionShape, Kernels};

/// Time spent on one shape.
const CELL_TIME: Duration = Duration::from_millis(400);

fn main() {
    let kernels = Kernels::detect().expect("detect kernels");
    let fma = peak::FmaPeak::new(kernels, 1);
    println!("kernels: {}", kernels.describe());
    println!(
        "{:>5} {:>5} {:>4} {:>9} {:>9} {:>8} {:>7}",
        "len", "heads", "dim", "median us", "best us", "GFLOP/s", "% peak"
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
            run();
            let mut samples = Vec::new();
            let mut peaks = vec![fma.sample()];
            let start = Instant::now();
            while start.elapsed() < CELL_TIME || samples.len() < 5 {
                let t = Instant::now();
                run();
                samples.push(t.elapsed().as_secs_f64());
            }
            peaks.push(fma.sample());
            let best = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let seconds = peak::median(samples);
            let flops = 4.0 * (len * len * hidden) as f64;
            let gflops = flops / seconds / 1e9;
            let pct = 100.0 * gflops / peak::median(peaks);
            println!(
                "{len:>5} {heads:>5} {head_dim:>4} {:>9.1} {:>9.1} {gflops:>8.1} {pct:>6.1}%",
                seconds * 1e6,
                best * 1e6
            );
        }
    }
}
