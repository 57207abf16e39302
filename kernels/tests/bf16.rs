//! The bf16 GEMM on every path the host has (AVX512_BF16's `vdpbf16ps`, and
//! bf16 storage widened for each ISA's f32 kernel) against
//! `reference::gemm_bf16`, on awkward sizes; thread counts and batch
//! composition never change a row's bits.

mod common;

use common::{every_bf16_path, filled, U};
use crossenc_kernels::{reference, Activation, Epilogue, Kernels, Threading};

/// (m, k, n), k even: 1, a pair, MR±1, NR±1, a KC block ± a pair, BERT shapes.
const SIZES: [(usize, usize, usize); 12] = [
    (1, 2, 1),
    (1, 32, 1),
    (5, 30, 15),
    (11, 34, 33),
    (13, 64, 31),
    (12, 66, 32),
    (48, 96, 64),
    (97, 384, 100),
    (50, 384, 1152),
    (33, 1536, 384),
    (3, 2050, 40),
    (130, 128, 17),
];

/// Whether `kernels`' bf16 path rounds A to bf16 (the `vdpbf16ps` path) or
/// keeps it in f32 (the widening paths).
fn rounds_a(kernels: &Kernels) -> bool {
    !kernels.bf16_path().ends_with("-widen")
}

/// |C - want| allowed: the products are exact in f32 on both paths, so only
/// the f32 sums round: at most k roundings of at most the running sum of
/// |products| each (the standard γ_k bound), with slack for the tail sums.
fn tolerance(k: usize, abs_sum: f32) -> f64 {
    2.0 * (k as f64 + 2.0) * U * abs_sum as f64 + 1e-30
}

#[test]
fn every_bf16_path_matches_the_reference() {
    for kernels in every_bf16_path() {
        let path = kernels.bf16_path();
        for (m, k, n) in SIZES {
            let x = filled(m * k, 1 + m as u32);
            let w = filled(n * k, 2 + n as u32);
            // B as [k, n] for the reference; the weight is [n, k].
            let b_kn: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
            let want = reference::gemm_bf16(m, k, n, &x, &b_kn, rounds_a(&kernels));
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let abs_sum = reference::gemm(m, k, n, &abs(&x), &abs(&b_kn));
            let b = kernels.pack_linear_bf16(&w, n, k).expect("even k");
            assert!(b.is_bf16());
            for threading in [Threading::Single, Threading::Auto] {
                let ldc = n + 3;
                let mut c = vec![f32::NAN; m * ldc];
                kernels.gemm(m, &x, k, &b, &mut c, ldc, Epilogue::None, threading);
                for i in 0..m {
                    for j in 0..n {
                        let (got, want) = (c[i * ldc + j] as f64, want[i * n + j] as f64);
                        let tol = tolerance(k, abs_sum[i * n + j]);
                        assert!(
                            (got - want).abs() <= tol,
                            "{path} m={m} k={k} n={n} {threading:?}: C[{i}, {j}] = {got}, want {want} (tol {tol:e})"
                        );
                    }
                    assert!(
                        c[i * ldc + n..(i + 1) * ldc].iter().all(|v| v.is_nan()),
                        "{path} m={m} k={k} n={n}: wrote past row {i}"
                    );
                }
            }
        }
        eprintln!(
            "{path} ({}): {} shapes within tolerance",
            kernels.isa(),
            SIZES.len()
        );
    }
}

#[test]
fn bf16_rows_do_not_depend_on_threads_or_the_rest_of_the_batch() {
    for kernels in every_bf16_path() {
        let (m, k, n) = (300, 384, 1152);
        let x = filled(m * k, 5);
        let w = filled(n * k, 6);
        let b = kernels.pack_linear_bf16(&w, n, k).unwrap();
        let mut one = vec![0.0; m * n];
        kernels.gemm(m, &x, k, &b, &mut one, n, Epilogue::None, Threading::Single);
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut many = vec![0.0; m * n];
            pool.install(|| {
                kernels.gemm(m, &x, k, &b, &mut many, n, Epilogue::None, Threading::Auto)
            });
            assert!(
                one == many,
                "{}: {threads} threads differ",
                kernels.bf16_path()
            );
        }
        // Rows 37..50 on their own: a different tile position and batch size.
        let (r0, rows) = (37, 13);
        let mut part = vec![0.0; rows * n];
        let xs = &x[r0 * k..(r0 + rows) * k];
        kernels.gemm(
            rows,
            xs,
            k,
            &b,
            &mut part,
            n,
            Epilogue::None,
            Threading::Auto,
        );
        assert!(
            part == one[r0 * n..(r0 + rows) * n],
            "{}: a row's result depends on its batch",
            kernels.bf16_path()
        );
    }
}

#[test]
fn bf16_epilogues_apply_to_the_bf16_product() {
    for kernels in every_bf16_path() {
        let (m, k, n) = (19, 100, 45);
        let x = filled(m * k, 7);
        let w = filled(n * k, 8);
        let bias = filled(n, 9);
        let residual = filled(m * n, 10);
        let b = kernels.pack_linear_bf16(&w, n, k).unwrap();
        let mut prod = vec![0.0; m * n];
        kernels.gemm(m, &x, k, &b, &mut prod, n, Epilogue::None, Threading::Auto);
        let mut c = vec![0.0; m * n];
        let ep = Epilogue::BiasResidual {
            bias: &bias,
            residual: &residual,
            ld: n,
        };
        kernels.gemm(m, &x, k, &b, &mut c, n, ep, Threading::Auto);
        for i in 0..m {
            for j in 0..n {
                let want = prod[i * n + j] + bias[j] + residual[i * n + j];
                assert_eq!(
                    c[i * n + j],
                    want,
                    "{} residual C[{i}, {j}]",
                    kernels.bf16_path()
                );
            }
        }
        let ep = Epilogue::BiasActivation(&bias, Activation::Relu);
        kernels.gemm(m, &x, k, &b, &mut c, n, ep, Threading::Auto);
        for i in 0..m {
            for j in 0..n {
                let want = (prod[i * n + j] + bias[j]).max(0.0);
                assert_eq!(
                    c[i * n + j],
                    want,
                    "{} relu C[{i}, {j}]",
                    kernels.bf16_path()
                );
            }
        }
    }
}

#[test]
fn bf16_halves_the_weight_and_refuses_an_odd_depth() {
    for kernels in every_bf16_path() {
        let (k, n) = (384, 1536);
        let w = filled(n * k, 11);
        let f32_bytes = kernels.pack_linear(&w, n, k).size_bytes();
        let bf16_bytes = kernels.pack_linear_bf16(&w, n, k).unwrap().size_bytes();
        assert!(
            bf16_bytes * 2 <= f32_bytes + 256,
            "{}: {bf16_bytes} bytes of bf16 for {f32_bytes} of f32",
            kernels.bf16_path()
        );
        assert!(kernels.pack_linear_bf16(&w, n, k - 1).is_none());
    }
}
