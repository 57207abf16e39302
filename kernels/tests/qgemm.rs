//! The int8 GEMM on every path the host has against the definition in
//! `reference::qgemm`, bit for bit, on awkward sizes (1, MR±1, a block ±1,
//! BERT shapes), one thread and several, with weight scales per block and
//! per column; and its error against f32.

mod common;

use common::{every_int8_path, filled, reference_gemm};
use crossenc_kernels::{
    reference, Activation, Epilogue, Kernels, QuantizedActivations, Threading, WeightScales,
};

/// Both ways a weight's scales can run.
const SCHEMES: [WeightScales; 2] = [WeightScales::PerBlock, WeightScales::PerColumn];

const SIZES: [(usize, usize, usize); 12] = [
    (1, 1, 1),
    (1, 32, 1),
    (5, 31, 15),
    (6, 33, 32),
    (7, 64, 33),
    (13, 65, 31),
    (48, 96, 64),
    (97, 384, 100),
    (50, 384, 1152),
    (33, 1536, 384),
    (2, 8, 200),
    (130, 128, 17),
];

#[test]
fn every_int8_path_matches_the_definition_bit_for_bit() {
    for kernels in every_int8_path() {
        let path = kernels.int8_path();
        for ((m, k, n), scheme) in SIZES.into_iter().flat_map(|s| SCHEMES.map(|w| (s, w))) {
            let x = filled(m * k, 1 + m as u32);
            let w = filled(n * k, 2 + n as u32);
            let want = reference::qgemm(m, k, n, &x, &w, scheme);
            let b = kernels.quantize_linear(&w, n, k, scheme);
            for threading in [Threading::Single, Threading::Auto] {
                // A padded C: the stores must stay inside their rows.
                let ldc = n + 3;
                let mut c = vec![f32::NAN; m * ldc];
                kernels.qgemm(m, &x, k, &b, &mut c, ldc, Epilogue::None, threading);
                for i in 0..m {
                    for j in 0..n {
                        assert_eq!(
                            c[i * ldc + j].to_bits(),
                            want[i * n + j].to_bits(),
                            "{path} {scheme:?} m={m} k={k} n={n} {threading:?}: C[{i}, {j}] = {}, want {}",
                            c[i * ldc + j],
                            want[i * n + j]
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
            "{path} ({}): bit-exact on {} shapes, weight scales per block and per column",
            kernels.isa(),
            SIZES.len()
        );
    }
}

/// Blocks of zeros (a ReLU's output, a zeroed row) quantize to scale 0 on
/// every path, and blocks past the 16 whose scales the VNNI path divides at
/// once too; in the weights as well, which each path quantizes with its
/// activations' row code.
#[test]
fn zero_blocks_match_the_definition_bit_for_bit() {
    let (m, k, n) = (4, 32 * 20 + 7, 40);
    let mut x = filled(m * k, 5);
    x[32..64].fill(0.0); // row 0, block 1
    x[k + 32 * 17..k + 32 * 18].fill(0.0); // row 1, block 17 (the second group)
    x[2 * k..3 * k].fill(0.0); // row 2, all of it
    x[4 * k - 7..].fill(0.0); // row 3, its short last block
    let mut w = filled(n * k, 6);
    w[32 * 3..32 * 4].fill(0.0); // column 0, block 3
    w[5 * k + 32 * 16..5 * k + 32 * 17].fill(0.0); // column 5, block 16
    w[17 * k..18 * k].fill(0.0); // column 17, all of it
    for (kernels, scheme) in every_int8_path()
        .into_iter()
        .flat_map(|k| SCHEMES.map(|w| (k, w)))
    {
        let want = reference::qgemm(m, k, n, &x, &w, scheme);
        let b = kernels.quantize_linear(&w, n, k, scheme);
        let mut c = vec![f32::NAN; m * n];
        kernels.qgemm(m, &x, k, &b, &mut c, n, Epilogue::None, Threading::Single);
        for (i, (g, w)) in c.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{} {scheme:?}: C[{}, {}] = {g}, want {w}",
                kernels.int8_path(),
                i / n,
                i % n
            );
        }
    }
}

#[test]
fn int8_threads_give_the_same_bits() {
    for kernels in every_int8_path() {
        let (m, k, n) = (300, 384, 1152);
        let x = filled(m * k, 5);
        let w = filled(n * k, 6);
        let b = kernels.quantize_linear(&w, n, k, WeightScales::PerBlock);
        let mut one = vec![0.0; m * n];
        kernels.qgemm(m, &x, k, &b, &mut one, n, Epilogue::None, Threading::Single);
        for threads in [2, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut many = vec![0.0; m * n];
            pool.install(|| {
                kernels.qgemm(m, &x, k, &b, &mut many, n, Epilogue::None, Threading::Auto)
            });
            assert!(
                one == many,
                "{}: {threads} threads differ",
                kernels.int8_path()
            );
        }
    }
}

#[test]
fn int8_epilogues_match_f32_math_on_the_int8_product() {
    for kernels in every_int8_path() {
        let (m, k, n) = (19, 100, 45);
        let x = filled(m * k, 7);
        let w = filled(n * k, 8);
        let bias = filled(n, 9);
        let residual = filled(m * n, 10);
        let prod = reference::qgemm(m, k, n, &x, &w, WeightScales::PerColumn);
        let b = kernels.quantize_linear(&w, n, k, WeightScales::PerColumn);
        let mut c = vec![0.0; m * n];
        let ep = Epilogue::BiasResidual {
            bias: &bias,
            residual: &residual,
            ld: n,
        };
        kernels.qgemm(m, &x, k, &b, &mut c, n, ep, Threading::Auto);
        for i in 0..m {
            for j in 0..n {
                let want = prod[i * n + j] + bias[j] + residual[i * n + j];
                assert_eq!(
                    c[i * n + j],
                    want,
                    "{} residual C[{i}, {j}]",
                    kernels.int8_path()
                );
            }
        }
        kernels.qgemm(
            m,
            &x,
            k,
            &b,
            &mut c,
            n,
            Epilogue::BiasActivation(&bias, Activation::GeluErf),
            Threading::Auto,
        );
        for i in 0..m {
            for j in 0..n {
                let z = (prod[i * n + j] + bias[j]) as f64;
                let want = 0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2));
                let got = c[i * n + j] as f64;
                assert!(
                    (got - want).abs() <= 3e-6 + 1e-5 * want.abs(),
                    "{} gelu C[{i}, {j}] = {got}, want {want} (z = {z})",
                    kernels.int8_path()
                );
            }
        }
    }
}

