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
pub(crate) use head::{BertPooler, ClassificationHead};

use crossenc_kernels::{Epilogue, HeadAttention, Kernels, PackedMatrix, Threading};

use crate::config::{Architecture, BertConfig};
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
        let weight = w.with(prefix, &format!("{name}.weight"), &[out, input], |weight| {
            k.pack_linear(weight, out, input)
        })?;
        let bias = w.get(prefix, &format!("{name}.bias"), &[out])?;
        Ok(Linear { weight, bias })
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
            w.with(prefix, &format!("{name}.weight"), &[out, input], |part| {
                weight.extend_from_slice(part)
            })?;
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

/// Buffers for forward passes: grown to the largest batch seen, then reused,
/// so a steady stream of batches allocates nothing.
#[derive(Default)]
pub struct Scratch {
    // hidden: [tokens, hidden]
    pub(crate) hidden: Vec<f32>,
    // qkv: [tokens, 3·hidden] (the last layer keeps only K, V: [tokens, 2·hidden])
    pub(crate) qkv: Vec<f32>,
    // ctx: [tokens, hidden], attention output before its projection
    pub(crate) ctx: Vec<f32>,
    // attn_out: [tokens, hidden]
    pub(crate) attn_out: Vec<f32>,
    // ffn_up: [tokens, intermediate]
    pub(crate) ffn_up: Vec<f32>,
    // attention: one tile buffer per thread, HeadAttention::scratch_len_for(max_len) each
    pub(crate) attention: Vec<f32>,
    // cls_in: [sequences, hidden], the [CLS] rows entering the last layer
    pub(crate) cls_in: Vec<f32>,
    // cls_q: [sequences, hidden], their queries
    pub(crate) cls_q: Vec<f32>,
    // cls: [sequences, hidden], the [CLS] rows leaving the last layer
    pub(crate) cls: Vec<f32>,
    // pooled: [sequences, hidden]
    pub(crate) pooled: Vec<f32>,
    // logits: [sequences, num_labels]
    pub(crate) logits: Vec<f32>,
}

impl Scratch {
    /// Empty buffers; the first forward pass sizes them.
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// Grows every buffer to fit `batch` (never shrinks).
    fn reserve(&mut self, c: &BertConfig, batch: &PackedBatch, labels: usize) {
        let (t, s, h) = (batch.tokens(), batch.sequences(), c.hidden_size);
        let max_len = (0..s).map(|i| batch.range(i).len()).max().unwrap_or(0);
        let threads = rayon::current_num_threads();
        grow(&mut self.hidden, t * h);
        grow(&mut self.qkv, t * 3 * h);
        grow(&mut self.ctx, t * h.max(c.embedding_size));
        grow(&mut self.attn_out, t * h);
        grow(&mut self.ffn_up, t * c.intermediate_size);
        grow(
            &mut self.attention,
            threads * HeadAttention::scratch_len_for(max_len, c.head_dim()),
        );
        for v in [
            &mut self.cls_in,
            &mut self.cls_q,
            &mut self.cls,
            &mut self.pooled,
        ] {
            grow(v, s * h);
        }
        grow(&mut self.logits, s * labels);
    }
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Rows per parallel task for row-wise work (embeddings, layer norm).
const ROWS_PER_TASK: usize = 32;

/// The BERT encoder (`BertModel`): embeddings, layers and, when the checkpoint
/// has one, the pooler.
pub(crate) struct Bert {
    pub(crate) config: BertConfig,
    pub(crate) kernels: Kernels,
    embeddings: BertEmbeddings,
    /// ELECTRA's `embeddings_project`: `[embedding_size] -> [hidden]`.
    embeddings_project: Option<Linear>,
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
        let p = config.architecture.prefix();
        let embeddings = BertEmbeddings::load(&config, w, p)?;
        let (e, h) = (config.embedding_size, config.hidden_size);
        let embeddings_project = if config.architecture == Architecture::Electra && e != h {
            Some(Linear::load(&kernels, w, p, "embeddings_project", h, e)?)
        } else if e != h {
            return Err(Error::Unsupported {
                key: "embedding_size".into(),
                value: e.to_string(),
                supported: format!("the hidden_size ({h}) for this model_type"),
            });
        } else {
            None
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(&config, &kernels, w, p, i))
            .collect::<Result<Vec<_>>>()?;
        let has_pooler =
            w.contains(&format!("{p}pooler.dense.weight")) || w.contains("pooler.dense.weight");
        let pooler = if has_pooler || require_pooler {
            Some(BertPooler::load(&config, &kernels, w, p)?)
        } else {
            None
        };
        Ok(Bert {
            config,
            kernels,
            embeddings,
            embeddings_project,
            layers,
            pooler,
        })
    }

