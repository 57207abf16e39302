//! `BertLayer`: self-attention + output projection + LayerNorm, then the
//! feed-forward block + LayerNorm.

use crossenc_kernels::{HeadAttention, Kernels, QuantizedActivations, WeightScales};
use rayon::prelude::*;

use std::ops::Range;

use super::batch::{gather_rows, PackedBatch, Scratch};
use super::linear::{layer_norm_rows, LayerNorm, Linear, WeightFormat};
use crate::config::BertConfig;
use crate::error::Result;
use crate::load::Precision;
use crate::weights::Weights;

/// int8 weight scales of the linears that read the hidden state (query, key,
/// value, attention output, FFN-up): one per column. Their inputs' blocks
/// carry the outliers; per column, the tile does a multiply less per block
/// (the int8 GEMM ~10% faster), and all-MiniLM-L6-v2 stays inside issue 12's
/// accuracy targets (tests/precision.rs; the figures are in README.md).
const HIDDEN_INPUT: WeightScales = WeightScales::PerColumn;

/// int8 weight scales of FFN-down, which reads the intermediate: blocks of
/// 32. Per column there, the worst embedding cosine to f32 fell to 0.9989
/// (0.999 asked).
const INTERMEDIATE_INPUT: WeightScales = WeightScales::PerBlock;

/// `attention.self.{query,key,value}` as the products the layer runs, each
/// writing its columns of the `[rows, 3·hidden]` query|key|value layout.
struct Qkv {
    /// The query apart, when the layer projects queries for the `[CLS]` rows
    /// only (the last layer of a classifier); else it is among `parts`.
    query: Option<Linear>,
    /// The products every row needs, each with the first column of the
    /// query|key|value layout it writes: in f32 and bf16 one fused product
    /// (or key and value fused, next to a query apart); in int8 one each,
    /// as every one has its own smoothing (linear.rs, SMOOTH_ALPHA).
    parts: Vec<(Linear, usize)>,
}

pub(crate) struct BertLayer {
    qkv: Qkv,
    /// `attention.output.dense`
    attention_output: Linear,
    /// `attention.output.LayerNorm`
    attention_layer_norm: LayerNorm,
    /// `intermediate.dense`: `[hidden] -> [intermediate]`
    intermediate: Linear,
    /// `output.dense`: `[intermediate] -> [hidden]`
    output: Linear,
    /// `output.LayerNorm`
    output_layer_norm: LayerNorm,
    /// Whether attention's products may take bf16 operands
    /// ([`HeadAttention::bf16`]): in the reduced precisions, not in f32.
    bf16_attention: bool,
    /// Tokens computed at once ([`group_tokens`]).
    group_tokens: usize,
}