/// `qgemm_requantize` then `qgemm_quantized` (the FFN's two GEMMs with the
/// intermediate kept in int8) give the bits of `qgemm` into f32 then `qgemm`,
/// on every path, one thread and several, at sizes around the chunk of 48
/// rows and the block of 32 columns; a reused buffer that shrinks in m or
/// grows in n is still right.
#[test]
fn requantized_chain_matches_two_qgemms_bit_for_bit() {
    let shapes: [(usize, usize, usize, usize); 8] = [
        (1, 32, 32, 16),
        (5, 31, 33, 7),
        (47, 64, 70, 40),
        (48, 96, 96, 32),
        (49, 40, 1536, 384),
        (130, 384, 1536, 384),
        (97, 33, 65, 31),
        (3, 384, 1536, 384),
    ];
    for kernels in every_int8_path() {
        let path = kernels.int8_path();
        let mut between = QuantizedActivations::new();
        for (m, k, f, n) in shapes {
            let x = filled(m * k, 11 + m as u32);
            // As the encoder has them: FFN-up per column, FFN-down per block.
            let up = kernels.quantize_linear(&filled(f * k, 12), f, k, WeightScales::PerColumn);
            let down = kernels.quantize_linear(&filled(n * f, 13), n, f, WeightScales::PerBlock);
            let (b_up, b_down) = (filled(f, 14), filled(n, 15));
            let residual = filled(m * n, 16);
            let down_epilogue = Epilogue::BiasResidual {
                bias: &b_down,
                residual: &residual,
                ld: n,
            };
            let up_epilogue = Epilogue::BiasActivation(&b_up, Activation::GeluErf);
            for threading in [Threading::Single, Threading::Auto] {
                let mut mid = vec![0.0; m * f];
                kernels.qgemm(m, &x, k, &up, &mut mid, f, up_epilogue, threading);
                let mut want = vec![0.0; m * n];
                kernels.qgemm(m, &mid, f, &down, &mut want, n, down_epilogue, threading);
                kernels.qgemm_requantize(m, &x, k, &up, up_epilogue, &mut between, threading);
                assert_eq!((between.rows(), between.k()), (m, f));
                let mut got = vec![f32::NAN; m * n];
                kernels.qgemm_quantized(&between, &down, &mut got, n, down_epilogue, threading);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(
                    same,
                    "{path} m={m} k={k} f={f} n={n} {threading:?}: bits differ"
                );
            }
        }
        eprintln!(
            "{path}: requantized chain bit-exact on {} shapes",
            shapes.len()
        );
    }
}

