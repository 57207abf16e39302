//! Element-wise and row-wise operations: activations, layer norm, softmax, attention.

mod attention;
mod gelu;
mod layer_norm;
mod softmax;

pub use attention::{AttentionShape, HeadAttention, TILE_ROWS};
pub use gelu::{erf, gelu_erf, gelu_tanh};

use crate::Kernels;

/// An element-wise activation, as named in Hugging Face's `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · Φ(x)` with the exact error function (HF `gelu`).
    GeluErf,
    /// The tanh approximation of GELU (HF `gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `max(x, 0)` (HF `relu`).
    Relu,
    /// `tanh(x)` (the BERT pooler).
    Tanh,
}

pub(crate) fn apply_activation(x: &mut [f32], act: Activation) {
    match act {
        Activation::GeluErf => x.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        Activation::GeluTanh => x.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
    }
}

impl Kernels {
    /// Applies `act` to every element of `x`, in place.
    pub fn activation(&self, x: &mut [f32], act: Activation) {
        apply_activation(x, act);
    }

    /// Normalises each row of `x` (`[rows, width]`, contiguous) in place:
    /// `(x - mean) / sqrt(var + eps) · gamma + beta`, with the biased variance
    /// as `torch.nn.LayerNorm` computes it.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `width`, or `gamma`/`beta` are not `[width]`.
    pub fn layer_norm(&self, x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
        layer_norm::layer_norm(x, width, gamma, beta, eps);
    }

    /// Replaces `row` by its softmax, in place.
    pub fn softmax(&self, row: &mut [f32]) {
        softmax::softmax(row);
    }
}
