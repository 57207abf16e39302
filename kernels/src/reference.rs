//! Plain, obviously-correct versions of the kernels: the oracle for tests.
//!
//! Every reduction accumulates in f64, so the reference is more accurate than
//! any fast path it checks.

use crate::{Activation, AttentionShape, WeightScales};

/// `C[m, n] = A[m, k] · B[k, n]` with row-major, contiguous operands.
pub fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a[i * k + p] as f64 * b[p * n + j] as f64;
            }
            c[i * n + j] = acc as f32;
        }
    }
    c
}

/// `C = A·B` with B (and, when `round_a`, A) rounded to bf16 first, as
/// [`crate::gemm::bf16`] defines it: `A: [m, k]`, `B: [k, n]`, the sum of
/// the (exact) products in f64.
pub fn gemm_bf16(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], round_a: bool) -> Vec<f32> {
    use crate::gemm::bf16::{from_bf16, to_bf16};
    let a: Vec<f32> = if round_a {
        a.iter().map(|&x| from_bf16(to_bf16(x))).collect()
    } else {
        a.to_vec()
    };
    let b: Vec<f32> = b.iter().map(|&x| from_bf16(to_bf16(x))).collect();
    gemm(m, k, n, &a, &b)
}

/// The error function in f64 (Taylor series near zero, continued fraction for
/// the tail), accurate to ~1e-15: far beyond what an f32 kernel needs.
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let y = if ax < 2.5 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = ax;
        let mut sum = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut frac = 0.0;
        for n in (1..60).rev() {
            frac = (n as f64 / 2.0) / (ax + frac);
        }
        1.0 - (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + frac)
    };
    y.copysign(x)
}

/// `act(x)` in f64.
pub fn activation(x: f64, act: Activation) -> f64 {
    match act {
        Activation::GeluErf => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
    }
}

/// Row-wise layer norm of `x: [rows, width]`.
pub fn layer_norm(x: &[f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(width) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (j, &v) in row.iter().enumerate() {
            out.push(((v as f64 - mean) * inv * gamma[j] as f64 + beta[j] as f64) as f32);
        }
    }
    out
}

/// Softmax of one row.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// Attention over one sequence, as [`crate::Kernels::attention`] computes it,
/// with contiguous `qkv: [len, 3·hidden]`; returns `ctx: [len, hidden]`.
pub fn attention(shape: AttentionShape, qkv: &[f32]) -> Vec<f32> {
    let AttentionShape {
        len,
        heads,
        head_dim,
    } = shape;
    let hidden = shape.hidden();
    let ld = 3 * hidden;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut ctx = vec![0.0; len * hidden];
    for h in 0..heads {
        for i in 0..len {
            let mut scores = vec![0.0f64; len];
            for (j, s) in scores.iter_mut().enumerate() {
                let mut acc = 0.0;
                for d in 0..head_dim {
                    acc += qkv[i * ld + h * head_dim + d] as f64
                        * qkv[j * ld + hidden + h * head_dim + d] as f64;
                }
                *s = acc * scale;
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for d in 0..head_dim {
                let mut acc = 0.0;
                for (j, s) in scores.iter().enumerate() {
                    acc +=
                        (s - max).exp() / sum * qkv[j * ld + 2 * hidden + h * head_dim + d] as f64;
                }
                ctx[i * hidden + h * head_dim + d] = acc as f32;
            }
        }
    }
    ctx
}

/// The int8 GEMM by its definition (see [`crate::qgemm`]): `x: [m, k]`
/// quantized per row in blocks of 32 along K
/// ([`crate::qgemm::quantize_block`], K padded with zeros), and `w: [n, k]`
/// (an `nn.Linear` weight) the same way, or per row over all of K with
/// [`WeightScales::PerColumn`]. Then per block the exact integer dot
/// product, folded in block order as `acc = fma(dot, sx·sw, acc)`, or
/// `acc = fma(dot, sx, acc)` and `acc·sw` at the end per column. Returns
/// `[m, n]`; every int8 kernel must match it bit for bit.
pub fn qgemm(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    weight_scales: WeightScales,
) -> Vec<f32> {
    use crate::qgemm::{quantize_block, QBLOCK};
    let kb = k.div_ceil(QBLOCK);
    if kb == 0 {
        return vec![0.0; m * n];
    }
    // Blocks of `len` values (one block of all of K, padded, when per row).
    let quantize = |rows: usize, data: &[f32], len: usize| {
        let (kp, per_row) = (kb * QBLOCK, kb * QBLOCK / len);
        let mut q = vec![0i8; rows * kp];
        let mut s = vec![0.0f32; rows * per_row];
        for r in 0..rows {
            for b in 0..per_row {
                let mut block = vec![0.0f32; len];
                let part = &data[r * k + (b * len).min(k)..r * k + ((b + 1) * len).min(k)];
                block[..part.len()].copy_from_slice(part);
                let dst = &mut q[r * kp + b * len..r * kp + (b + 1) * len];
                s[r * per_row + b] = quantize_block(&block, dst);
            }
        }
        (q, s)
    };
    let per_column = weight_scales == WeightScales::PerColumn;
    let (qx, sx) = quantize(m, x, QBLOCK);
    let (qw, sw) = quantize(n, w, if per_column { kb * QBLOCK } else { QBLOCK });
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for b in 0..kb {
                let xs = &qx[(i * kb + b) * QBLOCK..(i * kb + b + 1) * QBLOCK];
                let ws = &qw[(j * kb + b) * QBLOCK..(j * kb + b + 1) * QBLOCK];
                let dot: i32 = xs.iter().zip(ws).map(|(&a, &b)| a as i32 * b as i32).sum();
                let scale = if per_column {
                    sx[i * kb + b]
                } else {
                    sx[i * kb + b] * sw[j * kb + b]
                };
                acc = (dot as f32).mul_add(scale, acc);
            }
            c[i * n + j] = if per_column { acc * sw[j] } else { acc };
        }
    }
    c
}
