//! `crossenc bench model`: end-to-end speed on a workload, tokenization
//! included, in pairs/s, tokens/s, GFLOP/s and % of this machine's measured
//! FMA peak.
//!
//! Run: `crossenc bench model --model DIR [--workload seed20|bulk|latency|long] [--json] [--runs N]`.

use std::io::{self, Write};
use std::time::Instant;

use crossenc_kernels::{peak, Kernels};

use super::workloads::{self, Workload};
use crossenc::{BertConfig, CrossEncoder, Result};

/// One workload's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelRow {
    /// Workload name.
    pub workload: &'static str,
    /// Pairs scored per pass.
    pub pairs: usize,
    /// Tokens per pass (after truncation, special tokens included).
    pub tokens: usize,
    /// Median wall time of one pass, seconds.
    pub seconds: f64,
    /// `pairs / seconds`.
    pub pairs_per_s: f64,
    /// `tokens / seconds`.
    pub tokens_per_s: f64,
    /// FLOPs of the full model on these shapes (attention included) / seconds / 1e9.
    pub gflops: f64,
    /// `100 · gflops / peak`, the peak of the precision in use (the FMA loop
    /// for f32; for int8 the int8 instruction's loop, so the f32 parts of an
    /// int8 model, attention and layer norm, count against the int8 peak)
    /// measured in the same run on as many threads.
    pub pct_peak: f64,
}

/// FLOPs the full model spends on one sequence of `len` tokens: every linear
/// layer (2·m·k·n), attention's Q·Kᵀ and P·V (2·len²·hidden each), pooler
/// and classifier. Work crossenc skips (the last layer's non-`[CLS]` rows) is
/// still counted, as the definition asks.
pub fn sequence_flops(c: &BertConfig, len: usize) -> f64 {
    let (l, h, f) = (len as f64, c.hidden_size as f64, c.intermediate_size as f64);
    let linear = 2.0 * l * h * (3.0 * h + h + 2.0 * f);
    let attention = 2.0 * 2.0 * l * l * h;
    let head = 2.0 * h * h + 2.0 * h * c.num_labels() as f64;
    c.num_hidden_layers as f64 * (linear + attention) + head
}

/// Runs `workload` `runs` times (after one warm-up) and measures.
pub fn run_workload(
    model: &CrossEncoder,
    workload: &Workload,
    runs: usize,
    peak_gflops: f64,
) -> Result<ModelRow> {
    let encoded = model.encode_pairs(&workload.pairs)?;
    let tokens: usize = encoded.iter().map(|e| e.input_ids.len()).sum();
    let flops: f64 = encoded
        .iter()
        .map(|e| sequence_flops(model.config(), e.input_ids.len()))
        .sum();
    model.predict_all(&workload.pairs)?; // warm-up: scratch, page faults, thread wake-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        std::hint::black_box(model.predict_all(&workload.pairs)?);
        times.push(start.elapsed().as_secs_f64());
    }
    let seconds = peak::median(times);
    let gflops = flops / seconds / 1e9;
    Ok(ModelRow {
        workload: workload.name,
        pairs: workload.pairs.len(),
        tokens,
        seconds,
        pairs_per_s: workload.pairs.len() as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        gflops,
        pct_peak: 100.0 * gflops / peak_gflops,
    })
}

/// Measures the peak of the precision in use on `threads` threads: median
/// of `samples` runs of the int8 kernel's instruction loop (`vpdpbusd` on
/// AVX-512 VNNI, `vpmaddwd` on AVX2) for int8 where the path has one, else
/// of the FMA loop.
pub fn measure_peak(model: &CrossEncoder, threads: usize, samples: usize) -> io::Result<f64> {
    let kernels = Kernels::detect().map_err(io::Error::other)?;
    let peak_loop = super::peak_loop::Peak::new(kernels, model.precision(), threads)?;
    let sample = || peak_loop.sample();
    Ok(peak::median(
        (0..samples.max(1)).map(|_| sample()).collect(),
    ))
}

/// Runs the named workloads and prints a table (or JSON lines).
pub fn run(
    model: &CrossEncoder,
    names: &[&str],
    runs: Option<usize>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let threads = model.threads();
    let mut peak_before = measure_peak(model, threads, 5)?;
    if !json {
        writeln!(
            out,
            "crossenc bench model: {} layers, hidden {}, precision {}, kernels {}, {threads} thread(s), {} peak {peak_before:.1} G(FL)OP/s",
            model.config().num_hidden_layers,
            model.config().hidden_size,
            model.precision().name(),
            model.kernel_path(),
            super::peak_loop::Peak::new(Kernels::detect().map_err(io::Error::other)?, model.precision(), 1)?.name(),
        )?;
        writeln!(
            out,
            "{:<8} {:>6} {:>8} {:>9} {:>9} {:>10} {:>8} {:>7}",
            "workload", "pairs", "tokens", "seconds", "pairs/s", "tokens/s", "GFLOP/s", "% peak"
        )?;
    }
    for name in names {
        let workload = workloads::workload(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown workload {name:?} (known: {})",
                workloads::NAMES.join(", ")
            )
        })?;
        // Big workloads take seconds a pass; small ones get more runs for a steadier median.
        let runs = runs.unwrap_or(match *name {
            "bulk" => 3,
            "long" => 5,
            _ => 15,
        });
        let row = run_workload(model, &workload, runs, peak_before)?;
        // The peak around each workload, so a noisy neighbour moves both.
        let peak_after = measure_peak(model, threads, 5)?;
        let peak = (peak_before + peak_after) / 2.0;
        let row = ModelRow {
            pct_peak: 100.0 * row.gflops / peak,
            ..row
        };
        peak_before = peak_after;
        if json {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            writeln!(
                out,
                "{:<8} {:>6} {:>8} {:>9.4} {:>9.1} {:>10.0} {:>8.1} {:>6.1}%",
                row.workload,
                row.pairs,
                row.tokens,
                row.seconds,
                row.pairs_per_s,
                row.tokens_per_s,
                row.gflops,
                row.pct_peak
            )?;
        }
    }
    Ok(())
}
