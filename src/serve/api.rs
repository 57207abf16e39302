//! The endpoints: request bodies in, response bodies out, and the JSON
//! errors (`{"error", "error_type"}`) every failure becomes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::batcher::{Input, Output};
use super::{App, Served};
use crate::{Error, Prediction};

/// A failed request: its status and message.
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "error_type": self.kind});
        (self.status, json_body(&body)).into_response()
    }
}

/// A JSON response body with its content type.
pub(crate) fn json_body(value: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(value).expect("our responses serialize");
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// The body as `T`: 413 past the payload limit, 400 when it is not JSON,
/// 422 when it is JSON of the wrong shape.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                "the request body is larger than the payload limit (--payload-limit)",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                rejection.body_text(),
            )
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::validation(e.to_string()),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        ),
    })
}

/// The model's error for a request: the client's input (422) or ours (500).
fn model_error(e: Error) -> ApiError {
    match e {
        Error::QueryTooLong { .. } | Error::InvalidOption { .. } | Error::MultiLabel { .. } => {
            ApiError::validation(e.to_string())
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            other.to_string(),
        ),
    }
}

impl App {
    /// Checks a list of texts from a client: not empty, within the client
    /// batch size.
    fn check_count(&self, n: usize, what: &str) -> Result<(), ApiError> {
        if n == 0 {
            return Err(ApiError::validation(format!("`{what}` is empty")));
        }
        if n > self.options.max_client_batch_size {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "validation",
                format!(
                    "{n} {what}: more than the {} a request may send (--max-client-batch-size)",
                    self.options.max_client_batch_size
                ),
            ));
        }
        Ok(())
    }

    /// Runs `input` through the batcher.
    async fn run(&self, input: Input) -> Result<Output, ApiError> {
        let receiver = self.batcher.submit(input, self.model.max_length());
        match receiver.await {
            Ok(result) => result.map_err(model_error),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unhealthy",
                "the server is shutting down",
            )),
        }
    }

    /// Scores `pairs`: tokenized here, on a blocking thread (while the
    /// model computes earlier requests), then through the batcher.
    async fn predict(
        self: &Arc<Self>,
        pairs: Vec<(String, String)>,
    ) -> Result<Vec<Prediction>, ApiError> {
        let app = Arc::clone(self);
        let start = std::time::Instant::now();
        let encoded = tokio::task::spawn_blocking(move || {
            app.reranker()
                .and_then(|m| m.encode_inputs(&pairs).map_err(model_error))
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backend",
                format!("tokenization failed: {e}"),
            )
        })??;
        self.metrics.observe_tokenization(start.elapsed());
        match self.run(Input::Pairs(encoded)).await? {
            Output::Predictions(p) => Ok(p),
            Output::Embeddings(_) => unreachable!("a reranker answers pairs with predictions"),
        }
    }

    /// Refuses truncated pairs unless the client allowed truncation (TEI's
    /// `truncate`), naming the first.
    fn check_truncation(&self, predictions: &[Prediction], truncate: bool) -> Result<(), ApiError> {
        if truncate {
            return Ok(());
        }
        match predictions.iter().position(|p| p.truncated) {
            Some(i) => Err(ApiError::validation(format!(
                "input {i} is longer than the model's max length ({} tokens); send \"truncate\": true to cut it",
                self.model.max_length()
            ))),
            None => Ok(()),
        }
    }
}

/// TEI's `truncation_direction`: only "right" (the end of the text is cut).
fn check_direction(direction: Option<&str>) -> Result<(), ApiError> {
    match direction {
        Some(d) if !d.eq_ignore_ascii_case("right") => Err(ApiError::validation(format!(
            "truncation_direction \"{d}\" is not supported (only \"right\")"
        ))),
        _ => Ok(()),
    }
}

