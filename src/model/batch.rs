//! What a forward pass reads and where it works: [`PackedBatch`] (token ids of
//! several sequences, concatenated) and [`Scratch`] (every activation buffer).

use crossenc_kernels::{HeadAttention, QuantizedActivations};

use crate::config::BertConfig;
use crate::error::{Error, Result};

/// A batch of tokenized sequences, concatenated: no padding anywhere.
///
/// Its fields are private so that what `forward` relies on always holds:
/// `starts` begins at 0, never decreases and ends at the token count, and
/// there is one token type id per token id. [`PackedBatch::push`] keeps that
/// true; [`PackedBatch::from_parts`] checks it.
///
/// ```
/// use crossenc::PackedBatch;
/// let mut batch = PackedBatch::new();
/// batch.push(&[101, 7592, 102], &[0, 0, 0])?;
/// assert_eq!((batch.sequences(), batch.tokens()), (1, 3));
/// // Lengths that do not add up are an error, not a wrong score.
/// assert!(PackedBatch::from_parts(vec![101, 102], vec![0, 0], vec![0, 3]).is_err());
/// # Ok::<(), crossenc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedBatch {
    // input_ids: [tokens], every sequence's token ids, one after another
    input_ids: Vec<u32>,
    // token_type_ids: [tokens], segment ids aligned with input_ids
    token_type_ids: Vec<u32>,
    // starts: [sequences + 1], where each sequence starts, then the token count
    starts: Vec<usize>,
}

impl Default for PackedBatch {
    fn default() -> Self {
        PackedBatch::new()
    }
}

impl PackedBatch {
    /// An empty batch.
    pub fn new() -> PackedBatch {
        PackedBatch {
            input_ids: Vec::new(),
            token_type_ids: Vec::new(),
            starts: vec![0],
        }
    }

    /// A batch from its parts: `starts` holds where each sequence begins in
    /// `input_ids`, then `input_ids.len()` (so `sequences + 1` entries).
    ///
    /// Fails with [`Error::InvalidBatch`] unless `starts` begins at 0, never
    /// decreases and ends at the token count, and `token_type_ids` is as long
    /// as `input_ids`. (Whether the ids fit the model, and no sequence is
    /// empty or too long, is checked by the model that runs it.)
    pub fn from_parts(
        input_ids: Vec<u32>,
        token_type_ids: Vec<u32>,
        starts: Vec<usize>,
    ) -> Result<PackedBatch> {
        let invalid = |message: String| Err(Error::InvalidBatch { message });
        if token_type_ids.len() != input_ids.len() {
            return invalid(format!(
                "{} token type ids for {} token ids; there must be one per token",
                token_type_ids.len(),
                input_ids.len()
            ));
        }
        if starts.first() != Some(&0) {
            return invalid(format!(
                "starts must begin at 0 (it begins {:?})",
                starts.first()
            ));
        }
        if let Some(i) = starts.windows(2).position(|w| w[1] < w[0]) {
            return invalid(format!(
                "starts decreases at entry {}: {} then {}",
                i + 1,
                starts[i],
                starts[i + 1]
            ));
        }
        let last = *starts.last().expect("starts is not empty");
        if last != input_ids.len() {
            return invalid(format!(
                "starts must end at the token count {} (it ends at {last})",
                input_ids.len()
            ));
        }
        Ok(PackedBatch {
            input_ids,
            token_type_ids,
            starts,
        })
    }

    /// Appends one sequence. Fails with [`Error::InvalidBatch`] (and leaves
    /// the batch as it was) when the two slices differ in length.
    pub fn push(&mut self, input_ids: &[u32], token_type_ids: &[u32]) -> Result<()> {
        if input_ids.len() != token_type_ids.len() {
            return Err(Error::InvalidBatch {
                message: format!(
                    "sequence {} has {} token ids but {} token type ids",
                    self.sequences(),
                    input_ids.len(),
                    token_type_ids.len()
                ),
            });
        }
        self.input_ids.extend_from_slice(input_ids);
        self.token_type_ids.extend_from_slice(token_type_ids);
        self.starts.push(self.input_ids.len());
        Ok(())
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.input_ids.clear();
        self.token_type_ids.clear();
        self.starts.truncate(1);
    }

    /// Token ids of every sequence, one after another.
    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// Token type (segment) ids, aligned with [`PackedBatch::input_ids`].
    pub fn token_type_ids(&self) -> &[u32] {
        &self.token_type_ids
    }

    /// Where each sequence starts, then the token count.
    pub fn starts(&self) -> &[usize] {
        &self.starts
    }

