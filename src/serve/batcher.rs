//! Dynamic batching: pairs from concurrent requests share one
//! [`CrossEncoder::predict_all`] call, up to a token budget.
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
use crate::{CrossEncoder, Error, Prediction, Result};

/// One request's pairs and where its predictions go.
struct Job {
    pairs: Vec<(String, String)>,
    /// Tokens the pairs will take, estimated from their bytes (the model
    /// cuts each pair at its max length).
    tokens: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<Prediction>>>,
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
    pub(crate) fn start(
        model: Arc<CrossEncoder>,
        max_tokens: usize,
        metrics: Arc<Metrics>,
    ) -> Batcher {
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

    /// Queues `pairs` (non-empty) and returns where their predictions, in
    /// order, will arrive.
    pub(crate) fn submit(
        &self,
        pairs: Vec<(String, String)>,
        max_length: usize,
    ) -> oneshot::Receiver<Result<Vec<Prediction>>> {
        let (reply, receiver) = oneshot::channel();
        let tokens = pairs
            .iter()
            .map(|(q, d)| estimate_tokens(q, d, max_length))
            .sum();
        let mut queue = self.shared.lock();
        queue.jobs.push_back(Job {
            pairs,
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

/// A pair's tokens, estimated: about one per 4 bytes of text plus the
/// special tokens, at most the max length.
fn estimate_tokens(query: &str, document: &str, max_length: usize) -> usize {
    ((query.len() + document.len()) / 4 + 3).min(max_length)
}

fn run(model: &CrossEncoder, shared: &Shared, max_tokens: usize, metrics: &Metrics) {
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

/// Scores the jobs in one call and hands each its predictions. When the
/// call fails (one pair's query too long for `only_second`, say), each job
/// is retried alone so that one bad request cannot fail the others.
fn compute(model: &CrossEncoder, jobs: Vec<Job>, metrics: &Metrics) {
    let pairs: Vec<(&str, &str)> = jobs
        .iter()
        .flat_map(|j| j.pairs.iter().map(|(q, d)| (q.as_str(), d.as_str())))
        .collect();
    let start = Instant::now();
    let result = predict(model, &pairs);
    metrics.observe_inference(start.elapsed());
    match result {
        Ok(mut predictions) => {
            let tokens = predictions.iter().map(|p| p.tokens).sum();
            metrics.observe_batch(pairs.len(), tokens);
            // Hand out from the back so each job's predictions split off in O(its length).
            for job in jobs.into_iter().rev() {
                let mine = predictions.split_off(predictions.len() - job.pairs.len());
                let _ = job.reply.send(Ok(mine));
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

/// `predict_all`, with a panic (a bug of ours) turned into an error for the
/// requests in the call, so that the server keeps serving the next ones.
fn predict(model: &CrossEncoder, pairs: &[(&str, &str)]) -> Result<Vec<Prediction>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.predict_all(pairs)))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Server {
                message: format!(
                    "internal error while scoring (a bug, please report it): {message}"
                ),
            })
        })
}
