//! Dynamic batching: pairs (or texts) from concurrent requests share one
//! model call (`predict_all`, or `embed`), up to a token budget.
//!
//! Requests queue here as jobs; one thread (off the async workers) takes
//! every queued job whose estimated tokens fit the budget and scores them
//! together on the model's rayon pool, where the runner packs their
//! sequences into full token-budgeted batches. Our scores do not depend on
//! what else is in a batch (tests/runner.rs), so a pair gets the same score
//! as from `crossenc score` whatever the concurrency. A job whose client has
//! gone (its receiver dropped) is skipped before it is computed.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::metrics::Metrics;
use super::Served;
use crate::{EncodedPair, Error, Prediction, Result};

/// What a request asks the model for.
pub(crate) enum Input {
    /// Tokenized (query, document) pairs, for a reranker: each pair's
    /// sequences (one, or a long document's windows). Requests are tokenized
    /// as they arrive, while the model computes earlier ones.
    Pairs(Vec<Vec<EncodedPair>>),
    /// Texts, for an embedder.
    Texts(Vec<String>),
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Pairs(p) => p.len(),
            Input::Texts(t) => t.len(),
        }
    }
}

/// What the model answers, one entry per input item.
pub(crate) enum Output {
    Predictions(Vec<Prediction>),
    Embeddings(Vec<Vec<f32>>),
}

/// One request's input and where its output goes.
struct Job {
    input: Input,
    /// Tokens the input takes: counted for pairs, estimated from the bytes
    /// for texts (the model cuts each at its max length).
    tokens: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Output>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Set at shutdown: the thread finishes what is queued, then exits.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue (pushes
        // and pops only): keep serving.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue and the thread that drains it.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Batcher {
    /// Starts the batching thread for `model`, taking up to `max_tokens`
    /// estimated tokens of queued requests per call (always at least one
    /// request).
    pub(crate) fn start(model: Arc<Served>, max_tokens: usize, metrics: Arc<Metrics>) -> Batcher {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let thread = {
            let (shared, metrics) = (Arc::clone(&shared), Arc::clone(&metrics));
            std::thread::Builder::new()
                .name("crossenc-batcher".into())
                .spawn(move || run(&model, &shared, max_tokens, &metrics))
                .expect("spawning the batching thread")
        };
        Batcher {
            shared,
            thread: Some(thread),
            metrics,
        }
    }

    /// Queues `input` (non-empty) and returns where its output, in order,
    /// will arrive.
    pub(crate) fn submit(
        &self,
        input: Input,
        max_length: usize,
    ) -> oneshot::Receiver<Result<Output>> {
        let (reply, receiver) = oneshot::channel();
        let tokens = match &input {
            Input::Pairs(pairs) => pairs.iter().flatten().map(|s| s.input_ids.len()).sum(),
            Input::Texts(texts) => texts.iter().map(|t| estimate_tokens(t, max_length)).sum(),
        };
        let mut queue = self.shared.lock();
        queue.jobs.push_back(Job {
            input,
            tokens,
            enqueued: Instant::now(),
            reply,
        });
        self.metrics.set_queue(queue.jobs.len());
        drop(queue);
        self.shared.ready.notify_one();
        receiver
    }

    /// Finishes the queued jobs, then stops the thread.
    pub(crate) fn shutdown(mut self) {
        self.close();
    }

    fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.close();
    }
}

/// A text's tokens, estimated: about one per 4 bytes plus the special
/// tokens, at most the max length.
fn estimate_tokens(text: &str, max_length: usize) -> usize {
    (text.len() / 4 + 2).min(max_length)
}

fn run(model: &Served, shared: &Shared, max_tokens: usize, metrics: &Metrics) {
    loop {
        let jobs = {
            let mut queue = shared.lock();
            while queue.jobs.is_empty() && !queue.closed {
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.jobs.is_empty() {
                return;
            }
            let mut jobs = Vec::new();
            let mut tokens = 0;
            while let Some(job) = queue.jobs.front() {
                if !jobs.is_empty() && tokens + job.tokens > max_tokens {
                    break;
                }
                let job = queue.jobs.pop_front().expect("front exists");
                // The client went away while the job queued: nothing to compute.
                if job.reply.is_closed() {
                    metrics.dropped_request();
                    continue;
                }
                tokens += job.tokens;
                jobs.push(job);
            }
            metrics.set_queue(queue.jobs.len());
            jobs
        };
        if jobs.is_empty() {
            continue;
        }
        for job in &jobs {
            metrics.observe_queue_time(job.enqueued.elapsed());
        }
        compute(model, jobs, metrics);
    }
}

/// Runs the jobs in one model call and hands each its part of the output.
/// When the call fails (one pair's query too long for `only_second`, say),
/// each job is retried alone so that one bad request cannot fail the others.
fn compute(model: &Served, jobs: Vec<Job>, metrics: &Metrics) {
    let lengths: Vec<usize> = jobs.iter().map(|j| j.input.len()).collect();
    let start = Instant::now();
    let result = guarded(|| match model {
        Served::Reranker(m) => {
            let inputs: Vec<Vec<EncodedPair>> = jobs
                .iter()
                .flat_map(|j| match &j.input {
                    Input::Pairs(p) => p.clone(),
                    Input::Texts(_) => Vec::new(),
                })
                .collect();
            let predictions = m.predict_encoded(&inputs)?;
            let tokens = predictions.iter().map(|p| p.tokens).sum();
            metrics.observe_batch(inputs.len(), tokens);
            Ok(split(predictions, &lengths, Output::Predictions))
        }
        Served::Embedder(m) => {
            let texts: Vec<&str> = jobs
                .iter()
                .flat_map(|j| match &j.input {
                    Input::Texts(t) => t.iter().map(String::as_str).collect(),
                    Input::Pairs(_) => Vec::new(),
                })
                .collect();
            let embeddings = m.embed(&texts)?;
            metrics.observe_batch(texts.len(), 0);
            Ok(split(embeddings, &lengths, Output::Embeddings))
        }
    });
    metrics.observe_inference(start.elapsed());
    match result {
        Ok(outputs) => {
            for (job, output) in jobs.into_iter().zip(outputs) {
                let _ = job.reply.send(Ok(output));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let job = jobs.into_iter().next().expect("one job");
            let _ = job.reply.send(Err(e));
        }
        Err(_) => {
            for job in jobs {
                compute(model, vec![job], metrics);
            }
        }
    }
}

/// `all` cut into consecutive parts of `lengths`, each wrapped by `wrap`.
fn split<T>(mut all: Vec<T>, lengths: &[usize], wrap: fn(Vec<T>) -> Output) -> Vec<Output> {
    let mut parts: Vec<Output> = lengths
        .iter()
        .rev()
        .map(|&n| wrap(all.split_off(all.len() - n)))
        .collect();
    parts.reverse();
    parts
}

/// `f`, with a panic (a bug of ours) turned into an error for the requests
/// in the call, so that the server keeps serving the next ones.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Server {
            message: format!("internal error while scoring (a bug, please report it): {message}"),
        })
    })
}