    /// Number of sequences.
    pub fn sequences(&self) -> usize {
        self.starts.len() - 1
    }

    /// Number of tokens over all sequences.
    pub fn tokens(&self) -> usize {
        self.input_ids.len()
    }

    /// The token range of sequence `i`.
    ///
    /// # Panics
    /// If `i >= self.sequences()`.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i + 1]
    }

    /// The longest sequence, in tokens (0 for an empty batch).
    pub fn max_len(&self) -> usize {
        self.starts
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }
}

/// Buffers for forward passes: grown to the largest batch seen, then reused,
/// so a steady stream of batches allocates nothing.
#[derive(Default)]
pub struct Scratch {
    // hidden: [pass, hidden], the tokens that go through every layer before
    // the next ones (encoder::pass_tokens: the batch, or one group)
    pub(crate) hidden: Vec<f32>,
    // A layer runs one group of whole sequences at a time
    // (encoder::sequence_groups), so the buffers below `hidden` hold a group,
    // or, in the last layer, which computes [CLS] rows only, one row per
    // sequence.
    // qkv: [group, 3·hidden] (the last layer keeps only K, V: [group, 2·hidden])
    pub(crate) qkv: Vec<f32>,
    // ctx: [group, hidden], attention output before its projection
    pub(crate) ctx: Vec<f32>,
    // attn_out: [group, hidden]; before the first layer, ELECTRA's
    // [tokens, embedding_size] embeddings ahead of their projection
    pub(crate) attn_out: Vec<f32>,
    // ffn_up: [group, intermediate] (f32 and bf16 models)
    pub(crate) ffn_up: Vec<f32>,
    // ffn_up_q: [group, intermediate] in int8 blocks (int8 models: what
    // FFN-down reads, never held in f32)
    pub(crate) ffn_up_q: QuantizedActivations,
    // attention: one tile buffer per thread, HeadAttention::scratch_len_for(max_len) each
    pub(crate) attention: Vec<f32>,
    // cls_in: [sequences, hidden], the [CLS] rows entering the last layer
    pub(crate) cls_in: Vec<f32>,
    // cls_q: [sequences, hidden], their queries
    pub(crate) cls_q: Vec<f32>,
    // cls_ctx: [sequences, hidden], their attention output before its projection
    pub(crate) cls_ctx: Vec<f32>,
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

    /// Grows every buffer to fit `batch` (never shrinks) for layers that
    /// compute up to `group_tokens` tokens at once, in passes through every
    /// layer of up to `pass_tokens` (a sequence longer than either alone).
    /// An int8 model's FFN keeps its intermediate in `ffn_up_q`, which its
    /// GEMM sizes.
    pub(crate) fn reserve(
        &mut self,
        c: &BertConfig,
        batch: &PackedBatch,
        labels: usize,
        int8_ffn: bool,
        group_tokens: usize,
        pass_tokens: usize,
    ) {
        let (t, s, h) = (batch.tokens(), batch.sequences(), c.hidden_size);
        let threads = rayon::current_num_threads();
        // One group of sequences at a time (encoder::group_tokens).
        let group = t.min(group_tokens.max(batch.max_len()));
        let hidden_rows = t.min(pass_tokens.max(batch.max_len()));
        grow(&mut self.hidden, hidden_rows * h);
        grow(&mut self.qkv, group * 3 * h);
        grow(&mut self.ctx, group * h);
        // The last layer's projections and FFN run on [CLS] rows only: one
        // per sequence.
        let rows = group.max(s);
        grow(&mut self.attn_out, rows * h);
        if c.embedding_size != h {
            // ELECTRA's embeddings ahead of their projection.
            grow(&mut self.attn_out, hidden_rows * c.embedding_size);
        }
        if !int8_ffn {
            grow(&mut self.ffn_up, rows * c.intermediate_size);
        }
        grow(
            &mut self.attention,
            threads * HeadAttention::scratch_len_for(batch.max_len(), c.head_dim()),
        );
        for v in [
            &mut self.cls_in,
            &mut self.cls_q,
            &mut self.cls_ctx,
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

/// Copies the first row of each sequence `seqs` of `batch` from `src`
/// (`[rows, width]`, the batch's rows from token `base` on) to `dst`
/// (`[seqs.len(), width]`).
pub(crate) fn gather_rows(
    batch: &PackedBatch,
    seqs: std::ops::Range<usize>,
    base: usize,
    src: &[f32],
    dst: &mut [f32],
    width: usize,
) {
    for (row, first) in dst.chunks_exact_mut(width).zip(&batch.starts[seqs]) {
        let first = first - base;
        row.copy_from_slice(&src[first * width..(first + 1) * width]);
    }
}
