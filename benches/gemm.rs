//! GEMM throughput on BERT's shapes: the same table as `crossenc bench gemm`
//! (GFLOP/s, % of the FMA peak measured in the same run, ratio to matrixmultiply).
//!
//! Run: `cargo bench --bench gemm` (append `-- --json` for JSON lines,
//! `-- --threads N` for one thread count, `-- --precision int8|bf16` for int8 or bf16, `-- --rounds R`
//! for the paired rounds per shape; `CROSSENC_ISA=avx2` etc. forces a path).

// The same code as the CLI's, compiled into this benchmark: it is no part of
// the library's API.
#[path = "../src/bin/crossenc/bench/gemm.rs"]
mod gemm;
#[path = "../src/bin/crossenc/bench/peak_loop.rs"]
mod peak_loop;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok());
    let precision = if args.iter().any(|a| a == "int8") {
        crossenc::Precision::Int8
    } else if args.iter().any(|a| a == "bf16") {
        crossenc::Precision::Bf16
    } else {
        crossenc::Precision::F32
    };
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(gemm::DEFAULT_ROUNDS);
    gemm::run(
        threads,
        json,
        precision,
        rounds,
        &mut std::io::stdout().lock(),
    )
}
