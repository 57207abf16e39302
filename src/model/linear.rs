//! The two building blocks every layer is made of: `nn.Linear` (a weight
//! packed once for the GEMM, its bias fused into the GEMM's epilogue) and
//! `nn.LayerNorm`.

use crossenc_kernels::{
    Epilogue, Kernels, PackedMatrix, QuantizedActivations, QuantizedMatrix, Threading, WeightScales,
};

use crate::error::Result;
use crate::load::Precision;
use crate::weights::Weights;

/// Rows per parallel task for row-wise work (embeddings, layer norm).
pub(crate) const ROWS_PER_TASK: usize = 32;

/// What a linear's weight is kept as and computed in: the model's
/// [`Precision`], with int8's choice of weight scales where it is int8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WeightFormat {
    /// f32 (the heads and ELECTRA's embedding projection always).
    F32,
    /// bf16 pairs.
    Bf16,
    /// 8 bits with these scales.
    Int8(WeightScales),
}

impl WeightFormat {
    /// `precision`, with `int8_scales` if it is int8.
    pub(crate) fn new(precision: Precision, int8_scales: WeightScales) -> WeightFormat {
        match precision {
            Precision::F32 => WeightFormat::F32,
            Precision::Bf16 => WeightFormat::Bf16,
            Precision::Int8 => WeightFormat::Int8(int8_scales),
        }
    }
}

/// int8: how much of each input feature's range moves from the activations
/// to the weights of the linears that read a layer norm's output (query,
/// key, value and FFN-up): SmoothQuant's migration strength α, the feature's
/// weights multiplied by `reach^α / max|w|^(1-α)` and its activations
/// divided by it, where `reach = |β| + REACH_GAMMAS·|γ|` of the layer norm
/// stands in for the activations' largest magnitude (no calibration data).
/// With blocks of 32 alone, the few features where BERT's layer norms put
/// large values (strongest at `[CLS]` and `[SEP]`) take most of a block's 8
/// bits, which a long text's mean pooling averages away and a text of a few
/// tokens does not. Each of query, key and value has its own factors (one
/// set for the three was worse than none), so int8 runs them as three
/// products. Chosen by fake quantization in PyTorch
/// (tools/int8_smoothing_study.py): on all-MiniLM-L6-v2, the worst embedding
/// cosine to f32 over the 27 texts of tests/data/real went from 0.99805 (the
/// empty text) to 0.99918, and over 300 corpus documents from 0.99914 to
/// 0.99956; α = 0.5, or a reach of 2|γ|, gave 0.99904-0.99906 on the 27.
const SMOOTH_ALPHA: f32 = 0.3;

/// See [`SMOOTH_ALPHA`].
const REACH_GAMMAS: f32 = 4.0;

/// The per-feature factors of [`SMOOTH_ALPHA`] for a linear whose input
/// reaches `reach` (see [`LayerNorm::reach`]) and whose weight is `[out, input]`.
fn smoothing(reach: &[f32], weight: &[f32]) -> Vec<f32> {
    let input = reach.len();
    let mut w_max = vec![0.0f32; input];
    for row in weight.chunks_exact(input) {
        for (m, w) in w_max.iter_mut().zip(row) {
            *m = m.max(w.abs());
        }
    }
    reach
        .iter()
        .zip(&w_max)
        .map(|(r, w)| {
            let s = r.max(1e-5).powf(SMOOTH_ALPHA) / w.max(1e-5).powf(1.0 - SMOOTH_ALPHA);
            // A degenerate feature (zero weights and norm) keeps its scale.
            if s.is_finite() && s > 0.0 {
                s
            } else {
                1.0
            }
        })
        .collect()
}

/// `nn.Linear`: a weight packed for the kernels, and its bias.
pub(crate) struct Linear {
    weight: Weight,
    bias: Vec<f32>,
}

/// A linear layer's weight in the precision it computes in; only that copy
/// is kept.
enum Weight {
    /// f32, or bf16 pairs ([`PackedMatrix::is_bf16`]): the same GEMM runs both.
    Packed(PackedMatrix),
    /// 8 bits, scaled per column or per column and block of 32 along K
    /// (see `crossenc_kernels::qgemm`).
    Int8(QuantizedMatrix),
}

