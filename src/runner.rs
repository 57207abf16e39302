//! The one loop every head runs on: tokenize in chunks -> (windows) ->
//! token-budgeted batches -> forward -> per-input results, with progress.
//!
//! A [`Runner`] owns what a loaded model needs to compute: the encoder, the
//! tokenizer, the thread pool and the scratch buffers finished calls leave
//! behind. Heads ([`crate::CrossEncoder`], [`crate::SentenceEmbedder`],
//! [`crate::Encoder`]) say only how an input becomes sequences, what a
//! forward pass yields per sequence, and what an input's sequences become.
//! Memory is bounded by the chunk and the token budget, never by the input.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use crossenc_kernels::Kernels;

use crate::config::BertConfig;
use crate::error::Result;
use crate::load::{thread_pool, ModelFolder, Options};
use crate::model::{Bert, PackedBatch, Rows, Scratch};
use crate::tokenize::{EncodedPair, PairTokenizer};
use crate::weights::Weights;

/// Inputs tokenized at a time: the most whose tokens and per-sequence results
/// are held at once.
const TOKENIZE_CHUNK: usize = 512;

/// The state of a long call, reported after every batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Inputs (pairs or texts) fully computed so far.
    pub done: usize,
    /// Inputs in the call.
    pub total: usize,
}

/// A loaded encoder with its tokenizer, threads and scratch pool.
pub(crate) struct Runner {
    pub(crate) bert: Bert,
    pub(crate) tokenizer: PairTokenizer,
    pub(crate) max_length: usize,
    pub(crate) precision: crate::Precision,
    batch_size: usize,
    token_budget: usize,
    pool: Option<rayon::ThreadPool>,
    /// Scratch left by finished calls, for the next ones.
    scratch: Mutex<Vec<Scratch>>,
}

