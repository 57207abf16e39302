//! An HTTP reranking server (feature `server`): the APIs RAG frameworks
//! already speak, over one loaded [`CrossEncoder`].
//!
//! - `POST /rerank`: text-embeddings-inference's shape
//!   (`{"query", "texts", "raw_scores", "return_text", "truncate"}` ->
//!   `[{"index", "score", "text"?}]`);
//! - `POST /v1/rerank`, `POST /v2/rerank`: Cohere's and Jina's
//!   (`{"query", "documents", "top_n", "return_documents"}` -> `{"id",
//!   "results": [{"index", "relevance_score", "document"?}], "meta", "usage"}`);
//! - `POST /predict`: TEI's, for pairs and multi-label models;
//! - `POST /embed`: TEI's, when the server runs a sentence-transformers
//!   embedding model ([`Server::start_embedder`]) instead of a reranker;
//! - `GET /health`, `GET /info`, `GET /metrics` (Prometheus text).
//!
//! Results are best first, equal scores in input order. Errors are JSON
//! `{"error", "error_type"}`: 400 malformed JSON, 413 a body over the payload
//! limit or more texts than the client batch size, 422 empty or ill-typed
//! input, 429 too many requests in flight, 401 a missing or wrong API key,
//! 408 a request slower than the timeout. Pairs of concurrent requests are
//! scored together (dynamic batching), on the model's rayon pool, never on the
//! async workers; scores equal `crossenc score`'s whatever the concurrency.
//!
//! ```no_run
//! # fn main() -> crossenc::Result<()> {
//! use crossenc::serve::{ServeOptions, Server};
//! let model = crossenc::CrossEncoder::from_dir("models/ms-marco-MiniLM-L6-v2")?;
//! let server = Server::start(model, ServeOptions::default())?;
//! println!("listening on http://{}", server.addr());
//! server.run_until_signal() // SIGTERM / SIGINT: finish what is in flight, then return
//! # }
//! ```

mod api;
mod batcher;
mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::oneshot;

use self::api::ApiError;
use self::batcher::Batcher;
use self::metrics::Metrics;
use crate::{CrossEncoder, Error, Result, SentenceEmbedder};

/// The model a server runs.
// One per server, behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Served {
    Reranker(CrossEncoder),
    Embedder(SentenceEmbedder),
}

impl Served {
    fn max_length(&self) -> usize {
        match self {
            Served::Reranker(m) => m.max_length(),
            Served::Embedder(m) => m.max_length(),
        }
    }
}

/// How the server listens and what it accepts.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to bind (default `127.0.0.1`; `0.0.0.0` to accept other hosts).
    pub host: String,
    /// Port (default 8080; 0 picks a free one, see [`Server::addr`]).
    pub port: u16,
    /// Estimated tokens of queued requests scored in one model call (default 16384).
    pub max_batch_tokens: usize,
    /// Texts (or pairs) one request may send (default 1000); more is a 413.
    pub max_client_batch_size: usize,
    /// Requests served at once (default 512); past it, 429.
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes (default 2,000,000); past it, 413.
    pub payload_limit: usize,
    /// A request that takes longer (reading its body included) gets a 408 (default 60 s).
    pub request_timeout: Duration,
    /// When set, every endpoint but `/health` wants `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// The model's name in `/info` and Cohere/Jina responses.
    pub model_id: String,
    /// Whether a request that does not say `truncate` may be truncated (TEI's
    /// default is no: an over-long input is a 422). Default true.
    pub truncate: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            max_batch_tokens: 16384,
            max_client_batch_size: 1000,
            max_concurrent_requests: 512,
            payload_limit: 2_000_000,
            request_timeout: Duration::from_secs(60),
            api_key: None,
            model_id: "crossenc".into(),
            truncate: true,
        }
    }
}

/// What every handler shares.
pub(crate) struct App {
    model: Arc<Served>,
    options: ServeOptions,
    batcher: Batcher,
    metrics: Arc<Metrics>,
    ids: AtomicU64,
    started: u64,
}

impl App {
    /// A fresh id for a request or response.
    fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{:012x}-{n:08x}", self.started)
    }

    /// The reranker, for the endpoints that need one.
    fn reranker(&self) -> std::result::Result<&CrossEncoder, ApiError> {
        match &*self.model {
            Served::Reranker(m) => Ok(m),
            Served::Embedder(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "this server runs an embedding model: POST /embed",
            )),
        }
    }

    /// The embedder, for `/embed`.
    fn embedder(&self) -> std::result::Result<&SentenceEmbedder, ApiError> {
        match &*self.model {
            Served::Embedder(m) => Ok(m),
            Served::Reranker(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "this server runs a reranker: POST /rerank, /v1/rerank, /v2/rerank or /predict",
            )),
        }
    }

    /// The rerank endpoints need one score per pair.
    fn single_label(&self) -> std::result::Result<&CrossEncoder, ApiError> {
        let model = self.reranker()?;
        let labels = model.config().num_labels();
        if labels == 1 {
            Ok(model)
        } else {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                format!("the model has {labels} labels; reranking needs one (use /predict)"),
            ))
        }
    }
}

