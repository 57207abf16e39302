//! Activations, softmax, layer norm and attention on every ISA the host has,
//! against the f64 reference.

mod common;

use common::{every_bf16_path, every_isa, filled, U};
use crossenc_kernels::gemm::bf16::{from_bf16, to_bf16};
use crossenc_kernels::{reference, Activation, AttentionShape, HeadAttention};

/// Inputs covering each function's regimes: around 0, the erf/tanh knees, the
/// saturated tails, and exp's under/overflow edges.
fn activation_inputs() -> Vec<f32> {
    let mut x: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.0025).collect(); // [-10, 10]
    x.extend([
        0.0, -0.0, 1e-30, -1e-30, 1e-8, 30.0, -30.0, 88.0, -88.0, 100.0, -100.0,
    ]);
    x
}

#[test]
fn activations_every_isa() {
    let x = activation_inputs();
    for kernels in every_isa() {
        for act in [
            Activation::GeluErf,
            Activation::GeluTanh,
            Activation::Relu,
            Activation::Tanh,
        ] {
            // Odd lengths exercise the masked tail.
            for len in [x.len(), 1, 7, 9, 17] {
                let mut y = x[..len].to_vec();
                kernels.activation(&mut y, act);
                let mut worst = 0.0f64;
                for (&xi, &yi) in x.iter().zip(&y) {
                    let want = reference::activation(xi as f64, act);
                    // erf (A&S 7.1.26) is within 1.5e-7 absolute, and GELU
                    // scales it by x/2; tanh within ~2e-7 absolute; plus f32
                    // rounding of the result.
                    let tol = 2e-7 * (1.0 + 0.5 * (xi as f64).abs()) + 4.0 * U * want.abs();
                    let err = (yi as f64 - want).abs();
                    worst = worst.max(err / tol);
                    assert!(
                        err <= tol,
                        "{} {act:?}({xi}) = {yi}, want {want} (err {err:e}, tol {tol:e})",
                        kernels.isa()
                    );
                }
                if len == x.len() {
                    println!(
                        "{} {act:?}: worst error {:.2} of tolerance",
                        kernels.isa(),
                        worst
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_every_isa() {
    for kernels in every_isa() {
        for len in [1, 2, 7, 8, 9, 16, 17, 31, 128, 384, 513] {
            let mut row: Vec<f32> = filled(len, len as u32).iter().map(|v| v * 20.0).collect();
            if len > 3 {
                row[1] = f32::NEG_INFINITY; // a masked score
            }
            let want = reference::softmax(&row);
            let input = row.clone();
            let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            kernels.softmax(&mut row);
            for (j, (&got, &want)) in row.iter().zip(&want).enumerate() {
                // exp within ~2 ulp of its argument, which is x - max rounded
                // to f32 (relative error u, amplified by |x - max| through
                // exp); then a sum of len terms and a division.
                let shift = if input[j].is_finite() {
                    (input[j] - max).abs() as f64
                } else {
                    0.0
                };
                let tol = (8.0 + len as f64 + shift) * U * want as f64 + 1e-30;
                assert!(
                    (got - want).abs() as f64 <= tol,
                    "{} softmax len {len}: [{j}] = {got}, want {want}",
                    kernels.isa()
                );
            }
            if len > 3 {
                assert_eq!(row[1], 0.0, "masked score must be exactly 0");
            }
        }
        // Fully masked: zeros, not NaN. Very negative but finite: still a distribution.
        let mut masked = vec![f32::NEG_INFINITY; 11];
        kernels.softmax(&mut masked);
        assert!(
            masked.iter().all(|&v| v == 0.0),
            "{} all-masked row",
            kernels.isa()
        );
        let mut low = vec![-1000.0f32; 11];
        kernels.softmax(&mut low);
        assert!(
            low.iter().all(|&v| (v - 1.0 / 11.0).abs() < 1e-6),
            "{} low row {low:?}",
            kernels.isa()
        );
        kernels.softmax(&mut []);
    }
}

#[test]
fn layer_norm_every_isa() {
    for kernels in every_isa() {
        for width in [1, 7, 8, 9, 33, 384, 768, 1000] {
            for offset in [0.0f32, 100.0] {
                // |mean| >> std with the offset: what the two-pass variance is for.
                let rows = 3;
                let x: Vec<f32> = filled(rows * width, width as u32)
                    .iter()
                    .map(|v| v + offset)
                    .collect();
                let gamma: Vec<f32> = filled(width, 5).iter().map(|v| 1.0 + 0.5 * v).collect();
                let beta = filled(width, 6);
                let want = reference::layer_norm(&x, width, &gamma, &beta, 1e-12);
                let mut got = x.clone();
                kernels.layer_norm(&mut got, width, &gamma, &beta, 1e-12);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    // The mean is off by ~width·u·|x|, which the normalisation
                    // divides by std (~0.58 here): relative to |x| / std.
                    let tol =
                        8.0 * (width as f64).sqrt() * U * (1.0 + offset as f64 / 0.5) * 2.0 + 1e-6;
                    assert!(
                        ((g - w) as f64).abs() <= tol,
                        "{} layer_norm width {width} offset {offset}: [{i}] = {g}, want {w}",
                        kernels.isa()
                    );
                }
            }
        }
    }
}

/// Q, K and V for `shape` (values in ±2) as rows of a wider buffer, as a
/// layer's fused QKV output is: the buffer, its row stride, and the same
/// rows unpadded with each value through `round`, for the reference.
fn padded_qkv(
    shape: AttentionShape,
    seed: u32,
    round: impl Fn(f32) -> f32,
) -> (Vec<f32>, usize, Vec<f32>) {
    let width = 3 * shape.hidden();
    let ld = width + 5;
    let padded: Vec<f32> = filled(shape.len * ld, seed)
        .iter()
        .map(|v| 2.0 * v)
        .collect();
    let mut qkv = Vec::with_capacity(shape.len * width);
    for row in padded.chunks(ld) {
        qkv.extend(row[..width].iter().map(|&x| round(x)));
    }
    (padded, ld, qkv)
}

#[test]
fn attention_every_isa() {
    for kernels in every_isa() {
        for (len, heads, head_dim) in [
            (1, 1, 4),
            (5, 2, 8),
            (33, 3, 32),
            (128, 12, 32),
            (70, 6, 64),
            // A head width with a tail past whole vectors.
            (45, 2, 12),
            // Several key blocks and query tiles (online softmax rescaling).
            (129, 1, 16),
            (300, 2, 32),
            (513, 1, 64),
        ] {
            let shape = AttentionShape {
                len,
                heads,
                head_dim,
            };
            let hidden = shape.hidden();
            let ld_ctx = hidden + 3;
            let (qkv_padded, ld_qkv, qkv) = padded_qkv(shape, len as u32, |x| x);
            let want = reference::attention(shape, &qkv);
            let mut ctx = vec![0.0f32; len * ld_ctx];
            let mut scratch = vec![0.0f32; shape.scratch_len()];
            kernels.attention(shape, &qkv_padded, ld_qkv, &mut ctx, ld_ctx, &mut scratch);
            for i in 0..len {
                for d in 0..hidden {
                    let (g, w) = (ctx[i * ld_ctx + d], want[i * hidden + d]);
                    // Scores carry k·u relative error into exp; the weighted
                    // sum of |v| <= 2 adds len·u.
                    let tol = 2.0 * (head_dim + len + 16) as f64 * U * 4.0;
                    assert!(
                        ((g - w) as f64).abs() <= tol,
                        "{} attention {shape:?}: ctx[{i}, {d}] = {g}, want {w}",
                        kernels.isa()
                    );
                }
            }
        }
    }
}

/// Attention with `bf16: true`: Q, K and V rounded to bf16 for the products
/// on paths with a bf16 dot product, f32 elsewhere. The reference gets the
/// inputs rounded to bf16 (so the products are the same numbers), which
/// leaves the probabilities' rounding: each p is off by at most 2^-9·p
/// (round to nearest in bf16's 8-bit significand), so the output, a
/// p-weighted mean of |v| <= 2, moves by at most 2^-9·2, plus f32's error as
/// in `attention_every_isa`.
#[test]
fn attention_bf16_products_every_path() {
    for kernels in every_bf16_path() {
        let dot = !kernels.bf16_path().ends_with("-widen");
        eprintln!(
            "attention bf16 on {} ({})",
            kernels.bf16_path(),
            if dot { "bf16 products" } else { "f32 products" }
        );
        for (len, heads, head_dim) in [
            (1, 1, 4),
            (2, 1, 2),
            (5, 2, 8),
            (33, 3, 32),
            (128, 12, 32),
            (70, 6, 64),
            (45, 2, 12),
            // Odd lengths across several key blocks and query tiles.
            (129, 1, 16),
            (301, 2, 32),
            (513, 1, 64),
            // Wider than one chunk of V's pairing.
            (41, 1, 128),
            // An odd head width stays f32.
            (20, 2, 7),
        ] {
            let shape = AttentionShape {
                len,
                heads,
                head_dim,
            };
            let hidden = shape.hidden();
            let ld_ctx = hidden + 3;
            let paired = dot && head_dim % 2 == 0;
            let rounded = |x: f32| if paired { from_bf16(to_bf16(x)) } else { x };
            let (qkv_padded, ld_qkv, qkv) = padded_qkv(shape, 7 + len as u32, rounded);
            let want = reference::attention(shape, &qkv);
            let mut ctx = vec![f32::NAN; len * ld_ctx];
            let mut scratch = vec![0.0f32; shape.scratch_len()];
            let head = HeadAttention {
                rows: len,
                len,
                head_dim,
                ld_q: ld_qkv,
                ld_kv: ld_qkv,
                ld_out: ld_ctx,
                bf16: true,
            };
            for h in 0..heads {
                let d0 = h * head_dim;
                // SAFETY: ctx holds len rows of ld_ctx >= hidden floats;
                // this call alone writes columns d0..d0 + head_dim.
                unsafe {
                    kernels.attention_head(
                        head,
                        &qkv_padded[d0..],
                        &qkv_padded[hidden + d0..],
                        &qkv_padded[2 * hidden + d0..],
                        ctx.as_mut_ptr().add(d0),
                        &mut scratch,
                    )
                };
            }
            let p_rounding = if paired { 2.0 * 2f64.powi(-9) } else { 0.0 };
            let tol = 2.0 * (head_dim + len + 16) as f64 * U * 4.0 + p_rounding;
            let mut worst = 0.0f64;
            for i in 0..len {
                for d in 0..hidden {
                    let (g, w) = (ctx[i * ld_ctx + d], want[i * hidden + d]);
                    let err = ((g - w) as f64).abs();
                    worst = worst.max(err);
                    assert!(
                        err <= tol,
                        "{} attention bf16 {shape:?}: ctx[{i}, {d}] = {g}, want {w} (tol {tol:e})",
                        kernels.bf16_path()
                    );
                }
            }
            if len == 128 {
                eprintln!("  {shape:?}: largest difference {worst:.2e} (tolerance {tol:.2e})");
            }
        }
    }
}
