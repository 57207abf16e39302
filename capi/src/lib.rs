//! The C ABI of crossenc: `libcrossenc.a` / `libcrossenc.so` and
//! `include/crossenc.h`.
//!
//! The header is the contract (ownership, threading, return codes); this file
//! implements it. Every exported function:
//! - runs its body inside [`std::panic::catch_unwind`], so no panic crosses
//!   into C (the release profile builds with `panic = "unwind"`): a panic
//!   becomes [`CROSSENC_ERR_PANIC`] with its message;
//! - checks every pointer for NULL and every string for UTF-8 before use, and
//!   reports which argument (and index) was at fault;
//! - hands errors back as a `CString` the caller frees with
//!   [`crossenc_string_free`].
//!
//! Rust callers should use the `crossenc` crate itself; the functions here
//! are `pub` for C and for this crate's tests.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use engine::{CrossEncoder, CrossEncoderBuilder, LongDocs, Precision, ScoreActivation, Truncation};

/// Success.
pub const CROSSENC_OK: c_int = 0;
/// A NULL pointer, invalid UTF-8, or an option out of range.
pub const CROSSENC_ERR_INVALID_ARGUMENT: c_int = 1;
/// The model could not score the input.
pub const CROSSENC_ERR_MODEL: c_int = 2;
/// An internal bug: a panic, caught at the boundary.
pub const CROSSENC_ERR_PANIC: c_int = 3;

/// `CrossencOptions::precision`: f32 (the default).
pub const CROSSENC_PRECISION_F32: i32 = 0;
/// `CrossencOptions::precision`: int8.
pub const CROSSENC_PRECISION_INT8: i32 = 1;
/// `CrossencOptions::precision`: bf16.
pub const CROSSENC_PRECISION_BF16: i32 = 2;
/// `CrossencOptions::long_docs`: truncate (the default).
pub const CROSSENC_LONG_DOCS_FIRST: i32 = 0;
/// `CrossencOptions::long_docs`: windows, the largest logit.
pub const CROSSENC_LONG_DOCS_MAX: i32 = 1;
/// `CrossencOptions::long_docs`: windows, the mean logit.
pub const CROSSENC_LONG_DOCS_MEAN: i32 = 2;
/// `CrossencOptions::truncation`: longest first (the default).
pub const CROSSENC_TRUNCATION_LONGEST_FIRST: i32 = 0;
/// `CrossencOptions::truncation`: keep the query whole.
pub const CROSSENC_TRUNCATION_ONLY_SECOND: i32 = 1;
/// `CrossencOptions::activation`: the model's (the default).
pub const CROSSENC_ACTIVATION_DEFAULT: i32 = 0;
/// `CrossencOptions::activation`: sigmoid.
pub const CROSSENC_ACTIVATION_SIGMOID: i32 = 1;
/// `CrossencOptions::activation`: the raw logit.
pub const CROSSENC_ACTIVATION_IDENTITY: i32 = 2;

/// A loaded cross-encoder behind an opaque pointer.
pub struct CrossencModel {
    model: CrossEncoder,
}

// The header promises that one model may be shared between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CrossencModel>();
};

/// Options for [`crossenc_model_open_with`]; zero in a field means its
/// default. Mirrors `CrossencOptions` in `crossenc.h`, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrossencOptions {
    /// `sizeof(CrossencOptions)` as the caller compiled it.
    pub struct_size: usize,
    /// Threads to compute on; 0 = all cores.
    pub threads: usize,
    /// Longest input in tokens; 0 = the model's.
    pub max_length: usize,
    /// Most sequences per forward pass; 0 = 256.
    pub batch_size: usize,
    /// Most tokens per forward pass; 0 = 2048.
    pub token_budget: usize,
    /// Document tokens between window starts; 0 = half a window.
    pub window_stride: usize,
    /// `CROSSENC_PRECISION_*`.
    pub precision: i32,
    /// `CROSSENC_LONG_DOCS_*`.
    pub long_docs: i32,
    /// `CROSSENC_TRUNCATION_*`.
    pub truncation: i32,
    /// `CROSSENC_ACTIVATION_*`.
    pub activation: i32,
}

impl CrossencOptions {
    /// The defaults, with `struct_size` set (what the header's
    /// `crossenc_options_default()` returns).
    pub fn new() -> CrossencOptions {
        CrossencOptions {
            struct_size: size_of::<CrossencOptions>(),
            ..CrossencOptions::default()
        }
    }
}

/// One document's place in a ranking.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossencRanked {
    /// Index of the document in the caller's array.
    pub index: usize,
    /// Its score.
    pub score: f32,
}