/// A running server; dropping it shuts it down as [`Server::shutdown`] does.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Server {
    /// Binds `options.host:options.port` and serves `model` on a thread of
    /// its own until [`Server::shutdown`] (or a signal, with
    /// [`Server::run_until_signal`]).
    pub fn start(model: CrossEncoder, options: ServeOptions) -> Result<Server> {
        Server::start_serving(Served::Reranker(model), options)
    }

    /// As [`Server::start`], for a sentence-transformers embedding model:
    /// `POST /embed` (TEI's shape) instead of the rerank endpoints.
    pub fn start_embedder(model: SentenceEmbedder, options: ServeOptions) -> Result<Server> {
        Server::start_serving(Served::Embedder(model), options)
    }

    fn start_serving(model: Served, options: ServeOptions) -> Result<Server> {
        let server_error = |message: String| Error::Server { message };
        let listener =
            std::net::TcpListener::bind((options.host.as_str(), options.port)).map_err(|e| {
                server_error(format!(
                    "cannot listen on {}:{}: {e}",
                    options.host, options.port
                ))
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| server_error(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| server_error(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // HTTP and JSON only: the model computes on its own pool.
            .worker_threads(2)
            .thread_name("crossenc-http")
            .enable_all()
            .build()
            .map_err(|e| server_error(format!("cannot start the async runtime: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("crossenc-server".into())
            .spawn(move || runtime.block_on(serve(listener, model, options, stopped)))
            .map_err(|e| server_error(e.to_string()))?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, finishes the requests in flight, and returns.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_and_join()
    }

    /// Serves until SIGTERM or SIGINT (Ctrl-C), then shuts down as
    /// [`Server::shutdown`] does.
    pub fn run_until_signal(self) -> Result<()> {
        wait_for_signal()?;
        self.shutdown()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(Error::Server {
                    message: "the server thread panicked".into(),
                })
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Blocks until SIGTERM or SIGINT.
fn wait_for_signal() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Server {
            message: e.to_string(),
        })?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).map_err(|e| Error::Server {
                message: format!("cannot listen for SIGTERM: {e}"),
            })?;
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        Ok(())
    })
}

async fn serve(
    listener: std::net::TcpListener,
    model: Served,
    options: ServeOptions,
    stopped: oneshot::Receiver<()>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Server {
        message: e.to_string(),
    })?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::new());
    let batcher = Batcher::start(
        Arc::clone(&model),
        options.max_batch_tokens,
        Arc::clone(&metrics),
    );
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64 & 0xFFFF_FFFF_FFFF);
    let app = Arc::new(App {
        model,
        batcher,
        metrics,
        ids: AtomicU64::new(0),
        started,
        options,
    });
    let router = Router::new()
        .route("/rerank", post(api::rerank_tei))
        .route("/v1/rerank", post(api::rerank_cohere))
        .route("/v2/rerank", post(api::rerank_cohere))
        .route("/predict", post(api::predict))
        .route("/embed", post(api::embed))
        .route("/health", get(api::health))
        .route("/info", get(api::info))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(app.options.payload_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            guard,
        ))
        .with_state(Arc::clone(&app));
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
        .map_err(|e| Error::Server {
            message: e.to_string(),
        });
    // Every request has been answered; the batcher's queue is empty.
    if let Ok(app) = Arc::try_unwrap(app) {
        app.batcher.shutdown();
    }
    result
}

/// Around every request: the request id, the API key, the in-flight limit,
/// the timeout and the metrics.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| app.next_id(), str::to_string);
    let mut response = if !authorized(&app, &req, &endpoint) {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: send `Authorization: Bearer <key>`",
        )
        .into_response()
    } else if !app.metrics.try_enter(app.options.max_concurrent_requests) {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            format!(
                "{} requests are in flight (--max-concurrent-requests); retry later",
                app.options.max_concurrent_requests
            ),
        )
        .into_response()
    } else {
        let timeout = app.options.request_timeout;
        let response = match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request took longer than {} s (reading it included)",
                    timeout.as_secs_f64()
                ),
            )
            .into_response(),
        };
        app.metrics.leave();
        response
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    app.metrics
        .request_done(&endpoint, response.status().as_u16(), start.elapsed());
    response
}

/// Whether the request may pass: no key configured, `/health`, or the right
/// bearer token (compared in constant time).
fn authorized(app: &App, req: &Request, endpoint: &str) -> bool {
    let Some(key) = &app.options.api_key else {
        return true;
    };
    if endpoint == "/health" {
        return true;
    }
    let Some(given) = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == key.len()
        && given
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