/// Indices of `scores` best first; equal scores keep input order.
fn best_first(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// A single-label score: the logit, or the model's activation of it.
fn score(p: &Prediction, raw: bool) -> f32 {
    if raw {
        p.logits[0]
    } else {
        p.scores[0]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeiRerank {
    query: String,
    texts: Vec<String>,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default)]
    return_text: bool,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    truncation_direction: Option<String>,
}

/// One entry of TEI's `/rerank` response. Scores are f32 (serialized as the
/// shortest decimal that reads back to the same f32, as `crossenc score` prints).
#[derive(Serialize)]
struct TeiRanked<'a> {
    index: usize,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// `POST /rerank` (text-embeddings-inference): `[{"index", "score", "text"?}]`, best first.
pub(crate) async fn rerank_tei(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: TeiRerank = parse(body)?;
    app.check_count(req.texts.len(), "texts")?;
    check_direction(req.truncation_direction.as_deref())?;
    app.single_label()?;
    let pairs = req
        .texts
        .iter()
        .map(|t| (req.query.clone(), t.clone()))
        .collect();
    let predictions = app.predict(pairs).await?;
    app.check_truncation(&predictions, req.truncate.unwrap_or(app.options.truncate))?;
    let scores: Vec<f32> = predictions
        .iter()
        .map(|p| score(p, req.raw_scores))
        .collect();
    let results: Vec<TeiRanked<'_>> = best_first(&scores)
        .into_iter()
        .map(|i| TeiRanked {
            index: i,
            score: scores[i],
            text: req.return_text.then_some(req.texts[i].as_str()),
        })
        .collect();
    Ok(json_body(&results))
}

/// A Cohere/Jina document: a string or `{"text": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Document {
    Text(String),
    Object { text: String },
}

impl Document {
    fn text(&self) -> &str {
        match self {
            Document::Text(t) | Document::Object { text: t } => t,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CohereRerank {
    #[serde(default)]
    model: Option<String>,
    query: String,
    documents: Vec<Document>,
    #[serde(default)]
    top_n: Option<usize>,
    #[serde(default)]
    return_documents: Option<bool>,
}

/// One entry of the Cohere/Jina response.
#[derive(Serialize)]
struct CohereRanked<'a> {
    index: usize,
    relevance_score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<DocumentText<'a>>,
}

#[derive(Serialize)]
struct DocumentText<'a> {
    text: &'a str,
}

/// `POST /v1/rerank`, `POST /v2/rerank` (Cohere, Jina): `{"id", "results":
/// [{"index", "relevance_score", "document"?}], "meta", "usage"}`, best first.
pub(crate) async fn rerank_cohere(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CohereRerank = parse(body)?;
    app.check_count(req.documents.len(), "documents")?;
    if req.top_n == Some(0) {
        return Err(ApiError::validation("top_n must be at least 1"));
    }
    app.single_label()?;
    let pairs = req
        .documents
        .iter()
        .map(|d| (req.query.clone(), d.text().to_string()))
        .collect();
    let predictions = app.predict(pairs).await?;
    let scores: Vec<f32> = predictions.iter().map(|p| score(p, false)).collect();
    let tokens: usize = predictions.iter().map(|p| p.tokens).sum();
    let return_documents = req.return_documents.unwrap_or(false);
    let results: Vec<CohereRanked<'_>> = best_first(&scores)
        .into_iter()
        .take(req.top_n.unwrap_or(usize::MAX))
        .map(|i| CohereRanked {
            index: i,
            relevance_score: scores[i],
            document: return_documents.then(|| DocumentText {
                text: req.documents[i].text(),
            }),
        })
        .collect();
    Ok(json_body(&json!({
        "id": app.next_id(),
        "model": req.model.unwrap_or_else(|| app.options.model_id.clone()),
        "results": results,
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"search_units": 1},
            "tokens": {"input_tokens": tokens, "output_tokens": 0},
        },
        "usage": {"total_tokens": tokens},
    })))
}

/// TEI's `/predict` input: one pair or a list of pairs.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum PredictInputs {
    One((String, String)),
    Many(Vec<(String, String)>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Predict {
    inputs: PredictInputs,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    truncation_direction: Option<String>,
}

/// One label's score in TEI's `/predict` response.
#[derive(Serialize)]
struct LabelScore<'a> {
    score: f32,
    label: &'a str,
}