/// erf by its Taylor series, good to ~1e-11 on |x| <= 3.5 (the terms grow
/// to ~e^(x²) before they cancel); beyond, ±1 is within 7.5e-7, so GELU
/// within 2e-6 for |z| < 6: hence the 3e-6 absolute tolerance.
fn erf(x: f64) -> f64 {
    if x.abs() > 3.5 {
        return x.signum();
    }
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let mut sum = 0.0f64;
    let mut term = x;
    let mut n = 0.0f64;
    while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 5.0 {
        sum += term / (2.0 * n + 1.0);
        n += 1.0;
        term *= -x * x / n;
        if n > 200.0 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn int8_error_against_f32_is_small() {
    // Blocks of 32 at 8 bits: each product's relative error is about 2/127
    // per operand at worst, far less on average; the sum's error relative to
    // Σ|x·w| stays well under 1%.
    let kernels = Kernels::detect().unwrap();
    let (m, k, n) = (64, 384, 96);
    let x = filled(m * k, 11);
    let w = filled(n * k, 12);
    // W is `[n, k]` (nn.Linear's layout); the reference takes B = Wᵀ.
    let wt: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
    let (exact, magnitude) = reference_gemm(m, k, n, &x, k, &wt, n);
    for scheme in SCHEMES {
        let b = kernels.quantize_linear(&w, n, k, scheme);
        let mut c = vec![0.0; m * n];
        kernels.qgemm(m, &x, k, &b, &mut c, n, Epilogue::None, Threading::Auto);
        let worst = c
            .iter()
            .zip(exact.iter().zip(&magnitude))
            .map(|(&got, (&dot, &mag))| (got as f64 - dot).abs() / mag)
            .fold(0.0f64, f64::max);
        eprintln!(
            "int8 ({}, {scheme:?}): worst |error| / sum|x·w| = {worst:.2e}",
            kernels.int8_path()
        );
        assert!(worst < 5e-3, "{worst}");
    }
}

/// `quantize_linear_smoothed`: the GEMMs multiply A's columns by the inverse
/// of the smoothing before quantizing A, so the product is the definition's
/// on A and B scaled by hand, bit for bit, straight (`qgemm`) and through
/// `qgemm_requantize`.
#[test]
fn smoothed_weights_match_scaling_by_hand_bit_for_bit() {
    let shapes: [(usize, usize, usize); 6] = [
        (1, 32, 16),
        (5, 31, 33),
        (48, 96, 64),
        (97, 384, 100),
        (50, 384, 1152),
        (3, 384, 1536),
    ];
    for kernels in every_int8_path() {
        let path = kernels.int8_path();
        let mut between = QuantizedActivations::new();
        for ((m, k, n), scheme) in shapes.into_iter().flat_map(|s| SCHEMES.map(|w| (s, w))) {
            let x = filled(m * k, 21 + m as u32);
            let w = filled(n * k, 22 + n as u32);
            // Factors from 1/8 to 8, as an outlier feature's can be.
            let smooth: Vec<f32> = filled(k, 23).iter().map(|v| (v * 3.0).exp2()).collect();
            let b = kernels.quantize_linear_smoothed(w.clone(), n, k, scheme, &smooth);
            let inverse: Vec<f32> = smooth.iter().map(|s| 1.0 / s).collect();
            assert_eq!(b.input_scales(), &inverse[..]);
            let x_by_hand: Vec<f32> = x
                .chunks_exact(k)
                .flat_map(|row| row.iter().zip(&inverse).map(|(v, s)| v * s))
                .collect();
            let w_by_hand: Vec<f32> = w
                .chunks_exact(k)
                .flat_map(|row| row.iter().zip(&smooth).map(|(v, s)| v * s))
                .collect();
            let want = reference::qgemm(m, k, n, &x_by_hand, &w_by_hand, scheme);
            let plain = kernels.quantize_linear(&w_by_hand, n, k, scheme);
            let bias = filled(n, 24);
            let epilogue = Epilogue::BiasActivation(&bias, Activation::GeluErf);
            // What reads the requantized rows.
            let down = kernels.quantize_linear(&filled(16 * n, 25), 16, n, WeightScales::PerBlock);
            for threading in [Threading::Single, Threading::Auto] {
                let mut c = vec![f32::NAN; m * n];
                kernels.qgemm(m, &x, k, &b, &mut c, n, Epilogue::None, threading);
                assert!(
                    c.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()),
                    "{path} {scheme:?} m={m} k={k} n={n} {threading:?}: qgemm's bits differ"
                );
                // Requantized: the same bits as the hand-scaled product's.
                let mut chain = |x: &[f32], b| {
                    kernels.qgemm_requantize(m, x, k, b, epilogue, &mut between, threading);
                    let mut out = vec![f32::NAN; m * 16];
                    kernels.qgemm_quantized(
                        &between,
                        &down,
                        &mut out,
                        16,
                        Epilogue::None,
                        threading,
                    );
                    out
                };
                let (want_chain, got_chain) = (chain(&x_by_hand, &plain), chain(&x, &b));
                assert!(
                    got_chain
                        .iter()
                        .zip(&want_chain)
                        .all(|(g, w)| g.to_bits() == w.to_bits()),
                    "{path} {scheme:?} m={m} k={k} n={n} {threading:?}: requantized bits differ"
                );
            }
        }
        eprintln!(
            "{path}: smoothed weights bit-exact on {} shapes",
            shapes.len()
        );
    }
}

#[test]
#[should_panic(expected = "finite positive")]
fn smoothing_by_zero_is_refused() {
    let kernels = Kernels::detect().unwrap();
    let mut smooth = vec![1.0; 32];
    smooth[7] = 0.0;
    kernels.quantize_linear_smoothed(filled(32 * 4, 1), 4, 32, WeightScales::PerColumn, &smooth);
}