impl BertLayer {
    pub(crate) fn load(
        c: &BertConfig,
        k: &Kernels,
        w: &Weights<'_>,
        p: &str,
        i: usize,
        split_query: bool,
        precision: Precision,
    ) -> Result<BertLayer> {
        let (h, f, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let l = format!("encoder.layer.{i}");
        let [q, key, v] = ["query", "key", "value"].map(|n| format!("{l}.attention.self.{n}"));
        let hidden_input = WeightFormat::new(precision, HIDDEN_INPUT);
        let attention_layer_norm =
            LayerNorm::load(w, p, &format!("{l}.attention.output.LayerNorm"), h, eps)?;
        let intermediate_name = format!("{l}.intermediate.dense");
        // int8: the smoothing of the linears reading a layer norm's output
        // (linear.rs, SMOOTH_ALPHA). Query, key and value read the previous layer's
        // output norm (the first layer, the embeddings' norm; ELECTRA's
        // projection of small embeddings is no norm: none there).
        let (reach_qkv, reach_up) = if precision == Precision::Int8 {
            let qkv_norm = if i == 0 {
                (c.embedding_size == h).then(|| "embeddings.LayerNorm".to_string())
            } else {
                Some(format!("encoder.layer.{}.output.LayerNorm", i - 1))
            };
            let reach_qkv = match qkv_norm {
                Some(norm) => Some(LayerNorm::load(w, p, &norm, h, eps)?.reach()),
                None => None,
            };
            (reach_qkv, Some(attention_layer_norm.reach()))
        } else {
            (None, None)
        };
        let load = |names: &[&str], reach: Option<&[f32]>| {
            Linear::load_fused(k, w, p, names, h, h, hidden_input, reach)
        };
        let qkv = match reach_qkv.as_deref() {
            // int8: each its own smoothing.
            Some(reach) => {
                let query = load(&[&q], Some(reach))?;
                let key = (load(&[&key], Some(reach))?, h);
                let value = (load(&[&v], Some(reach))?, 2 * h);
                if split_query {
                    Qkv {
                        query: Some(query),
                        parts: vec![key, value],
                    }
                } else {
                    Qkv {
                        query: None,
                        parts: vec![(query, 0), key, value],
                    }
                }
            }
            None if split_query => Qkv {
                query: Some(load(&[&q], None)?),
                parts: vec![(load(&[&key, &v], None)?, h)],
            },
            None => Qkv {
                query: None,
                parts: vec![(load(&[&q, &key, &v], None)?, 0)],
            },
        };
        Ok(BertLayer {
            qkv,
            attention_output: Linear::load(
                k,
                w,
                p,
                &format!("{l}.attention.output.dense"),
                h,
                h,
                hidden_input,
            )?,
            attention_layer_norm,
            intermediate: match reach_up.as_deref() {
                // int8: smoothed, from a copy it scales in place.
                Some(reach) => Linear::load_fused(
                    k,
                    w,
                    p,
                    &[&intermediate_name],
                    f,
                    h,
                    hidden_input,
                    Some(reach),
                )?,
                None => Linear::load(k, w, p, &intermediate_name, f, h, hidden_input)?,
            },
            output: Linear::load(
                k,
                w,
                p,
                &format!("{l}.output.dense"),
                h,
                f,
                WeightFormat::new(precision, INTERMEDIATE_INPUT),
            )?,
            output_layer_norm: LayerNorm::load(w, p, &format!("{l}.output.LayerNorm"), h, eps)?,
            bf16_attention: precision != Precision::F32,
            group_tokens: group_tokens(precision),
        })
    }

    /// Every row of the sequences `seqs` of `batch`, updated in place in
    /// `s.hidden`, which holds the batch's rows from token `base` on.
    pub(crate) fn forward(
        &self,
        k: &Kernels,
        c: &BertConfig,
        batch: &PackedBatch,
        seqs: Range<usize>,
        base: usize,
        s: &mut Scratch,
    ) {
        let h = c.hidden_size;
        // The whole layer, one group of whole sequences at a time: a row's
        // result depends on its own sequence alone (every product is row by
        // row), so every buffer but `hidden` holds a group, not the batch.
        for seqs in sequence_groups(batch, seqs, self.group_tokens) {
            let rows = batch.starts()[seqs.start]..batch.starts()[seqs.end];
            // The group's rows of `hidden`.
            let held = (rows.start - base) * h..(rows.end - base) * h;
            let (g, x) = (rows.len(), &s.hidden[held.clone()]);
            // qkv: [g, 3h], the group's rows
            let qkv = &mut s.qkv[..g * 3 * h];
            if let Some(query) = &self.qkv.query {
                query.forward_strided(k, g, x, qkv, 3 * h);
            }
            for (part, first) in &self.qkv.parts {
                part.forward_strided(k, g, x, &mut qkv[*first..], 3 * h);
            }
            let q = Rows {
                data: qkv,
                ld: 3 * h,
                offset: 0,
                cls_only: false,
            };
            let kv = Rows {
                data: qkv,
                ld: 3 * h,
                offset: h,
                cls_only: false,
            };
            let group = Group {
                seqs,
                row_base: rows.start,
                bf16: self.bf16_attention,
            };
            // ctx: [g, h], the group's rows
            let ctx = &mut s.ctx[..g * h];
            attention(k, c, batch, group, q, kv, ctx, &mut s.attention);
            // attn_out: [g, h] = LayerNorm(ctx · Woᵀ + bo + x)
            let attn_out = &mut s.attn_out[..g * h];
            self.attention_output
                .forward_residual(k, g, ctx, x, attn_out);
            layer_norm_rows(k, &self.attention_layer_norm, attn_out);
            // The group's rows of hidden, read for the last time above:
            // LayerNorm(act(attn_out · W1ᵀ + b1) · W2ᵀ + b2 + attn_out)
            let y = &mut s.hidden[held];
            self.feed_forward(k, c, g, attn_out, y, &mut s.ffn_up, &mut s.ffn_up_q);
            layer_norm_rows(k, &self.output_layer_norm, y);
        }
    }

    /// The last layer for the `[CLS]` rows only, first part: for the
    /// sequences `seqs` of `batch` (their rows of `s.hidden`, which holds
    /// the batch's rows from token `base` on), the `[CLS]` rows and their
    /// attention over their sequence (keys and values still come from every
    /// row) into rows `seqs` of `s.cls_in` and `s.cls_ctx` (`[sequences,
    /// hidden]`). [`BertLayer::finish_cls`] completes every sequence at once.
    pub(crate) fn attend_cls(
        &self,
        k: &Kernels,
        c: &BertConfig,
        batch: &PackedBatch,
        seqs: Range<usize>,
        base: usize,
        s: &mut Scratch,
    ) {
        let h = c.hidden_size;
        let Some(query) = &self.qkv.query else {
            unreachable!("Bert::load splits the last layer's query for Rows::Cls");
        };
        let held = &s.hidden;
        // cls_in, cls_q: rows seqs of [sequences, h]
        let cls = seqs.start * h..seqs.end * h;
        let cls_in = &mut s.cls_in[cls.clone()];
        gather_rows(batch, seqs.clone(), base, held, cls_in, h);
        query.forward(k, seqs.len(), cls_in, &mut s.cls_q[cls], None);
        let q = Rows {
            data: &s.cls_q,
            ld: h,
            offset: 0,
            cls_only: true,
        };
        for seqs in sequence_groups(batch, seqs, self.group_tokens) {
            let rows = batch.starts()[seqs.start]..batch.starts()[seqs.end];
            let g = rows.len();
            // kv: [g, 2h], the group's rows
            let kv = &mut s.qkv[..g * 2 * h];
            let x = &held[(rows.start - base) * h..(rows.end - base) * h];
            for (part, first) in &self.qkv.parts {
                // Key and value only: their columns of the layout, less the query's.
                part.forward_strided(k, g, x, &mut kv[*first - h..], 2 * h);
            }
            let kv = Rows {
                data: kv,
                ld: 2 * h,
                offset: 0,
                cls_only: false,
            };
            let group = Group {
                seqs,
                row_base: rows.start,
                bf16: self.bf16_attention,
            };
            attention(k, c, batch, group, q, kv, &mut s.cls_ctx, &mut s.attention);
        }
    }

    /// The last layer for the `[CLS]` rows only, second part, once
    /// [`BertLayer::attend_cls`] has run for all `n` sequences: `s.cls_ctx`
    /// and `s.cls_in` in, `s.cls: [sequences, hidden]` out.
    pub(crate) fn finish_cls(&self, k: &Kernels, c: &BertConfig, n: usize, s: &mut Scratch) {
        let h = c.hidden_size;
        // attn_out: [n, h]
        let attn_out = &mut s.attn_out[..n * h];
        self.attention_output.forward_residual(
            k,
            n,
            &s.cls_ctx[..n * h],
            &s.cls_in[..n * h],
            attn_out,
        );
        self.attention_layer_norm.forward(k, attn_out);
        // cls: [n, h]
        let cls = &mut s.cls[..n * h];
        self.feed_forward(k, c, n, attn_out, cls, &mut s.ffn_up, &mut s.ffn_up_q);
        self.output_layer_norm.forward(k, cls);
    }
}

impl BertLayer {
    /// Tokens this layer computes at once: the `group` its scratch buffers hold.
    pub(crate) fn group_tokens(&self) -> usize {
        self.group_tokens
    }

