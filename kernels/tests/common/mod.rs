//! Shared by the kernel tests: every ISA the host has, and deterministic data.
#![allow(dead_code)]

use crossenc_kernels::{Isa, Kernels};

/// Kernels for every ISA this host runs; prints a line for each one skipped.
pub fn every_isa() -> Vec<Kernels> {
    Isa::ALL
        .into_iter()
        .filter_map(|isa| match Kernels::with_isa(isa) {
            Ok(kernels) => Some(kernels),
            Err(_) => {
                eprintln!("skipped: {isa} not available on this CPU");
                None
            }
        })
        .collect()
}

/// `len` values in [-1, 1) from a xorshift seeded by `seed`.
pub fn filled(len: usize, seed: u32) -> Vec<f32> {
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

/// Whether a cargo runner for this architecture (an emulator: CI sets
/// `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER="qemu-aarch64 -cpu max"`)
/// runs these tests: the largest products then shrink, saying so on stderr.
pub fn emulated() -> bool {
    let prefix = format!(
        "CARGO_TARGET_{}_",
        std::env::consts::ARCH.to_ascii_uppercase()
    );
    std::env::vars().any(|(key, value)| {
        key.starts_with(&prefix) && key.ends_with("_RUNNER") && !value.trim().is_empty()
    })
}

/// f32's unit roundoff, 2^-24.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Every int8 kernel this host runs, beside each ISA's f32 kernels
/// (`Kernels::int8_variants`): e.g. AVX-512 VNNI on zmm and on ymm, and
/// AVX2's `vpmaddwd`, on an AVX-512 VNNI CPU.
pub fn every_int8_path() -> Vec<Kernels> {
    let mut all: Vec<Kernels> = Vec::new();
    for kernels in every_isa().iter().flat_map(Kernels::int8_variants) {
        if !all
            .iter()
            .any(|k| k.isa() == kernels.isa() && k.int8_path() == kernels.int8_path())
        {
            all.push(kernels);
        }
    }
    all
}

/// Every bf16 path this host runs, beside each ISA's f32 kernels
/// (`Kernels::bf16_variants`): e.g. `vdpbf16ps` and the AVX-512 widening on
/// an AVX512_BF16 CPU.
pub fn every_bf16_path() -> Vec<Kernels> {
    every_isa()
        .iter()
        .flat_map(Kernels::bf16_variants)
        .collect()
}

/// The f64 reference of `A[m, k] · B[k, n]` with row strides, plus the sum of
/// |products| each element's error bound is measured against.
pub fn reference_gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut exact = vec![0.0; m * n];
    let mut magnitude = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut acc, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let prod = a[i * lda + p] as f64 * b[p * ldb + j] as f64;
                acc += prod;
                abs += prod.abs();
            }
            exact[i * n + j] = acc;
            magnitude[i * n + j] = abs;
        }
    }
    (exact, magnitude)
}