impl Runner {
    /// Loads the folder `dir`: the encoder for `rows`, and whatever `head`
    /// loads from the same weights. `fallback_max_length` as in
    /// [`ModelFolder::open`].
    pub(crate) fn load<H: Send>(
        dir: &Path,
        options: &Options,
        rows: Rows,
        fallback_max_length: Option<usize>,
        head: impl FnOnce(&BertConfig, &Kernels, &Weights<'_>) -> Result<H> + Send,
    ) -> Result<(Runner, H)> {
        options.validate()?;
        let pool = thread_pool(options.threads)?;
        // Loaded on the model's own threads: packing (or quantizing) the
        // weights splits their panels among them.
        let open = || {
            ModelFolder::open(dir, options, fallback_max_length, |config, kernels, w| {
                let bert = Bert::load(config.clone(), kernels, w, rows, options.precision)?;
                let head = head(config, &kernels, w)?;
                Ok((bert, head))
            })
        };
        let (folder, (bert, head)) = match &pool {
            Some(pool) => pool.install(open),
            None => open(),
        }?;
        check_vocab(&folder.tokenizer, &bert.config, dir)?;
        if rows == Rows::Cls {
            check_pair_types(&folder.tokenizer, &bert.config, dir)?;
        }
        let runner = Runner {
            bert,
            tokenizer: folder.tokenizer,
            max_length: folder.max_length,
            precision: options.precision,
            batch_size: options.batch_size,
            token_budget: options.token_budget,
            pool,
            scratch: Mutex::new(Vec::new()),
        };
        // Every pool thread sizes its GEMM packing buffers now rather than
        // whenever the scheduler first hands it work, so that steady-state
        // forward passes never allocate, whichever threads run them.
        runner.install(|| rayon::broadcast(|_| crossenc_kernels::gemm::reserve_thread_buffers()));
        Ok((runner, head))
    }

    /// The ISA of the kernels and, in a reduced precision, the path of its
    /// linear layers and the precision of attention's products.
    pub(crate) fn kernel_path(&self) -> String {
        let k = &self.bert.kernels;
        // Attention's products take bf16 operands in the reduced precisions
        // where the CPU has a bf16 dot product (BertLayer::bf16_attention).
        let attention = if k.bf16_dot() { "bf16" } else { "f32" };
        match self.precision {
            crate::Precision::F32 => k.isa().to_string(),
            crate::Precision::Int8 => format!(
                "{} (int8: {}, attention: {attention})",
                k.isa(),
                k.int8_path()
            ),
            crate::Precision::Bf16 => format!(
                "{} (bf16: {}, attention: {attention})",
                k.isa(),
                k.bf16_path()
            ),
        }
    }

    /// Runs `f` on the pool this model computes on (see
    /// [`crate::CrossEncoder::install`]).
    pub(crate) fn install<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => rayon::scope(|_| f()),
        }
    }

    /// The one loop, over `total` inputs:
    /// - `encode(tokenizer, range)` turns inputs `range` into their
    ///   sequences (one each, or a document's windows);
    /// - `forward(batch, scratch, out)` runs a batch of sequences and pushes
    ///   one result per sequence onto `out`, in order;
    /// - `emit(index, sequences, results)` receives each input, in order,
    ///   with its sequences and their results, after the batch that
    ///   completes it;
    /// - `progress` hears after every batch.
    ///
    /// Sequences of several inputs share a batch up to the batch size and the
    /// token budget; an input's windows are batched like any other sequence.
    pub(crate) fn run<S: Send>(
        &self,
        total: usize,
        encode: impl Fn(&PairTokenizer, Range<usize>) -> Result<Vec<Vec<EncodedPair>>> + Send + Sync,
        mut forward: impl FnMut(&PackedBatch, &mut Scratch, &mut Vec<S>) + Send,
        mut emit: impl FnMut(usize, &[EncodedPair], Vec<S>) -> Result<()> + Send,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<()> {
        self.install(|| {
            let mut scratch = self.take_scratch();
            let mut batch = PackedBatch::new();
            let mut fresh: Vec<S> = Vec::new();
            let mut results: VecDeque<S> = VecDeque::new();
            let mut run_chunk = |first: usize| -> Result<()> {
                let inputs = encode(&self.tokenizer, first..total.min(first + TOKENIZE_CHUNK))?;
                // ends[i]: sequences of inputs 0..=i
                let ends: Vec<usize> = inputs
                    .iter()
                    .scan(0, |n, seqs| {
                        *n += seqs.len();
                        Some(*n)
                    })
                    .collect();
                let sequences: Vec<EncodedPair> = inputs.into_iter().flatten().collect();
                results.clear();
                let (mut next, mut emitted) = (0, 0);
                while next < sequences.len() {
                    let n = self.next_batch_len(&sequences[next..]);
                    batch.clear();
                    for e in &sequences[next..next + n] {
                        batch.push(&e.input_ids, &e.token_type_ids)?;
                    }
                    self.bert.check(&batch)?;
                    fresh.clear();
                    forward(&batch, &mut scratch, &mut fresh);
                    debug_assert_eq!(fresh.len(), n, "one result per sequence");
                    results.extend(fresh.drain(..));
                    next += n;
                    // Every input whose last sequence is done goes out now.
                    while emitted < ends.len() && ends[emitted] <= next {
                        let start = if emitted == 0 { 0 } else { ends[emitted - 1] };
                        let mine = results.drain(..ends[emitted] - start).collect();
                        emit(first + emitted, &sequences[start..ends[emitted]], mine)?;
                        emitted += 1;
                    }
                    progress(Progress {
                        done: first + emitted,
                        total,
                    });
                }
                // Every input has at least one sequence, so the last batch
                // handed out the last input.
                debug_assert_eq!(emitted, ends.len(), "every input handed out");
                Ok(())
            };
            let result = (0..total)
                .step_by(TOKENIZE_CHUNK)
                .try_for_each(&mut run_chunk);
            self.scratch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(scratch);
            result
        })
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// How many of `sequences` go into the next batch: up to the batch size
    /// and the token budget, and at least one.
    fn next_batch_len(&self, sequences: &[EncodedPair]) -> usize {
        let mut tokens = 0;
        let mut n = 0;
        for e in sequences.iter().take(self.batch_size) {
            tokens += e.input_ids.len();
            if n > 0 && tokens > self.token_budget {
                break;
            }
            n += 1;
        }
        n
    }
}

/// Refuses, at load, a pair tokenizer whose token types the model has no
/// embedding for (e.g. a BERT tokenizer, which gives the document type 1, on
/// a model with `type_vocab_size` 1).
fn check_pair_types(tokenizer: &PairTokenizer, config: &BertConfig, dir: &Path) -> Result<()> {
    let pair = tokenizer.encode_pairs(&[("a", "b")], 0)?;
    let max_type = pair[0].token_type_ids.iter().copied().max().unwrap_or(0);
    if max_type as usize >= config.type_vocab_size {
        return Err(crate::Error::Config {
            path: dir.join("config.json"),
            message: format!(
                "type_vocab_size is {}, but tokenizer.json gives a pair's second text token type {max_type} (tokenizer.json does not belong to this model?)",
                config.type_vocab_size
            ),
        });
    }
    Ok(())
}

/// Refuses, at load, a tokenizer that can emit a token id the model has no
/// embedding row for (a tokenizer.json from another model, or a vocab_size
/// that was edited).
fn check_vocab(tokenizer: &PairTokenizer, config: &BertConfig, dir: &Path) -> Result<()> {
    let max_id = tokenizer.max_token_id();
    if max_id as usize >= config.vocab_size {
        return Err(crate::Error::Config {
            path: dir.join("config.json"),
            message: format!(
                "vocab_size is {}, but tokenizer.json has token id {max_id} (tokenizer.json does not belong to this model?)",
                config.vocab_size
            ),
        });
    }
    Ok(())
}