/// A failed call: the code to return and the message for `*err`.
struct Failure {
    code: c_int,
    message: String,
}

impl Failure {
    fn argument(message: impl Into<String>) -> Failure {
        Failure {
            code: CROSSENC_ERR_INVALID_ARGUMENT,
            message: message.into(),
        }
    }

    fn null(name: &str) -> Failure {
        Failure::argument(format!("{name} is NULL"))
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Failure {
        let code = match e {
            engine::Error::InvalidOption { .. } => CROSSENC_ERR_INVALID_ARGUMENT,
            _ => CROSSENC_ERR_MODEL,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Runs `body` with panics caught: a panic becomes a [`CROSSENC_ERR_PANIC`]
/// failure carrying its message.
fn catch<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    // The bodies read the caller's arguments and build new values; a model is
    // immutable once built, so nothing is left half-updated for a later call
    // to observe after a panic.
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        Err(Failure {
            code: CROSSENC_ERR_PANIC,
            message: format!("internal error (a bug in crossenc, please report it): {what}"),
        })
    })
}

/// Sets `*err` to NULL on success, else to the failure's message, and
/// returns the value or the failure's code.
///
/// # Safety
///
/// `err` is NULL or valid for writing one pointer.
unsafe fn report<T>(err: *mut *mut c_char, result: Result<T, Failure>) -> Result<T, c_int> {
    let (message, out) = match result {
        Ok(value) => (None, Ok(value)),
        Err(f) => (Some(f.message), Err(f.code)),
    };
    if !err.is_null() {
        let message = message.map_or(std::ptr::null_mut(), |m| {
            // A message may quote the caller's text, which may hold NUL bytes.
            let m = m.replace('\0', "\\0");
            CString::new(m).map_or(std::ptr::null_mut(), CString::into_raw)
        });
        // SAFETY: `err` is not NULL and, by this function's contract, valid
        // for writing one pointer.
        unsafe { err.write(message) };
    }
    out
}

/// Returns `CROSSENC_OK` or the failure's code.
fn code(result: Result<(), c_int>) -> c_int {
    result.err().unwrap_or(CROSSENC_OK)
}

/// The string `ptr` points to, named `name` in messages.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: not NULL, and NUL-terminated and live for 'a by the contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Failure::argument(format!(
            "{name} is not valid UTF-8 (invalid byte at offset {}); convert the text to UTF-8 first",
            e.valid_up_to()
        ))
    })
}

/// The `n` strings of the array `ptr`, named `name[i]` in messages. With
/// `n == 0` the array is not read and may be NULL.
///
/// # Safety
///
/// `ptr` is NULL or points to `n` pointers, each NULL or to a NUL-terminated
/// string, all outliving `'a`.
unsafe fn str_array<'a>(
    ptr: *const *const c_char,
    n: usize,
    name: &str,
) -> Result<Vec<&'a str>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: not NULL; the caller promises `n` readable pointers, and
    // `check_len` has bounded `n` so the slice spans at most isize::MAX bytes.
    let entries = unsafe { std::slice::from_raw_parts(ptr, n) };
    entries
        .iter()
        .enumerate()
        // SAFETY: each entry is NULL or a live NUL-terminated string (contract).
        .map(|(i, &s)| unsafe { str_arg(s, &format!("{name}[{i}]")) })
        .collect()
}

/// Refuses an `n` no array of `T` could hold (a slice spans at most
/// `isize::MAX` bytes): most likely a negative number cast to `size_t`.
fn check_len<T>(n: usize) -> Result<(), Failure> {
    if n > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Failure::argument(format!(
            "n = {n} is larger than any array (a negative count cast to size_t?)"
        )));
    }
    Ok(())
}

/// The model behind `ptr`.
///
/// # Safety
///
/// `ptr` is NULL or a live model from `crossenc_model_open*` that outlives `'a`.
unsafe fn model_arg<'a>(ptr: *const CrossencModel) -> Result<&'a CrossEncoder, Failure> {
    // SAFETY: NULL or a live model, by the contract.
    match unsafe { ptr.as_ref() } {
        Some(m) => Ok(&m.model),
        None => Err(Failure::null("model")),
    }
}

