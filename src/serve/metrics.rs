//! Counters and histograms for `GET /metrics`, in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A histogram with fixed upper bounds (cumulative when rendered).
struct Histogram {
    bounds: &'static [f64],
    /// counts[i]: observations in (bounds[i-1], bounds[i]]; the last one +Inf.
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths (sizes are integers, times µs).
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const PAIRS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
const TOKENS: &[f64] = &[
    64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
];

/// Everything `GET /metrics` reports.
pub(crate) struct Metrics {
    /// (endpoint, status) -> requests answered.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    in_flight: AtomicUsize,
    queue: AtomicUsize,
    dropped: AtomicU64,
    request_time: Histogram,
    tokenization_time: Histogram,
    queue_time: Histogram,
    inference_time: Histogram,
    batch_pairs: Histogram,
    batch_tokens: Histogram,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            in_flight: AtomicUsize::new(0),
            queue: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            request_time: Histogram::new(SECONDS),
            tokenization_time: Histogram::new(SECONDS),
            queue_time: Histogram::new(SECONDS),
            inference_time: Histogram::new(SECONDS),
            batch_pairs: Histogram::new(PAIRS),
            batch_tokens: Histogram::new(TOKENS),
        }
    }

    pub(crate) fn request_done(&self, endpoint: &str, status: u16, time: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((endpoint.to_string(), status)).or_insert(0) += 1;
        drop(requests);
        self.request_time.observe(time.as_secs_f64());
    }

    /// Counts a request in; `false` (and nothing counted) when `max` are in flight.
    pub(crate) fn try_enter(&self, max: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn set_queue(&self, jobs: usize) {
        self.queue.store(jobs, Ordering::Relaxed);
    }

    pub(crate) fn dropped_request(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observe_tokenization(&self, time: Duration) {
        self.tokenization_time.observe(time.as_secs_f64());
    }

    pub(crate) fn observe_queue_time(&self, time: Duration) {
        self.queue_time.observe(time.as_secs_f64());
    }

    pub(crate) fn observe_inference(&self, time: Duration) {
        self.inference_time.observe(time.as_secs_f64());
    }

    pub(crate) fn observe_batch(&self, pairs: usize, tokens: usize) {
        self.batch_pairs.observe(pairs as f64);
        self.batch_tokens.observe(tokens as f64);
    }

    /// The Prometheus text exposition of everything above.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP crossenc_requests_total Requests answered, by endpoint and HTTP status.\n",
        );
        out.push_str("# TYPE crossenc_requests_total counter\n");
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "crossenc_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        let gauges = [
            (
                "crossenc_requests_in_flight",
                "Requests being served.",
                self.in_flight.load(Ordering::Relaxed) as u64,
            ),
            (
                "crossenc_queue_size",
                "Requests queued for the model.",
                self.queue.load(Ordering::Relaxed) as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP crossenc_dropped_requests_total Queued requests dropped because their client had gone.\n\
             # TYPE crossenc_dropped_requests_total counter\n\
             crossenc_dropped_requests_total {}",
            self.dropped.load(Ordering::Relaxed)
        );
        self.request_time.render(
            &mut out,
            "crossenc_request_duration_seconds",
            "Time from a request's arrival to its response.",
        );
        self.tokenization_time.render(
            &mut out,
            "crossenc_tokenization_duration_seconds",
            "Time to tokenize a request's pairs (before it queues).",
        );
        self.queue_time.render(
            &mut out,
            "crossenc_queue_duration_seconds",
            "Time a request waited for the model.",
        );
        self.inference_time.render(
            &mut out,
            "crossenc_inference_duration_seconds",
            "Time of one model call (the forward passes) over a batch of requests.",
        );
        self.batch_pairs.render(
            &mut out,
            "crossenc_batch_pairs",
            "Pairs per model call (requests batched together).",
        );
        self.batch_tokens.render(
            &mut out,
            "crossenc_batch_tokens",
            "Tokens per model call, special tokens included.",
        );
        out
    }
}
