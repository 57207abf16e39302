//! `BertPooler` and the classification head of `BertForSequenceClassification`.

use crossenc_kernels::{Activation, Kernels};

use super::linear::{Linear, WeightFormat};
use crate::config::{Architecture, BertConfig};
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
            dense: Linear::load(k, w, p, "pooler.dense", h, h, WeightFormat::F32)?,
        })
    }

    /// `cls: [sequences, hidden]` -> `pooled: [sequences, hidden]`.
    pub(crate) fn forward(&self, k: &Kernels, sequences: usize, cls: &[f32], pooled: &mut [f32]) {
        self.dense
            .forward(k, sequences, cls, pooled, Some(Activation::Tanh));
    }
}

/// The classification head of a `...ForSequenceClassification`, on the first
/// token: `out_proj(act(dense(h[0])))`.
///
/// - BERT: `dense` is the pooler's (`act` = tanh), `out_proj` is `classifier`;
/// - XLM-RoBERTa: `classifier.dense` (tanh), `classifier.out_proj`;
/// - ELECTRA: `classifier.dense` (exact GELU, whatever `hidden_act` says), `classifier.out_proj`.
pub(crate) struct ClassificationHead {
    dense: Linear,
    act: Activation,
    out_proj: Linear,
}

impl ClassificationHead {
    pub(crate) fn load(c: &BertConfig, k: &Kernels, w: &Weights<'_>) -> Result<ClassificationHead> {
        let (h, labels) = (c.hidden_size, c.num_labels());
        let p = c.architecture.prefix();
        Ok(match c.architecture {
            Architecture::Bert => ClassificationHead {
                dense: Linear::load(k, w, p, "pooler.dense", h, h, WeightFormat::F32)?,
                act: Activation::Tanh,
                out_proj: Linear::load(k, w, "", "classifier", labels, h, WeightFormat::F32)?,
            },
            Architecture::XlmRoberta | Architecture::Electra => ClassificationHead {
                dense: Linear::load(k, w, "", "classifier.dense", h, h, WeightFormat::F32)?,
                act: if c.architecture == Architecture::Electra {
                    Activation::GeluErf
                } else {
                    Activation::Tanh
                },
                out_proj: Linear::load(
                    k,
                    w,
                    "",
                    "classifier.out_proj",
                    labels,
                    h,
                    WeightFormat::F32,
                )?,
            },
        })
    }

    /// `first: [sequences, hidden]` -> `logits: [sequences, num_labels]`, via
    /// `dense_out: [sequences, hidden]`.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        sequences: usize,
        first: &[f32],
        dense_out: &mut [f32],
        logits: &mut [f32],
    ) {
        self.dense
            .forward(k, sequences, first, dense_out, Some(self.act));
        self.out_proj.forward(k, sequences, dense_out, logits, None);
    }
}
