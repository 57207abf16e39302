//! `BertPooler` and the classification head of `BertForSequenceClassification`.

use crossenc_kernels::{Activation, Kernels};

use super::Linear;
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::Weights;

/// `tanh(dense(h[CLS]))`.
pub(crate) struct BertPooler {
    dense: Linear,
}

impl BertPooler {
    pub(crate) fn load(
        c: &BertConfig,
        k: &Kernels,
        w: &Weights<'_>,
        p: &str,
    ) -> Result<BertPooler> {
        let h = c.hidden_size;
        Ok(BertPooler {
            dense: Linear::load(k, w, p, "pooler.dense", h, h)?,
        })
    }

    /// `cls: [sequences, hidden]` -> `pooled: [sequences, hidden]`.
    pub(crate) fn forward(&self, k: &Kernels, sequences: usize, cls: &[f32], pooled: &mut [f32]) {
        self.dense
            .forward(k, sequences, cls, pooled, Some(Activation::Tanh));
    }
}

/// `classifier`: `[hidden] -> [num_labels]` (dropout is the identity at inference).
pub(crate) struct Classifier {
    dense: Linear,
}

impl Classifier {
    pub(crate) fn load(c: &BertConfig, k: &Kernels, w: &Weights<'_>) -> Result<Classifier> {
        Ok(Classifier {
            dense: Linear::load(k, w, "", "classifier", c.num_labels(), c.hidden_size)?,
        })
    }

    /// `pooled: [sequences, hidden]` -> `logits: [sequences, num_labels]`.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        sequences: usize,
        pooled: &[f32],
        logits: &mut [f32],
    ) {
        self.dense.forward(k, sequences, pooled, logits, None);
    }
}
