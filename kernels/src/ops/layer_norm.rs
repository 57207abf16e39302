//! Row-wise layer normalisation.

pub(crate) fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    assert!(width > 0 && x.len() % width == 0, "layer_norm: ragged rows");
    assert!(
        gamma.len() == width && beta.len() == width,
        "layer_norm: gamma/beta width"
    );
    for row in x.chunks_exact_mut(width) {
        // Two passes, as PyTorch does: the mean first, then the variance
        // around it, which stays accurate when |mean| >> std.
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}