/// The options `ptr` points to, or the defaults for NULL, checked against
/// this library's version of the struct.
///
/// # Safety
///
/// `ptr` is NULL or points to a `CrossencOptions` whose `struct_size` bytes
/// are readable.
unsafe fn options_arg(ptr: *const CrossencOptions) -> Result<CrossencOptions, Failure> {
    if ptr.is_null() {
        return Ok(CrossencOptions::new());
    }
    let known = size_of::<CrossencOptions>();
    // SAFETY: `struct_size` is the first field, so a caller's struct of any
    // version has it; the pointer is aligned as any C struct pointer is.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size < known {
        // Version 1 is the first: every caller's struct has all its fields.
        return Err(Failure::argument(format!(
            "options.struct_size is {size}, expected at least {known}; set it to sizeof(CrossencOptions) (crossenc_options_default() does)"
        )));
    }
    if size > known {
        // A newer header's struct: its extra fields must be at their defaults
        // (zero), or this older library would silently ignore them.
        // SAFETY: the caller promises `size` readable bytes at `ptr`.
        let extra =
            unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(known), size - known) };
        if extra.iter().any(|&b| b != 0) {
            return Err(Failure::argument(format!(
                "options set fields this library (crossenc {}) does not know; use the crossenc.h of the library you link, or a newer library",
                env!("CARGO_PKG_VERSION")
            )));
        }
    }
    // SAFETY: at least `known` bytes are readable (checked above), aligned.
    Ok(unsafe { ptr.read() })
}

/// A builder with `options` applied, each enum value checked.
fn builder(o: &CrossencOptions) -> Result<CrossEncoderBuilder, Failure> {
    fn refuse(field: &str, value: i32, allowed: &str) -> Failure {
        Failure::argument(format!("options.{field} = {value} is not one of {allowed}"))
    }
    let mut b = CrossEncoder::builder();
    if o.threads != 0 {
        b = b.threads(o.threads);
    }
    if o.max_length != 0 {
        b = b.max_length(o.max_length);
    }
    if o.batch_size != 0 {
        b = b.batch_size(o.batch_size);
    }
    if o.token_budget != 0 {
        b = b.token_budget(o.token_budget);
    }
    if o.window_stride != 0 {
        b = b.window_stride(o.window_stride);
    }
    b = b.precision(match o.precision {
        CROSSENC_PRECISION_F32 => Precision::F32,
        CROSSENC_PRECISION_INT8 => Precision::Int8,
        CROSSENC_PRECISION_BF16 => Precision::Bf16,
        v => {
            return Err(refuse(
                "precision",
                v,
                "CROSSENC_PRECISION_F32 (0), _INT8 (1), _BF16 (2)",
            ))
        }
    });
    b = b.long_docs(match o.long_docs {
        CROSSENC_LONG_DOCS_FIRST => LongDocs::First,
        CROSSENC_LONG_DOCS_MAX => LongDocs::Max,
        CROSSENC_LONG_DOCS_MEAN => LongDocs::Mean,
        v => {
            return Err(refuse(
                "long_docs",
                v,
                "CROSSENC_LONG_DOCS_FIRST (0), _MAX (1), _MEAN (2)",
            ))
        }
    });
    b = b.truncation(match o.truncation {
        CROSSENC_TRUNCATION_LONGEST_FIRST => Truncation::LongestFirst,
        CROSSENC_TRUNCATION_ONLY_SECOND => Truncation::OnlySecond,
        v => {
            return Err(refuse(
                "truncation",
                v,
                "CROSSENC_TRUNCATION_LONGEST_FIRST (0), _ONLY_SECOND (1)",
            ))
        }
    });
    match o.activation {
        CROSSENC_ACTIVATION_DEFAULT => {}
        CROSSENC_ACTIVATION_SIGMOID => b = b.activation(ScoreActivation::Sigmoid),
        CROSSENC_ACTIVATION_IDENTITY => b = b.activation(ScoreActivation::Identity),
        v => {
            return Err(refuse(
                "activation",
                v,
                "CROSSENC_ACTIVATION_DEFAULT (0), _SIGMOID (1), _IDENTITY (2)",
            ))
        }
    }
    Ok(b)
}

/// Loads the model folder at `dir` with the options `options` gives.
///
/// # Safety
///
/// `dir` is NULL or a NUL-terminated string; `err` is NULL or valid for
/// writing one pointer.
unsafe fn open(
    dir: *const c_char,
    options: impl FnOnce() -> Result<CrossencOptions, Failure>,
    err: *mut *mut c_char,
) -> *mut CrossencModel {
    let opened = catch(|| {
        // SAFETY: `dir` is NULL or a live NUL-terminated string (contract).
        let dir = unsafe { str_arg(dir, "model_dir") }?;
        let model = builder(&options()?)?.build(dir)?;
        Ok(Box::new(CrossencModel { model }))
    });
    // SAFETY: `err` is NULL or writable (contract).
    unsafe { report(err, opened) }.map_or(std::ptr::null_mut(), Box::into_raw)
}

