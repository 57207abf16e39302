//! The BERT encoder, written by hand: one struct per Hugging Face module, with
//! HF's own names, one forward function per layer.
//!
//! Upstream, for checking the math:
//! <https://github.com/huggingface/transformers/blob/v4.44.0/src/transformers/models/bert/modeling_bert.py>
//! (`BertEmbeddings`, `BertSelfAttention`, `BertSelfOutput`, `BertIntermediate`,
//! `BertOutput`, `BertPooler`, `BertForSequenceClassification`).
//!
//! # Token packing
//!
//! A batch never holds padding: its sequences are concatenated into one
//! `[tokens, hidden]` matrix for every linear layer, and attention runs per
//! sequence at its true length. That is exactly what a padded batch with an
//! attention mask computes for the real tokens, without the wasted rows.

mod embeddings;
mod encoder;
mod head;

pub(crate) use embeddings::BertEmbeddings;
pub(crate) use encoder::BertLayer;
pub(crate) use head::{BertPooler, Classifier};

use crossenc_kernels::{Epilogue, Kernels, PackedMatrix, Threading};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// `nn.Linear`: a weight packed for the kernels, and its bias.
pub(crate) struct Linear {
    weight: PackedMatrix,
    bias: Vec<f32>,
}

impl Linear {
    /// Loads `{name}.weight: [out, input]` and `{name}.bias: [out]`.
    pub(crate) fn load(
        k: &Kernels,
        w: &Weights<'_>,
        prefix: &str,
        name: &str,
        out: usize,
        input: usize,
    ) -> Result<Linear> {
        let weight = w.get(prefix, &format!("{name}.weight"), &[out, input])?;
        let bias = w.get(prefix, &format!("{name}.bias"), &[out])?;
        Ok(Linear {
            weight: k.pack_linear(&weight, out, input),
            bias,
        })
    }

    /// Several linears with the same input, fused into one wider matrix
    /// (query, key and value become one `[input, 3·out]` product).
    pub(crate) fn load_fused(
        k: &Kernels,
        w: &Weights<'_>,
        prefix: &str,
        names: &[&str],
        out: usize,
        input: usize,
    ) -> Result<Linear> {
        let mut weight = Vec::with_capacity(names.len() * out * input);
        let mut bias = Vec::with_capacity(names.len() * out);
        for name in names {
            weight.extend(w.get(prefix, &format!("{name}.weight"), &[out, input])?);
            bias.extend(w.get(prefix, &format!("{name}.bias"), &[out])?);
        }
        Ok(Linear {
            weight: k.pack_linear(&weight, names.len() * out, input),
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
        k.gemm(
            m,
            x,
            self.weight.k(),
            &self.weight,
            y,
            self.out(),
            epilogue,
            Threading::Auto,
        );
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
        k.gemm(
            m,
            x,
            self.weight.k(),
            &self.weight,
            y,
            self.out(),
            epilogue,
            Threading::Auto,
        );
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

    /// Normalises every row of `x: [rows, width]` in place.
    pub(crate) fn forward(&self, k: &Kernels, x: &mut [f32]) {
        k.layer_norm(x, self.weight.len(), &self.weight, &self.bias, self.eps);
    }
}

/// A batch of tokenized sequences, concatenated: no padding anywhere.
#[derive(Clone, Debug, Default)]
pub struct PackedBatch {
    /// Token ids of every sequence, one after another.
    pub input_ids: Vec<u32>,
    /// Token type (segment) ids, aligned with `input_ids`.
    pub token_type_ids: Vec<u32>,
    /// Where each sequence starts in `input_ids`, plus the total at the end
    /// (`starts.len() == sequences + 1`).
    pub starts: Vec<usize>,
}

impl PackedBatch {
    /// An empty batch.
    pub fn new() -> PackedBatch {
        PackedBatch {
            starts: vec![0],
            ..PackedBatch::default()
        }
    }

    /// Appends one sequence.
    pub fn push(&mut self, input_ids: &[u32], token_type_ids: &[u32]) {
        debug_assert_eq!(input_ids.len(), token_type_ids.len());
        self.input_ids.extend_from_slice(input_ids);
        self.token_type_ids.extend_from_slice(token_type_ids);
        self.starts.push(self.input_ids.len());
    }

    /// Number of sequences.
    pub fn sequences(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Number of tokens over all sequences.
    pub fn tokens(&self) -> usize {
        self.input_ids.len()
    }

    /// The token range of sequence `i`.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i + 1]
    }
}

/// The BERT encoder (`BertModel`): embeddings, layers and, when the checkpoint
/// has one, the pooler.
pub(crate) struct Bert {
    pub(crate) config: BertConfig,
    pub(crate) kernels: Kernels,
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    pub(crate) pooler: Option<BertPooler>,
}

impl Bert {
    /// Loads the encoder from `weights`, with or without the `bert.` prefix.
    pub(crate) fn load(
        config: BertConfig,
        kernels: Kernels,
        w: &Weights<'_>,
        require_pooler: bool,
    ) -> Result<Bert> {
        let p = "bert.";
        let embeddings = BertEmbeddings::load(&config, w, p)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(&config, &kernels, w, p, i))
            .collect::<Result<Vec<_>>>()?;
        let has_pooler =
            w.contains("bert.pooler.dense.weight") || w.contains("pooler.dense.weight");
        let pooler = if has_pooler || require_pooler {
            Some(BertPooler::load(&config, &kernels, w, p)?)
        } else {
            None
        };
        Ok(Bert {
            config,
            kernels,
            embeddings,
            layers,
            pooler,
        })
    }

    /// Checks that every token id has an embedding row.
    pub(crate) fn check_ids(&self, batch: &PackedBatch) -> Result<()> {
        let vocab_size = self.config.vocab_size;
        if let Some(&id) = batch
            .input_ids
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(Error::TokenOutOfRange { id, vocab_size });
        }
        let types = self.config.type_vocab_size;
        if let Some(&id) = batch
            .token_type_ids
            .iter()
            .find(|&&id| id as usize >= types)
        {
            return Err(Error::TokenOutOfRange {
                id,
                vocab_size: types,
            });
        }
        Ok(())
    }

    /// Runs the encoder; returns the last hidden state `[tokens, hidden]`.
    /// With `trace`, also collects the hidden state after the embeddings and
    /// after every layer (`trace[0]` is the embeddings' output).
    pub(crate) fn forward(
        &self,
        batch: &PackedBatch,
        mut trace: Option<&mut Vec<Vec<f32>>>,
    ) -> Vec<f32> {
        let k = &self.kernels;
        let c = &self.config;
        let tokens = batch.tokens();
        // hidden: [tokens, hidden_size]
        let mut hidden = vec![0.0; tokens * c.hidden_size];
        self.embeddings.forward(k, batch, &mut hidden);
        if let Some(t) = trace.as_deref_mut() {
            t.push(hidden.clone());
        }
        let mut scratch = encoder::LayerScratch::new(c, tokens);
        for layer in &self.layers {
            layer.forward(k, c, batch, &mut hidden, &mut scratch);
            if let Some(t) = trace.as_deref_mut() {
                t.push(hidden.clone());
            }
        }
        hidden
    }

    /// The `[CLS]` row (first token) of every sequence: `[sequences, hidden]`.
    pub(crate) fn cls_rows(&self, batch: &PackedBatch, hidden: &[f32]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let mut cls = Vec::with_capacity(batch.sequences() * h);
        for s in 0..batch.sequences() {
            let first = batch.starts[s];
            cls.extend_from_slice(&hidden[first * h..(first + 1) * h]);
        }
        cls
    }
}