    /// Checks that every token id has an embedding row, and no sequence is empty.
    pub(crate) fn check(&self, batch: &PackedBatch) -> Result<()> {
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
        let positions = self.config.max_positions();
        for s in 0..batch.sequences() {
            let len = batch.range(s).len();
            if len == 0 || len > positions {
                return Err(Error::InvalidOption {
                    name: "batch",
                    message: format!(
                        "sequence {s} has {len} tokens; the model reads 1 to {positions}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs the whole encoder; the last hidden state `[tokens, hidden]` is
    /// left in `s.hidden`. With `trace`, also collects the hidden state after
    /// the embeddings and after every layer (`trace[0]` is the embeddings').
    pub(crate) fn forward(
        &self,
        batch: &PackedBatch,
        s: &mut Scratch,
        mut trace: Option<&mut Vec<Vec<f32>>>,
    ) {
        let tokens = batch.tokens();
        s.reserve(&self.config, batch, 0);
        self.embed(batch, s);
        let h = self.config.hidden_size;
        if let Some(t) = trace.as_deref_mut() {
            t.push(s.hidden[..tokens * h].to_vec());
        }
        for layer in &self.layers {
            layer.forward(&self.kernels, &self.config, batch, s);
            if let Some(t) = trace.as_deref_mut() {
                t.push(s.hidden[..tokens * h].to_vec());
            }
        }
    }

    /// Runs the encoder for the `[CLS]` rows only: every layer but the last
    /// in full, the last for `[CLS]` alone (its other rows reach nothing the
    /// pooler reads, so this is exact). Leaves `[sequences, hidden]` in `s.cls`.
    pub(crate) fn forward_cls(&self, batch: &PackedBatch, s: &mut Scratch, labels: usize) {
        s.reserve(&self.config, batch, labels);
        self.embed(batch, s);
        let (last, rest) = self
            .layers
            .split_last()
            .expect("a model has at least one layer");
        for layer in rest {
            layer.forward(&self.kernels, &self.config, batch, s);
        }
        last.forward_cls(&self.kernels, &self.config, batch, s);
    }

    fn embed(&self, batch: &PackedBatch, s: &mut Scratch) {
        let (t, h, e) = (
            batch.tokens(),
            self.config.hidden_size,
            self.config.embedding_size,
        );
        match &self.embeddings_project {
            None => {
                self.embeddings
                    .forward(&self.kernels, batch, &mut s.hidden[..t * h], ROWS_PER_TASK)
            }
            Some(project) => {
                // ctx: [t, embedding_size], free until the first layer's attention
                self.embeddings
                    .forward(&self.kernels, batch, &mut s.ctx[..t * e], ROWS_PER_TASK);
                project.forward(
                    &self.kernels,
                    t,
                    &s.ctx[..t * e],
                    &mut s.hidden[..t * h],
                    None,
                );
            }
        }
    }

    /// `[CLS]` rows through the pooler into `s.pooled`.
    pub(crate) fn pool(&self, sequences: usize, cls: &[f32], pooled: &mut [f32]) {
        let pooler = self.pooler.as_ref().expect("checked at load");
        pooler.forward(&self.kernels, sequences, cls, pooled);
    }
}

/// Layer norm over rows, in parallel chunks.
pub(crate) fn layer_norm_rows(k: &Kernels, ln: &LayerNorm, x: &mut [f32]) {
    use rayon::prelude::*;
    let width = ln.weight.len();
    x.par_chunks_mut(ROWS_PER_TASK * width)
        .for_each(|rows| ln.forward(k, rows));
}

/// Copies row `starts[s]` of `src: [tokens, width]` to row `s` of `dst`.
pub(crate) fn gather_rows(batch: &PackedBatch, src: &[f32], dst: &mut [f32], width: usize) {
    for s in 0..batch.sequences() {
        let first = batch.starts[s];
        dst[s * width..(s + 1) * width].copy_from_slice(&src[first * width..(first + 1) * width]);
    }
}
