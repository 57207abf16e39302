//! Every GEMM path the host has against the f64 reference, on awkward sizes
//! (0, 1, MR±1, NR±1, KC±1), BERT's shapes, strided operands and each epilogue.
//!
//! Tolerance: a length-k dot product in f32 is within `k·u·Σ|a_p·b_p|` of the
//! exact value (u = 2^-24; the standard bound for any summation order, FMA or
//! not), so each element is checked against that bound computed in f64. It
//! scales with the reduction length and with the magnitudes actually summed,
//! and is tight enough to catch a single dropped or doubled term.

mod common;

use common::{emulated, every_isa, filled, reference_gemm, U};
use crossenc_kernels::{reference, Activation, Epilogue, Kernels, Threading};

#[derive(Clone, Copy, Debug)]
enum Ep {
    None,
    Bias,
    Act(Activation),
    Residual,
}

/// One case: `C = epilogue(A·B)` with padded strides, checked element-wise,
/// and the padding of C checked untouched.
fn check(kernels: Kernels, m: usize, k: usize, n: usize, ep: Ep, threading: Threading) {
    let (lda, ldc, ldr) = (k + 3, n + 5, n + 2);
    let a = filled(m.max(1) * lda, 1 + m as u32);
    let weight = filled(n * k, 2 + k as u32); // [n, k], nn.Linear layout
    let mut b = vec![0.0; k * n]; // [k, n]
    for j in 0..n {
        for p in 0..k {
            b[p * n + j] = weight[j * k + p];
        }
    }
    let bias = filled(n, 3);
    let residual = filled(m.max(1) * ldr, 4);
    let packed = kernels.pack_linear(&weight, n, k);
    const SENTINEL: f32 = 1234.5;
    let mut c = vec![SENTINEL; m.max(1) * ldc];
    let epilogue = match ep {
        Ep::None => Epilogue::None,
        Ep::Bias => Epilogue::Bias(&bias),
        Ep::Act(act) => Epilogue::BiasActivation(&bias, act),
        Ep::Residual => Epilogue::BiasResidual {
            bias: &bias,
            residual: &residual,
            ld: ldr,
        },
    };
    kernels.gemm(m, &a, lda, &packed, &mut c, ldc, epilogue, threading);

    let (exact, magnitude) = reference_gemm(m, k, n, &a, lda, &b, n);
    let case = format!("{} m={m} k={k} n={n} {ep:?} {threading:?}", kernels.isa());
    for i in 0..m {
        for j in 0..n {
            let dot = exact[i * n + j];
            let dot_tol = k as f64 * U * magnitude[i * n + j];
            let (want, tol) = match ep {
                Ep::None => (dot, dot_tol),
                Ep::Bias => {
                    let y = dot + bias[j] as f64;
                    (y, dot_tol + 2.0 * U * y.abs())
                }
                Ep::Residual => {
                    let y = dot + bias[j] as f64 + residual[i * ldr + j] as f64;
                    (y, dot_tol + 4.0 * U * (y.abs() + 2.0))
                }
                Ep::Act(act) => {
                    // |act'| <= 1.13 (GELU's maximum slope); then the vector
                    // activation's own error, ~2e-7 absolute near 0.
                    let x = dot + bias[j] as f64;
                    let y = reference::activation(x, act);
                    (
                        y,
                        1.2 * (dot_tol + 2.0 * U * x.abs()) + 4e-7 * (1.0 + y.abs()),
                    )
                }
            };
            let got = c[i * ldc + j] as f64;
            assert!(
                (got - want).abs() <= tol,
                "{case}: C[{i}, {j}] = {got}, want {want} (diff {:e} > tol {tol:e})",
                (got - want).abs()
            );
        }
        // Every row's padding, the last row's included.
        for j in n..ldc {
            assert_eq!(
                c[i * ldc + j],
                SENTINEL,
                "{case}: padding C[{i}, {j}] overwritten"
            );
        }
    }
}

#[test]
fn awkward_sizes_every_isa() {
    for kernels in every_isa() {
        let b = kernels.gemm_blocking();
        let ms = [0, 1, b.mr - 1, b.mr, b.mr + 1, 2 * b.mr + 1];
        let ns = [0, 1, b.nr - 1, b.nr, b.nr + 1, 3 * b.nr - 1];
        let ks = [0, 1, 2, b.kc - 1, b.kc, b.kc + 1];
        let mut cases = 0;
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    check(kernels, m, k, n, Ep::None, Threading::Single);
                    cases += 1;
                }
            }
        }
        println!("{}: {cases} awkward-size cases", kernels.isa());
    }
}

#[test]
fn blocks_edges_every_isa() {
    // Past one MC block of rows and several K blocks, with edge tiles in both.
    for kernels in every_isa() {
        let b = kernels.gemm_blocking();
        // MC is ~30 rows at this depth, so 300 rows are ten A blocks.
        check(
            kernels,
            300,
            2 * b.kc + 3,
            2 * b.nr + 3,
            Ep::None,
            Threading::Single,
        );
        check(
            kernels,
            301,
            b.kc + 1,
            b.nr + 1,
            Ep::Residual,
            Threading::Auto,
        );
    }
}

#[test]
fn bert_shapes_every_isa() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for kernels in every_isa() {
        for (k, n) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
            for m in [1, 64, 77] {
                pool.install(|| check(kernels, m, k, n, Ep::None, Threading::Auto));
            }
        }
        // One tall product, the benchmark's M, split over threads (256 rows
        // under an emulator: over half of this test's emulated time).
        let m = if emulated() { 256 } else { 2048 };
        pool.install(|| check(kernels, m, 384, 384, Ep::Bias, Threading::Auto));
    }
    if emulated() {
        eprintln!("emulated: bert_shapes_every_isa: the tall product has 256 rows, not 2,048");
    }
}

#[test]
fn epilogues_every_isa() {
    for kernels in every_isa() {
        for ep in [
            Ep::Bias,
            Ep::Residual,
            Ep::Act(Activation::GeluErf),
            Ep::Act(Activation::GeluTanh),
            Ep::Act(Activation::Relu),
            Ep::Act(Activation::Tanh),
        ] {
            for (m, k, n) in [(1, 1, 1), (7, 33, 19), (64, 384, 96)] {
                check(kernels, m, k, n, ep, Threading::Single);
            }
            // K over one block: the epilogue must run once, after the last block.
            let b = kernels.gemm_blocking();
            check(kernels, 13, 2 * b.kc + 1, b.nr + 3, ep, Threading::Single);
        }
    }
}

#[test]
fn threads_split_like_single_thread() {
    // Odd pool sizes and shapes that split both N and M unevenly.
    for kernels in every_isa() {
        for threads in [2, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (m, k, n) in [(300, 200, 170), (1000, 64, 40), (40, 384, 1152)] {
                pool.install(|| check(kernels, m, k, n, Ep::Residual, Threading::Auto));
            }
        }
    }
}

#[test]
fn packed_for_another_isa_is_refused() {
    let all = every_isa();
    if all.len() < 2 {
        eprintln!("skipped: only one ISA on this CPU");
        return;
    }
    let (packer, user) = (all[0], all[all.len() - 1]);
    let packed = packer.pack_linear(&[1.0; 4], 2, 2);
    let result = std::panic::catch_unwind(|| {
        let mut c = [0.0; 2];
        user.gemm(
            1,
            &[1.0, 1.0],
            2,
            &packed,
            &mut c,
            2,
            Epilogue::None,
            Threading::Single,
        );
    });
    assert!(
        result.is_err(),
        "{} kernels accepted a matrix packed for {}",
        user.isa(),
        packer.isa()
    );
}