/// The library's version, e.g. `0.1.0`, as a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn crossenc_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the package version holds a NUL byte"),
        };
    VERSION.as_ptr()
}

/// Opens the model folder `model_dir` with default options on `threads`
/// threads (0 = all cores). NULL on failure, with `*err` set.
///
/// # Safety
///
/// `model_dir` is NULL or a NUL-terminated string; `err` is NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn crossenc_model_open(
    model_dir: *const c_char,
    threads: c_int,
    err: *mut *mut c_char,
) -> *mut CrossencModel {
    let options = || {
        let threads = usize::try_from(threads).map_err(|_| {
            Failure::argument(format!(
                "threads is {threads}; pass 0 for all cores or a positive count"
            ))
        })?;
        Ok(CrossencOptions {
            threads,
            ..CrossencOptions::new()
        })
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { open(model_dir, options, err) }
}

/// Opens the model folder `model_dir` with `options` (NULL = defaults).
/// NULL on failure, with `*err` set.
///
/// # Safety
///
/// `model_dir` is NULL or a NUL-terminated string; `options` is NULL or
/// points to a `CrossencOptions` with `struct_size` readable bytes; `err` is
/// NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn crossenc_model_open_with(
    model_dir: *const c_char,
    options: *const CrossencOptions,
    err: *mut *mut c_char,
) -> *mut CrossencModel {
    // SAFETY: `options` is NULL or readable for `struct_size` bytes (contract).
    let read = || unsafe { options_arg(options) };
    // SAFETY: forwarded from this function's contract.
    unsafe { open(model_dir, read, err) }
}

/// Scores `n` pairs `(queries[i], documents[i])` into `scores[0..n)`.
///
/// # Safety
///
/// `model` is NULL or a live model; `queries` and `documents` are NULL or
/// point to `n` pointers, each NULL or to a NUL-terminated string; `scores`
/// is NULL or valid for writing `n` floats; `err` is NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn crossenc_predict(
    model: *const CrossencModel,
    queries: *const *const c_char,
    documents: *const *const c_char,
    n: usize,
    scores: *mut f32,
    err: *mut *mut c_char,
) -> c_int {
    let result = catch(|| {
        // SAFETY: each pointer is NULL or valid as this function's
        // contract says; each helper checks for NULL.
        let model = unsafe { model_arg(model) }?;
        check_len::<*const c_char>(n)?;
        // SAFETY: as above.
        let queries = unsafe { str_array(queries, n, "queries") }?;
        // SAFETY: as above.
        let documents = unsafe { str_array(documents, n, "documents") }?;
        if n == 0 {
            return Ok(());
        }
        if scores.is_null() {
            return Err(Failure::null("scores"));
        }
        let pairs: Vec<(&str, &str)> = queries.into_iter().zip(documents).collect();
        let result = model.predict(&pairs)?;
        // SAFETY: `scores` is not NULL and valid for `n` floats (contract);
        // `n` is bounded by `check_len` and `result` has `n` scores.
        unsafe { std::slice::from_raw_parts_mut(scores, n) }.copy_from_slice(&result);
        Ok(())
    });
    // SAFETY: `err` is NULL or writable (contract).
    code(unsafe { report(err, result) })
}

/// Ranks `n` documents for `query`, best first, at most `top_k` (0 = all).
///
/// # Safety
///
/// As [`crossenc_rank_with_threshold`].
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature
pub unsafe extern "C" fn crossenc_rank(
    model: *const CrossencModel,
    query: *const c_char,
    documents: *const *const c_char,
    n: usize,
    top_k: usize,
    out: *mut CrossencRanked,
    out_len: *mut usize,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        crossenc_rank_with_threshold(
            model,
            query,
            documents,
            n,
            top_k,
            f32::NEG_INFINITY,
            out,
            out_len,
            err,
        )
    }
}