    /// Whether the FFN keeps its intermediate in int8 (both its linears are).
    pub(crate) fn int8_ffn(&self) -> bool {
        self.intermediate.is_int8() && self.output.is_int8()
    }

    /// `y: [m, h] = act(x · W1ᵀ + b1) · W2ᵀ + b2 + x` for `x: [m, h]`. The
    /// intermediate `[m, f]` goes through `ffn_up` in f32, or, when both
    /// linears are int8, through `ffn_up_q` already quantized as FFN-down
    /// reads it (the same bits, a quarter of the memory and one pass fewer).
    #[allow(clippy::too_many_arguments)]
    fn feed_forward(
        &self,
        k: &Kernels,
        c: &BertConfig,
        m: usize,
        x: &[f32],
        y: &mut [f32],
        ffn_up: &mut [f32],
        ffn_up_q: &mut QuantizedActivations,
    ) {
        if self.int8_ffn() {
            self.intermediate
                .forward_requantize(k, m, x, c.hidden_act, ffn_up_q);
            self.output.forward_residual_quantized(k, ffn_up_q, x, y);
        } else {
            // ffn_up: [m, f]
            let ffn_up = &mut ffn_up[..m * c.intermediate_size];
            self.intermediate
                .forward(k, m, x, ffn_up, Some(c.hidden_act));
            self.output.forward_residual(k, m, ffn_up, x, y);
        }
    }
}

/// A row-major matrix of per-token (or, with `cls_only`, per-sequence) rows;
/// head columns start at `offset`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    data: &'a [f32],
    ld: usize,
    offset: usize,
    cls_only: bool,
}

