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

/// f32's unit roundoff, 2^-24.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Every int8 kernel this host runs, beside each ISA's f32 kernels
/// (`Kernels::int8_variants`): e.g. AVX-512 VNNI on zmm and on ymm, and
/// AVX2's `vpmaddubsw`, on an AVX-512 VNNI CPU.
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
