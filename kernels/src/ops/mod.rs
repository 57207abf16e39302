//! Element-wise and row-wise operations: activations, layer norm, softmax, attention.
//!
//! Each is one generic function over the vector trait, instantiated per ISA
//! by `simd_dispatch!`; the scalar functions here ([`erf`], [`gelu_erf`],
//! [`gelu_tanh`]) define the math the vector versions follow.

mod attention;
mod gelu;
mod layer_norm;
mod softmax;

pub use attention::{AttentionShape, HeadAttention};
pub use gelu::{erf, gelu_erf, gelu_tanh};

use crate::simd::{math, simd_dispatch, Simd};
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

/// `x[i] = f(x[i])` over SIMD vectors, the tail through a partial load.
///
/// A macro rather than a function taking a closure: a closure is a function
/// of its own without the caller's `#[target_feature]`s, so the intrinsics
/// in its body (exp's polynomial, say) would not inline into it, and every
/// vector operation would become a call (measured: softmax 5x slower).
macro_rules! map_in_place {
    ($s:expr, $x:expr, |$v:ident| $body:expr) => {{
        let s = $s;
        let x: &mut [f32] = $x;
        let lanes = crate::simd::lanes_of(s);
        let mut chunks = x.chunks_exact_mut(lanes);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds exactly `lanes` floats.
            let $v = unsafe { s.load(chunk.as_ptr()) };
            let out = $body;
            // SAFETY: as above.
            unsafe { s.store(chunk.as_mut_ptr(), out) };
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let n = tail.len();
            // SAFETY: the tail holds n < lanes floats.
            let $v = unsafe { s.load_partial(tail.as_ptr(), n) };
            let out = $body;
            // SAFETY: as above.
            unsafe { s.store_partial(tail.as_mut_ptr(), n, out) };
        }
    }};
}
pub(crate) use map_in_place;

#[inline(always)]
fn activation_in_place<S: Simd>(s: S, x: &mut [f32], act: Activation) {
    // One loop per activation, so each body is specialised.
    match act {
        Activation::GeluErf => map_in_place!(s, x, |v| math::activation(s, Activation::GeluErf, v)),
        Activation::GeluTanh => {
            map_in_place!(s, x, |v| math::activation(s, Activation::GeluTanh, v))
        }
        Activation::Relu => map_in_place!(s, x, |v| math::activation(s, Activation::Relu, v)),
        Activation::Tanh => map_in_place!(s, x, |v| math::activation(s, Activation::Tanh, v)),
    }
}

simd_dispatch! {
    fn activation_dispatch(x: &mut [f32], act: Activation) = activation_in_place;
}

impl Kernels {
    /// Applies `act` to every element of `x`, in place.
    pub fn activation(&self, x: &mut [f32], act: Activation) {
        activation_dispatch(self.backend, x, act);
    }

    /// Normalises each row of `x` (`[rows, width]`, contiguous) in place:
    /// `(x - mean) / sqrt(var + eps) · gamma + beta`, with the biased variance
    /// as `torch.nn.LayerNorm` computes it (two passes: the mean, then the
    /// variance around it).
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `width`, or `gamma`/`beta` are not `[width]`.
    pub fn layer_norm(&self, x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
        assert!(
            width > 0 && x.len().is_multiple_of(width),
            "layer_norm: ragged rows"
        );
        assert!(
            gamma.len() == width && beta.len() == width,
            "layer_norm: gamma/beta width"
        );
        layer_norm::layer_norm(self.backend, x, width, gamma, beta, eps);
    }

    /// Replaces `row` by its softmax, in place. A row that is all `-inf`
    /// (fully masked) becomes all zeros rather than NaN.
    pub fn softmax(&self, row: &mut [f32]) {
        softmax::softmax(self.backend, row);
    }
}