/// A pointer that may cross threads; every task writes its own elements.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: used only to hand disjoint regions of one buffer to rayon tasks,
// each of which writes only its own (see the comments at the writes).
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Through a method, so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Tokens a layer computes at once in `precision`: whole sequences up to
/// this many (a longer one alone), so that every buffer of the layer but
/// `hidden` holds a group, not the batch. Every row's result is what the
/// batch-wide products give (the GEMMs are batch-invariant, attention is per
/// sequence), so the size changes memory and speed, never a score.
///
/// For MiniLM at the default 2,048-token batch, 512 tokens took Q, K, V from
/// 9.4 MB to 2.4 MB and the f32 FFN intermediate from 12.6 MB to 3.1 MB (peak
/// RSS of `crossenc score` on seed20 13 MB lower in f32 and bf16, 7 MB in
/// int8; Zen 4: int8 and bf16 as fast, f32 ~1% slower; 1,024 measured no
/// faster). 256 takes another ~3 MB off f32 and int8 (Zen 3, AVX2, seed20,
/// medians of 7: f32 68.3 -> 65.3 MiB, int8 37.7 -> 34.9 MiB, int8 from 55.1%
/// to 53.5% of f32) at about the same speed (alternating `bench model` runs
/// in a noisy VM: f32 within noise; int8 1-5% slower in 4 of 5 sets, +1.2%
/// as the median of 16 paired rounds). Not yet measured on a VNNI machine.
/// bf16 stays at 512: where the CPU lacks bf16 products its GEMM widens every
/// weight panel to f32 once per call, a cost 256-row calls pay twice as often
/// (AVX2, 12 alternating rounds: 0.740 -> 0.787 s).
pub(crate) fn group_tokens(precision: Precision) -> usize {
    match precision {
        Precision::F32 | Precision::Int8 => 256,
        Precision::Bf16 => 512,
    }
}

/// Tokens that go through every layer before the next ones start: what the
/// hidden states hold. In f32 the batch: going group by group through every
/// layer would read all the weights again for each group, and f32's (4
/// bytes a value: 42 MB for MiniLM-L6) do not stay in a 32 MiB L3 (seed20
/// 1.02-1.04x slower on Zen 3, for 2.3 MB less RSS on bulk). int8's and
/// bf16's, a quarter and half of that, do: there one group at a time (int8
/// seed20 0.99x; bulk peak RSS 2.5-2.8 MB lower).
pub(crate) fn pass_tokens(precision: Precision) -> usize {
    match precision {
        Precision::F32 => usize::MAX,
        Precision::Int8 | Precision::Bf16 => group_tokens(precision),
    }
}

/// Consecutive runs of whole sequences `seqs` of `batch` with at most
/// `limit` tokens each, or one longer sequence alone.
pub(crate) fn sequence_groups(
    batch: &PackedBatch,
    seqs: Range<usize>,
    limit: usize,
) -> impl Iterator<Item = Range<usize>> + '_ {
    let starts = batch.starts();
    let mut first = seqs.start;
    std::iter::from_fn(move || {
        if first >= seqs.end {
            return None;
        }
        let mut end = first + 1;
        while end < seqs.end && starts[end + 1] - starts[first] <= limit {
            end += 1;
        }
        let group = first..end;
        first = end;
        Some(group)
    })
}

/// One group of sequences for [`attention`].
struct Group {
    /// The sequences, by index in the batch.
    seqs: Range<usize>,
    /// The first token of the group: row 0 of its `q`, `kv` and `ctx`
    /// (unless `q` is `cls_only`).
    row_base: usize,
    /// Whether the products may round to bf16 ([`HeadAttention::bf16`]).
    bf16: bool,
}