impl Weight {
    fn pack(k: &Kernels, weight: &[f32], out: usize, input: usize, format: WeightFormat) -> Weight {
        match format {
            WeightFormat::F32 => Weight::Packed(k.pack_linear(weight, out, input)),
            // An odd input width (no BERT has one) cannot be paired: f32.
            WeightFormat::Bf16 => Weight::Packed(
                k.pack_linear_bf16(weight, out, input)
                    .unwrap_or_else(|| k.pack_linear(weight, out, input)),
            ),
            WeightFormat::Int8(scales) => {
                Weight::Int8(k.quantize_linear(weight, out, input, scales))
            }
        }
    }

    fn k(&self) -> usize {
        match self {
            Weight::Packed(w) => w.k(),
            Weight::Int8(w) => w.k(),
        }
    }

    fn n(&self) -> usize {
        match self {
            Weight::Packed(w) => w.n(),
            Weight::Int8(w) => w.n(),
        }
    }
}

impl Linear {
    /// Loads `{name}.weight: [out, input]` and `{name}.bias: [out]`, the
    /// weight kept as `format`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load(
        k: &Kernels,
        w: &Weights<'_>,
        prefix: &str,
        name: &str,
        out: usize,
        input: usize,
        format: WeightFormat,
    ) -> Result<Linear> {
        let weight = w.with(prefix, &format!("{name}.weight"), &[out, input], |weight| {
            Weight::pack(k, weight, out, input, format)
        })?;
        let bias = w.get(prefix, &format!("{name}.bias"), &[out])?;
        Ok(Linear { weight, bias })
    }

    /// Several linears with the same input, fused into one wider matrix
    /// (query, key and value become one `[input, 3·out]` product); an int8
    /// one smoothed for inputs that reach `reach` if given
    /// ([`SMOOTH_ALPHA`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load_fused(
        k: &Kernels,
        w: &Weights<'_>,
        prefix: &str,
        names: &[&str],
        out: usize,
        input: usize,
        format: WeightFormat,
        reach: Option<&[f32]>,
    ) -> Result<Linear> {
        // Sized once the first part has passed its shape check: a config's
        // sizes alone must not decide an allocation.
        let (mut weight, mut bias) = (Vec::new(), Vec::new());
        for name in names {
            w.with(prefix, &format!("{name}.weight"), &[out, input], |part| {
                weight.reserve_exact(part.len() * names.len());
                weight.extend_from_slice(part)
            })?;
            bias.extend(w.get(prefix, &format!("{name}.bias"), &[out])?);
        }
        Ok(Linear {
            weight: match (format, reach) {
                // int8 smoothed (SMOOTH_ALPHA): the weight scaled in place.
                (WeightFormat::Int8(scales), Some(reach)) => {
                    let smooth = smoothing(reach, &weight);
                    let out = names.len() * out;
                    Weight::Int8(k.quantize_linear_smoothed(weight, out, input, scales, &smooth))
                }
                _ => Weight::pack(k, &weight, names.len() * out, input, format),
            },
            bias,
        })
    }

    /// Output width.
    pub(crate) fn out(&self) -> usize {
        self.weight.n()
    }

    /// `y[m, out] = x[m, input] · Wᵀ + b`, then `act` if given.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        m: usize,
        x: &[f32],
        y: &mut [f32],
        act: Option<crossenc_kernels::Activation>,
    ) {
        let epilogue = match act {
            None => Epilogue::Bias(&self.bias),
            Some(act) => Epilogue::BiasActivation(&self.bias, act),
        };
        self.gemm(k, m, x, y, self.out(), epilogue);
    }

    /// `y[m, out] = x[m, input] · Wᵀ + b` into rows `ldy` floats apart (a
    /// column block of a wider matrix).
    pub(crate) fn forward_strided(
        &self,
        k: &Kernels,
        m: usize,
        x: &[f32],
        y: &mut [f32],
        ldy: usize,
    ) {
        self.gemm(k, m, x, y, ldy, Epilogue::Bias(&self.bias));
    }

    /// `y[m, out] = x[m, input] · Wᵀ + b + residual[m, out]`.
    pub(crate) fn forward_residual(
        &self,
        k: &Kernels,
        m: usize,
        x: &[f32],
        residual: &[f32],
        y: &mut [f32],
    ) {
        let epilogue = Epilogue::BiasResidual {
            bias: &self.bias,
            residual,
            ld: self.out(),
        };
        self.gemm(k, m, x, y, self.out(), epilogue);
    }

    /// `out = act(x · Wᵀ + b)` quantized for the next int8 GEMM
    /// ([`Linear::forward_residual_quantized`]), never held in f32.
    ///
    /// # Panics
    /// If the weight is not int8 ([`Linear::is_int8`]).
    pub(crate) fn forward_requantize(
        &self,
        k: &Kernels,
        m: usize,
        x: &[f32],
        act: crossenc_kernels::Activation,
        out: &mut QuantizedActivations,
    ) {
        let Weight::Int8(w) = &self.weight else {
            panic!("forward_requantize needs an int8 weight");
        };
        let epilogue = Epilogue::BiasActivation(&self.bias, act);
        k.qgemm_requantize(m, x, w.k(), w, epilogue, out, Threading::Auto);
    }

    /// `y = x · Wᵀ + b + residual` for `x` from [`Linear::forward_requantize`].
    ///
    /// # Panics
    /// If the weight is not int8.
    pub(crate) fn forward_residual_quantized(
        &self,
        k: &Kernels,
        x: &QuantizedActivations,
        residual: &[f32],
        y: &mut [f32],
    ) {
        let Weight::Int8(w) = &self.weight else {
            panic!("forward_residual_quantized needs an int8 weight");
        };
        let epilogue = Epilogue::BiasResidual {
            bias: &self.bias,
            residual,
            ld: self.out(),
        };
        k.qgemm_quantized(x, w, y, self.out(), epilogue, Threading::Auto);
    }

    /// Whether the weight is held in int8.
    pub(crate) fn is_int8(&self) -> bool {
        matches!(self.weight, Weight::Int8(_))
    }

    fn gemm(
        &self,
        k: &Kernels,
        m: usize,
        x: &[f32],
        y: &mut [f32],
        ldy: usize,
        epilogue: Epilogue<'_>,
    ) {
        let input = self.weight.k();
        match &self.weight {
            Weight::Packed(w) => k.gemm(m, x, input, w, y, ldy, epilogue, Threading::Auto),
            Weight::Int8(w) => k.qgemm(m, x, input, w, y, ldy, epilogue, Threading::Auto),
        }
    }
}