/// `POST /predict` (text-embeddings-inference): for each pair, its labels'
/// `{"score", "label"}` best first; a single pair gets its list alone.
pub(crate) async fn predict(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Predict = parse(body)?;
    check_direction(req.truncation_direction.as_deref())?;
    let (pairs, single) = match req.inputs {
        PredictInputs::One(pair) => (vec![pair], true),
        PredictInputs::Many(pairs) => (pairs, false),
    };
    let model = app.reranker()?;
    app.check_count(pairs.len(), "inputs")?;
    let predictions = app.predict(pairs).await?;
    app.check_truncation(&predictions, req.truncate.unwrap_or(app.options.truncate))?;
    let labels = model.labels();
    let per_pair: Vec<Vec<LabelScore<'_>>> = predictions
        .iter()
        .map(|p| {
            let values = if req.raw_scores { &p.logits } else { &p.scores };
            best_first(values)
                .into_iter()
                .map(|l| LabelScore {
                    score: values[l],
                    label: &labels[l],
                })
                .collect()
        })
        .collect();
    Ok(if single {
        json_body(&per_pair[0])
    } else {
        json_body(&per_pair)
    })
}

/// `GET /health`.
pub(crate) async fn health() -> Response {
    json_body(&json!({"status": "ok"}))
}

/// `GET /info`: the model and the limits.
pub(crate) async fn info(State(app): State<Arc<App>>) -> Response {
    let o = &app.options;
    let model = match &*app.model {
        Served::Reranker(m) => json!({
            "model_type": "reranker",
            "precision": m.precision().name(),
            "kernels": m.kernel_path(),
            "threads": m.threads(),
            "labels": m.labels(),
            "max_input_length": m.max_length(),
            "long_docs": m.long_docs().name(),
            "activation": m.activation().name(),
        }),
        Served::Embedder(m) => json!({
            "model_type": "embedding",
            "precision": m.precision().name(),
            "kernels": m.kernel_path(),
            "max_input_length": m.max_length(),
            "dimension": m.dimension(),
            "normalize": m.normalize(),
        }),
    };
    let mut info = json!({
        "model_id": o.model_id,
        "version": env!("CARGO_PKG_VERSION"),
        "max_batch_tokens": o.max_batch_tokens,
        "max_client_batch_size": o.max_client_batch_size,
        "max_concurrent_requests": o.max_concurrent_requests,
        "payload_limit": o.payload_limit,
        "request_timeout_secs": o.request_timeout.as_secs_f64(),
        "auth": o.api_key.is_some(),
    });
    if let (Some(info), Some(model)) = (info.as_object_mut(), model.as_object()) {
        info.extend(model.clone());
    }
    json_body(&info)
}

/// TEI's `/embed` input: one text or a list.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum EmbedInputs {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Embed {
    inputs: EmbedInputs,
    #[serde(default)]
    normalize: Option<bool>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    truncation_direction: Option<String>,
    #[serde(default)]
    prompt_name: Option<String>,
}

/// `POST /embed` (text-embeddings-inference): `[[f32, ...], ...]`, one
/// embedding per input, as `crossenc embed` writes them. `normalize` (TEI's
/// default true) L2-normalizes embeddings the model leaves unnormalized; a
/// model whose modules.json normalizes always does.
pub(crate) async fn embed(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Embed = parse(body)?;
    let model = app.embedder()?;
    check_direction(req.truncation_direction.as_deref())?;
    if req.prompt_name.is_some() {
        return Err(ApiError::validation("prompt_name is not supported"));
    }
    let _ = req.truncate; // texts are cut at the max length, as `crossenc embed` does
    let texts = match req.inputs {
        EmbedInputs::One(t) => vec![t],
        EmbedInputs::Many(t) => t,
    };
    app.check_count(texts.len(), "inputs")?;
    let mut embeddings = match app.run(Input::Texts(texts)).await? {
        Output::Embeddings(e) => e,
        Output::Predictions(_) => unreachable!("an embedder answers texts with embeddings"),
    };
    if req.normalize.unwrap_or(true) && !model.normalize() {
        for e in &mut embeddings {
            let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                e.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
    Ok(json_body(&embeddings))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint (POST /rerank, /v1/rerank, /v2/rerank, /predict, /embed; GET /health, /info, /metrics)",
    )
}
