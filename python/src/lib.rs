//! `crossenc._crossenc`: the native half of the `crossenc` Python package.
//!
//! One class, `Model`: a loaded [`CrossEncoder`] and a `predict` that takes
//! the queries and documents as two lists of `str` and returns the scores as
//! the bytes of a float32 `[n, labels]` array. Everything sentence-transformers
//! users see (pair shapes, activation callables, numpy arrays, ranking) is in
//! `crossenc/__init__.py`; this file only converts, releases the GIL, and maps
//! the engine's errors to Python exceptions.
#![deny(unsafe_op_in_unsafe_fn)]

use std::path::PathBuf;

use crossenc::{CrossEncoder, Error, LongDocs, Precision, ScoreActivation};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

/// The engine's error as the Python exception a caller would expect: a
/// missing or unreadable model is an `OSError` (as with
/// sentence-transformers), a thread pool or CPU problem a `RuntimeError`, and
/// everything else, bad options, input or model files, a `ValueError`. The
/// message is the engine's own.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io { .. }
        | Error::MissingFile { .. }
        | Error::ModelPath { .. }
        | Error::Hub { .. } => PyOSError::new_err(message),
        Error::Isa(_) | Error::ThreadPool(_) => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

fn bad_option(name: &str, value: &str, allowed: &str) -> PyErr {
    PyValueError::new_err(format!("{name}='{value}' is not one of {allowed}"))
}

fn parse_precision(s: &str) -> PyResult<Precision> {
    match s {
        "f32" | "float32" | "fp32" => Ok(Precision::F32),
        "int8" => Ok(Precision::Int8),
        "bf16" | "bfloat16" => Ok(Precision::Bf16),
        _ => Err(bad_option("precision", s, "'f32', 'bf16', 'int8'")),
    }
}

fn parse_activation(s: &str) -> PyResult<ScoreActivation> {
    match s {
        "sigmoid" => Ok(ScoreActivation::Sigmoid),
        "identity" => Ok(ScoreActivation::Identity),
        "softmax" => Ok(ScoreActivation::Softmax),
        _ => Err(bad_option(
            "activation",
            s,
            "'sigmoid', 'identity', 'softmax'",
        )),
    }
}

fn parse_long_docs(s: &str) -> PyResult<LongDocs> {
    match s {
        "first" => Ok(LongDocs::First),
        "max" => Ok(LongDocs::Max),
        "mean" => Ok(LongDocs::Mean),
        _ => Err(bad_option("long_docs", s, "'first', 'max', 'mean'")),
    }
}

fn positive(name: &str, value: Option<usize>) -> PyResult<Option<usize>> {
    match value {
        Some(0) => Err(PyValueError::new_err(format!(
            "{name}=0: pass a positive number, or None for the default"
        ))),
        v => Ok(v),
    }
}

/// A loaded cross-encoder. Immutable and `Sync`: Python threads share one
/// and call `predict` at the same time (each call releases the GIL).
#[pyclass(frozen, module = "crossenc._crossenc")]
struct Model {
    inner: CrossEncoder,
    path: PathBuf,
}

#[pymethods]
impl Model {
    /// Loads `model`: a folder, or a Hugging Face hub id resolved through
    /// the hub cache (downloading what is missing unless HF_HUB_OFFLINE=1).
    #[new]
    #[pyo3(signature = (
        model, *, max_length=None, precision="f32", threads=None, activation=None,
        long_docs="first", window_stride=None, revision=None, token_budget=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: String,
        max_length: Option<usize>,
        precision: &str,
        threads: Option<usize>,
        activation: Option<&str>,
        long_docs: &str,
        window_stride: Option<usize>,
        revision: Option<String>,
        token_budget: Option<usize>,
    ) -> PyResult<Model> {
        let mut builder = CrossEncoder::builder()
            .precision(parse_precision(precision)?)
            .long_docs(parse_long_docs(long_docs)?);
        if let Some(tokens) = positive("max_length", max_length)? {
            builder = builder.max_length(tokens);
        }
        if let Some(n) = positive("threads", threads)? {
            builder = builder.threads(n);
        }
        if let Some(a) = activation {
            builder = builder.activation(parse_activation(a)?);
        }
        if let Some(tokens) = positive("window_stride", window_stride)? {
            builder = builder.window_stride(tokens);
        }
        if let Some(tokens) = positive("token_budget", token_budget)? {
            builder = builder.token_budget(tokens);
        }
        // Downloading and loading take a while: other Python threads run meanwhile.
        py.detach(move || {
            let options = crossenc::hub::HubOptions {
                revision,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let path = crossenc::hub::resolve(&model, &options)?;
            let inner = builder.build(&path)?;
            Ok(Model { inner, path })
        })
        .map_err(to_py)
    }

    /// The model folder (a hub id resolved to its snapshot in the cache).
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Logits per pair.
    #[getter]
    fn num_labels(&self) -> usize {
        self.inner.config().num_labels()
    }

    /// Label names, in logit order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// Tokens a pair (or a window) is cut to, special tokens included.
    #[getter]
    fn max_length(&self) -> usize {
        self.inner.max_length()
    }

    /// `f32`, `bf16` or `int8`.
    #[getter]
    fn precision(&self) -> &'static str {
        self.inner.precision().name()
    }

    /// The kernel path in use, e.g. `avx512 (int8: avx512-vnni, attention: bf16)`.
    #[getter]
    fn kernel_path(&self) -> String {
        self.inner.kernel_path()
    }

    /// The model's own score activation: `sigmoid`, `identity` or `softmax`.
    #[getter]
    fn activation(&self) -> &'static str {
        self.inner.activation().name()
    }

    /// `first`, `max` or `mean`.
    #[getter]
    fn long_docs(&self) -> &'static str {
        self.inner.long_docs().name()
    }

    /// Threads the model computes on.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// Scores `(queries[i], documents[i])` for every i: the bytes of a
    /// float32 `[n, num_labels]` array in native byte order, after
    /// `activation` (the model's own when None).
    #[pyo3(signature = (queries, documents, activation=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<String>,
        documents: Vec<String>,
        activation: Option<&str>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        if queries.len() != documents.len() {
            return Err(PyValueError::new_err(format!(
                "{} queries but {} documents: pass one query per document",
                queries.len(),
                documents.len()
            )));
        }
        let activation = activation.map(parse_activation).transpose()?;
        let labels = self.num_labels();
        if activation == Some(ScoreActivation::Softmax) && labels == 1 {
            return Err(PyValueError::new_err(
                "softmax over a single label is 1 for every pair; use sigmoid or identity",
            ));
        }
        let pairs: Vec<(String, String)> = queries.into_iter().zip(documents).collect();
        let scores = py
            .detach(|| {
                let mut scores = Vec::with_capacity(pairs.len() * labels);
                self.inner.predict_each(
                    &pairs,
                    |_| {},
                    |_, prediction| match activation {
                        Some(a) => scores.extend(a.apply(&prediction.logits)),
                        None => scores.extend(prediction.scores),
                    },
                )?;
                Ok(scores)
            })
            .map_err(to_py)?;
        let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_ne_bytes()).collect();
        Ok(PyByteArray::new(py, &bytes))
    }
}

/// crossenc's engine, loaded by `crossenc.CrossEncoder`.
#[pymodule]
fn _crossenc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