/// Ranks `n` documents for `query`, best first (equal scores in input
/// order), at most `top_k` (0 = all), only those scoring at least
/// `threshold`; writes `*out_len` entries to `out`.
///
/// # Safety
///
/// `model` is NULL or a live model; `query` is NULL or a NUL-terminated
/// string; `documents` is NULL or points to `n` pointers, each NULL or to a
/// NUL-terminated string; `out` is NULL or valid for writing `min(n, top_k)`
/// entries (`n` when `top_k` is 0); `out_len` is NULL or valid for writing a
/// `size_t`; `err` is NULL or valid for writing one pointer.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature
pub unsafe extern "C" fn crossenc_rank_with_threshold(
    model: *const CrossencModel,
    query: *const c_char,
    documents: *const *const c_char,
    n: usize,
    top_k: usize,
    threshold: f32,
    out: *mut CrossencRanked,
    out_len: *mut usize,
    err: *mut *mut c_char,
) -> c_int {
    let result = catch(|| {
        // SAFETY: each pointer is NULL or valid as this function's
        // contract says; each helper checks for NULL.
        let model = unsafe { model_arg(model) }?;
        // SAFETY: as above.
        let query = unsafe { str_arg(query, "query") }?;
        check_len::<*const c_char>(n)?;
        // SAFETY: as above.
        let documents = unsafe { str_array(documents, n, "documents") }?;
        if out_len.is_null() {
            return Err(Failure::null("out_len"));
        }
        if threshold.is_nan() {
            return Err(Failure::argument(
                "threshold is NaN; pass -INFINITY to keep every document",
            ));
        }
        let ranked = if n == 0 {
            Vec::new()
        } else {
            if out.is_null() {
                return Err(Failure::null("out"));
            }
            let top_k = (top_k != 0).then_some(top_k);
            model.rank_with_threshold(query, &documents, top_k, threshold)?
        };
        if !ranked.is_empty() {
            // Only here: a slice may not start at NULL even when empty, and
            // `out` may be NULL when n = 0.
            // SAFETY: `out` is not NULL (checked, as n > 0) and valid for
            // min(n, top_k) entries (contract), which `ranked` does not exceed.
            let dest = unsafe { std::slice::from_raw_parts_mut(out, ranked.len()) };
            for (d, r) in dest.iter_mut().zip(&ranked) {
                *d = CrossencRanked {
                    index: r.index,
                    score: r.score,
                };
            }
        }
        // SAFETY: `out_len` is not NULL and writable (contract).
        unsafe { out_len.write(ranked.len()) };
        Ok(())
    });
    // SAFETY: `err` is NULL or writable (contract).
    code(unsafe { report(err, result) })
}

/// The max length `model` cuts pairs to, in tokens; 0 for NULL.
///
/// # Safety
///
/// `model` is NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn crossenc_model_max_length(model: *const CrossencModel) -> usize {
    // SAFETY: NULL or a live model (contract).
    unsafe { model.as_ref() }.map_or(0, |m| m.model.max_length())
}

/// Frees a model; NULL is a no-op.
///
/// # Safety
///
/// `model` is NULL or a model from `crossenc_model_open*` not yet freed, and
/// no other call uses it during or after this one.
#[no_mangle]
pub unsafe extern "C" fn crossenc_model_free(model: *mut CrossencModel) {
    if model.is_null() {
        return;
    }
    // Dropping the model joins its thread pool, if it has one; a panic there
    // must not unwind into C, and there is nothing to report it to.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `model` came from `Box::into_raw` in `open` and is freed
        // once (contract).
        drop(unsafe { Box::from_raw(model) });
    }));
}

/// Frees a message from this library; NULL is a no-op.
///
/// # Safety
///
/// `s` is NULL or a string this library returned through `err`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn crossenc_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw` in `call` and is freed
        // once (contract).
        drop(unsafe { CString::from_raw(s) });
    }
}

#[cfg(test)]
mod c_api_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let result: Result<(), Failure> = catch(|| panic!("boom {}", 42));
        let mut err = std::ptr::null_mut();
        // SAFETY: a writable error slot.
        let code = unsafe { report(&mut err, result) };
        assert_eq!(code, Err(CROSSENC_ERR_PANIC));
        // SAFETY: a message from `report`, read then freed once.
        let message = unsafe { CStr::from_ptr(err) }.to_str().unwrap().to_string();
        // SAFETY: as above.
        unsafe { crossenc_string_free(err) };
        assert_eq!(
            message,
            "internal error (a bug in crossenc, please report it): boom 42"
        );
    }

    #[test]
    fn nul_bytes_in_a_message_are_escaped() {
        let mut err = std::ptr::null_mut();
        // SAFETY: a writable error slot.
        let code = unsafe { report::<()>(&mut err, Err(Failure::argument("a\0b"))) };
        assert_eq!(code, Err(CROSSENC_ERR_INVALID_ARGUMENT));
        // SAFETY: a message from `report`, read then freed once.
        let message = unsafe { CStr::from_ptr(err) }.to_str().unwrap().to_string();
        // SAFETY: as above.
        unsafe { crossenc_string_free(err) };
        assert_eq!(message, "a\\0b");
    }
}