/// `nn.LayerNorm` over the hidden dimension.
pub(crate) struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn load(
        w: &Weights<'_>,
        prefix: &str,
        name: &str,
        width: usize,
        eps: f32,
    ) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: w.get(prefix, &format!("{name}.weight"), &[width])?,
            bias: w.get(prefix, &format!("{name}.bias"), &[width])?,
            eps,
        })
    }

    /// What int8's smoothing ([`SMOOTH_ALPHA`]) takes for the largest
    /// magnitude of each feature of this norm's output: `|β| + REACH_GAMMAS·|γ|`.
    pub(crate) fn reach(&self) -> Vec<f32> {
        self.weight
            .iter()
            .zip(&self.bias)
            .map(|(g, b)| b.abs() + REACH_GAMMAS * g.abs())
            .collect()
    }

    /// Normalises every row of `x: [rows, width]` in place.
    pub(crate) fn forward(&self, k: &Kernels, x: &mut [f32]) {
        k.layer_norm(x, self.weight.len(), &self.weight, &self.bias, self.eps);
    }
}

/// Layer norm over rows, in parallel chunks.
pub(crate) fn layer_norm_rows(k: &Kernels, ln: &LayerNorm, x: &mut [f32]) {
    use rayon::prelude::*;
    let width = ln.weight.len();
    x.par_chunks_mut(ROWS_PER_TASK * width)
        .for_each(|rows| ln.forward(k, rows));
}