/// Scaled dot-product attention for every (sequence, head) of a group,
/// spread over the threads; each sequence attends over its own tokens only
/// (token packing makes the padding mask implicit). Keys and values for head
/// `h` sit at columns `kv.offset + h·d` and `kv.offset + hidden + h·d` of
/// `kv`.
///
/// Attention for the sequences `group.seqs` of `batch`: `q`, `kv` and `ctx`
/// hold the rows from token `group.row_base` on (with `cls_only`, `q` and
/// `ctx` hold one row per sequence of the batch: row `seq`).
#[allow(clippy::too_many_arguments)]
fn attention(
    k: &Kernels,
    c: &BertConfig,
    batch: &PackedBatch,
    group: Group,
    q: Rows<'_>,
    kv: Rows<'_>,
    ctx: &mut [f32],
    tiles: &mut [f32],
) {
    let Group {
        seqs,
        row_base,
        bf16,
    } = group;
    let (heads, d, h) = (c.num_attention_heads, c.head_dim(), c.hidden_size);
    let max_len = seqs
        .clone()
        .map(|s| batch.range(s).len())
        .max()
        .unwrap_or(0);
    let tile_len = HeadAttention::scratch_len_for(max_len, d);
    let threads = rayon::current_num_threads();
    assert!(
        tiles.len() >= threads * tile_len,
        "attention scratch sized for this pool"
    );
    let ctx_ptr = SharedMut(ctx.as_mut_ptr());
    let tiles_ptr = SharedMut(tiles.as_mut_ptr());
    (0..seqs.len() * heads).into_par_iter().for_each(|task| {
        let (seq, head) = (seqs.start + task / heads, task % heads);
        let range = batch.range(seq);
        // The first output row (in `ctx`) and the first query row (in `q`).
        let (first_row, q_row, rows) = if q.cls_only {
            (seq, seq, 1)
        } else {
            (range.start - row_base, range.start - row_base, range.len())
        };
        let shape = HeadAttention {
            rows,
            len: range.len(),
            head_dim: d,
            ld_q: q.ld,
            ld_kv: kv.ld,
            ld_out: h,
            bf16,
        };
        let kv_row = range.start - row_base;
        let q_head = &q.data[q_row * q.ld + q.offset + head * d..];
        let k_head = &kv.data[kv_row * kv.ld + kv.offset + head * d..];
        let v_head = &kv.data[kv_row * kv.ld + kv.offset + h + head * d..];
        let thread = rayon::current_thread_index().unwrap_or(0);
        assert!(thread < threads);
        // SAFETY: each pool thread owns tile `thread` of `tiles` (sized for
        // `threads` tiles above) and runs one task at a time.
        let tile = unsafe {
            std::slice::from_raw_parts_mut(tiles_ptr.get().add(thread * tile_len), tile_len)
        };
        // SAFETY: task (seq, head) alone writes rows first_row..first_row+rows,
        // columns head·d..(head+1)·d of ctx, which lie inside ctx.
        unsafe {
            k.attention_head(
                shape,
                q_head,
                k_head,
                v_head,
                ctx_ptr.get().add(first_row * h + head * d),
                tile,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_groups_cover_the_batch_in_order_within_the_limit() {
        // Lengths around the limit: small ones packed together, a long one
        // alone, one exactly at the limit.
        const LIMIT: usize = 512;
        let lens = [5, 200, 300, 12, 700, 1, LIMIT, 511, 1, 2];
        let mut batch = PackedBatch::new();
        for &len in &lens {
            batch.push(&vec![1; len], &vec![0; len]).unwrap();
        }
        let groups: Vec<_> = sequence_groups(&batch, 0..lens.len(), LIMIT).collect();
        assert_eq!(groups.first().map(|g| g.start), Some(0));
        assert_eq!(groups.last().map(|g| g.end), Some(lens.len()));
        for pair in groups.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{groups:?}");
        }
        for g in &groups {
            let tokens: usize = lens[g.clone()].iter().sum();
            assert!(
                tokens <= LIMIT || g.len() == 1,
                "group {g:?} has {tokens} tokens"
            );
            // Greedy: the next sequence would not have fitted.
            if g.end < lens.len() {
                assert!(tokens + lens[g.end] > LIMIT, "{groups:?}");
            }
        }
        assert_eq!(
            groups,
            vec![0..3, 3..4, 4..5, 5..6, 6..7, 7..9, 9..10],
            "lens {lens:?}"
        );
        assert_eq!(sequence_groups(&PackedBatch::new(), 0..0, LIMIT).count(), 0);
        // A range of the batch: the groups of its sequences alone (200 +
        // 300 + 12 fill the limit exactly; 511 ends where the range does).
        let part: Vec<_> = sequence_groups(&batch, 1..8, LIMIT).collect();
        assert_eq!(part, vec![1..4, 4..5, 5..6, 6..7, 7..8], "lens {lens:?}");
    }
}
