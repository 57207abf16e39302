//! The encoder stack (`BertModel`): embeddings, layers and, when the
//! checkpoint has one and the caller reads it, the pooler.

use crossenc_kernels::Kernels;

use super::batch::{PackedBatch, Scratch};
use super::embeddings::BertEmbeddings;
use super::encoder::{pass_tokens, sequence_groups, BertLayer};
use super::head::BertPooler;
use super::linear::{Linear, WeightFormat, ROWS_PER_TASK};
use crate::config::{Architecture, BertConfig};
use crate::error::{Error, Result};
use crate::load::Precision;
use crate::weights::Weights;

/// Which rows of the last layer a model's head reads, so that only the
/// weights that path uses are packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Every token's (hidden states, sentence embeddings): the pooler is
    /// loaded when the checkpoint has one.
    All,
    /// The first token's alone (a classification head): the last layer keeps
    /// its query projection apart, and the pooler is left to the head.
    Cls,
}

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
    /// Tokens per pass through every layer ([`pass_tokens`]).
    pass_tokens: usize,
}

impl Bert {
    /// Loads the encoder from `weights`, with or without the `bert.` prefix.
    pub(crate) fn load(
        config: BertConfig,
        kernels: Kernels,
        w: &Weights<'_>,
        rows: Rows,
        precision: Precision,
    ) -> Result<Bert> {
        let p = config.architecture.prefix();
        let (e, h) = (config.embedding_size, config.hidden_size);
        let embeddings_project = if config.architecture == Architecture::Electra && e != h {
            Some(Linear::load(
                &kernels,
                w,
                p,
                "embeddings_project",
                h,
                e,
                WeightFormat::F32,
            )?)
        } else if e != h {
            return Err(Error::Unsupported {
                key: "embedding_size".into(),
                value: e.to_string(),
                supported: format!("the hidden_size ({h}) for this model_type"),
            });
        } else {
            None
        };
        // The word-embedding table's check (a pass over the whole table)
        // runs beside the packing of the layers.
        let (embeddings, layers) = rayon::join(
            || BertEmbeddings::load(&config, w, p),
            || {
                (0..config.num_hidden_layers)
                    .map(|i| {
                        let last = i + 1 == config.num_hidden_layers;
                        BertLayer::load(
                            &config,
                            &kernels,
                            w,
                            p,
                            i,
                            last && rows == Rows::Cls,
                            precision,
                        )
                    })
                    .collect::<Result<Vec<_>>>()
            },
        );
        let (embeddings, layers) = (embeddings?, layers?);
        // A classification head packs its own copy of the pooler's dense
        // layer (BERT) or has none; only the encoder's users read the pooler.
        let has_pooler =
            w.contains(&format!("{p}pooler.dense.weight")) || w.contains("pooler.dense.weight");
        let pooler = if has_pooler && rows == Rows::All {
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
            pass_tokens: pass_tokens(precision),
        })
    }

    /// Checks that every token id has an embedding row, and that every
    /// sequence has 1 to `max_positions` tokens.
    pub(crate) fn check(&self, batch: &PackedBatch) -> Result<()> {
        let vocab_size = self.config.vocab_size;
        if let Some(&id) = batch
            .input_ids()
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(Error::TokenOutOfRange { id, vocab_size });
        }
        let types = self.config.type_vocab_size;
        if let Some(&id) = batch
            .token_type_ids()
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
                return Err(Error::InvalidBatch {
                    message: format!(
                        "sequence {s} has {len} tokens; the model reads 1 to {positions}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs the whole encoder, each layer over the whole batch; the last
    /// hidden state `[tokens, hidden]` is left in `s.hidden`. With `trace`,
    /// also collects the hidden state after the embeddings and after every
    /// layer (`trace[0]` is the embeddings'): the layer-by-layer trace.
    /// Models run [`Bert::forward_passes`] or [`Bert::forward_cls`], in
    /// passes of `encoder::pass_tokens`.
    pub(crate) fn forward(
        &self,
        batch: &PackedBatch,
        s: &mut Scratch,
        mut trace: Option<&mut Vec<Vec<f32>>>,
    ) {
        let tokens = batch.tokens();
        s.reserve(
            &self.config,
            batch,
            0,
            self.int8_ffn(),
            self.group_tokens(),
            usize::MAX,
        );
        self.embed(batch, 0..tokens, s);
        let h = self.config.hidden_size;
        if let Some(t) = trace.as_deref_mut() {
            t.push(s.hidden[..tokens * h].to_vec());
        }
        for layer in &self.layers {
            layer.forward(
                &self.kernels,
                &self.config,
                batch,
                0..batch.sequences(),
                0,
                s,
            );
            if let Some(t) = trace.as_deref_mut() {
                t.push(s.hidden[..tokens * h].to_vec());
            }
        }
    }

    /// Runs the whole encoder in passes of whole sequences, each through
    /// every layer (`encoder::pass_tokens`: the batch, or one group at a
    /// time), and hands each pass to `each(seqs, base, s)`: its sequences
    /// `seqs`, whose last hidden state is in `s.hidden` from the batch's
    /// token `base` on. A row's result depends on its own sequence alone, so
    /// the rows are those of [`Bert::forward`] either way.
    pub(crate) fn forward_passes(
        &self,
        batch: &PackedBatch,
        s: &mut Scratch,
        each: impl FnMut(std::ops::Range<usize>, usize, &mut Scratch),
    ) {
        self.run_passes(batch, 0, &self.layers, s, each);
    }

    /// Runs the encoder for the `[CLS]` rows only: every layer but the last
    /// in full, the last for `[CLS]` alone (its other rows reach nothing the
    /// pooler reads, so this is exact). Leaves `[sequences, hidden]` in `s.cls`.
    /// Needs an encoder loaded with [`Rows::Cls`].
    ///
    /// Passes of whole sequences go through every layer
    /// (`encoder::pass_tokens`: the batch, or one group at a time), and the
    /// last layer's `[CLS]` rows of every pass finish together: a row's
    /// result depends on its own sequence alone.
    pub(crate) fn forward_cls(&self, batch: &PackedBatch, s: &mut Scratch, labels: usize) {
        let (last, rest) = self
            .layers
            .split_last()
            .expect("a model has at least one layer");
        self.run_passes(batch, labels, rest, s, |seqs, base, s| {
            last.attend_cls(&self.kernels, &self.config, batch, seqs, base, s)
        });
        last.finish_cls(&self.kernels, &self.config, batch.sequences(), s);
    }

    /// The passes of [`Bert::forward_passes`] and [`Bert::forward_cls`]:
    /// for each pass of whole sequences (`encoder::pass_tokens`), its
    /// embeddings, then `layers`, then `each(seqs, base, s)`, with the pass's
    /// hidden state in `s.hidden` from the batch's token `base` on, after
    /// reserving `s` for the batch (and a head of `labels` outputs).
    fn run_passes(
        &self,
        batch: &PackedBatch,
        labels: usize,
        layers: &[BertLayer],
        s: &mut Scratch,
        mut each: impl FnMut(std::ops::Range<usize>, usize, &mut Scratch),
    ) {
        s.reserve(
            &self.config,
            batch,
            labels,
            self.int8_ffn(),
            self.group_tokens(),
            self.pass_tokens,
        );
        for seqs in sequence_groups(batch, 0..batch.sequences(), self.pass_tokens) {
            let rows = batch.starts()[seqs.start]..batch.starts()[seqs.end];
            let base = rows.start;
            self.embed(batch, rows, s);
            for layer in layers {
                layer.forward(&self.kernels, &self.config, batch, seqs.clone(), base, s);
            }
            each(seqs, base, s);
        }
    }

    /// Whether the layers' FFNs keep their intermediate in int8.
    fn int8_ffn(&self) -> bool {
        self.layers.iter().all(BertLayer::int8_ffn)
    }

    /// The most tokens a layer computes at once.
    fn group_tokens(&self) -> usize {
        self.layers
            .iter()
            .map(BertLayer::group_tokens)
            .max()
            .unwrap_or(0)
    }

    /// The embeddings of the batch's tokens `rows` into the first rows of
    /// `s.hidden`.
    fn embed(&self, batch: &PackedBatch, rows: std::ops::Range<usize>, s: &mut Scratch) {
        let (t, h, e) = (
            rows.len(),
            self.config.hidden_size,
            self.config.embedding_size,
        );
        match &self.embeddings_project {
            None => self.embeddings.forward(
                &self.kernels,
                batch,
                rows.start,
                &mut s.hidden[..t * h],
                ROWS_PER_TASK,
            ),
            Some(project) => {
                // attn_out: [t, embedding_size], free until the first layer's attention
                self.embeddings.forward(
                    &self.kernels,
                    batch,
                    rows.start,
                    &mut s.attn_out[..t * e],
                    ROWS_PER_TASK,
                );
                project.forward(
                    &self.kernels,
                    t,
                    &s.attn_out[..t * e],
                    &mut s.hidden[..t * h],
                    None,
                );
            }
        }
    }
}
