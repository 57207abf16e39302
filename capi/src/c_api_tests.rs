//! The C ABI called from Rust (unit tests: the crate builds no rlib, whose
//! name would collide with the engine's `libcrossenc.rlib`), as C calls it: scores equal to the crate's
//! own (bit for bit) and PyTorch's (within 1e-4), ranking order, and every
//! error path's code and message.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

use crate::*;
use serde_json::Value;

/// Our kernels sum in another order than PyTorch's (tests/parity.rs argues
/// the bound); a real bug moves scores by 1e-2 or more.
const TOL: f32 = 1e-4;

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/fixtures/bert-l2-h32"
    ))
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The reference pairs PyTorch scored: (query, document, logit, score),
/// without the one whose query holds a NUL byte (a C string cannot).
fn reference() -> Vec<(String, String, f32, f32)> {
    let json: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("reference.json")).unwrap()).unwrap();
    json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["query"].as_str().unwrap().to_string(),
                p["document"].as_str().unwrap().to_string(),
                p["logits"][0].as_f64().unwrap() as f32,
                p["scores"][0].as_f64().unwrap() as f32,
            )
        })
        .filter(|(q, d, ..)| !q.contains('\0') && !d.contains('\0'))
        .collect()
}

/// A model opened through the C ABI, freed on drop.
struct Model(*mut CrossencModel);

impl Model {
    fn open() -> Model {
        let dir = cstring(fixture().to_str().unwrap());
        let mut err = null_mut();
        // SAFETY: a live C string and a writable error slot.
        let m = unsafe { crossenc_model_open(dir.as_ptr(), 0, &mut err) };
        assert!(!m.is_null(), "open: {:?}", take(err));
        Model(m)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: opened by `Model::open`, freed once.
        unsafe { crossenc_model_free(self.0) }
    }
}

/// The message in `err` (None for NULL), freed.
fn take(err: *mut c_char) -> Option<String> {
    if err.is_null() {
        return None;
    }
    // SAFETY: a message from this library, freed once, right after reading.
    let message = unsafe { CStr::from_ptr(err) }.to_str().unwrap().to_string();
    // SAFETY: as above.
    unsafe { crossenc_string_free(err) };
    Some(message)
}

/// Checks a failed call's code and that its message contains `want`.
fn expect_error(code: i32, err: *mut c_char, want_code: i32, want: &str) {
    let message = take(err).expect("no error message");
    assert_eq!(code, want_code, "code for {message:?}");
    assert!(
        message.contains(want),
        "{message:?} does not contain {want:?}"
    );
}

/// Checks that an opener returned NULL with a message containing `want`.
fn expect_open_error(m: *mut CrossencModel, err: *mut c_char, want: &str) {
    assert!(m.is_null(), "opened; want an error containing {want:?}");
    let message = take(err).expect("no error message");
    assert!(
        message.contains(want),
        "{message:?} does not contain {want:?}"
    );
}

/// Pointers to the strings, as a C caller passes them.
fn ptrs(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).collect()
}

/// Scores through the C ABI.
fn predict(model: &Model, pairs: &[(CString, CString)]) -> Result<Vec<f32>, (i32, String)> {
    let q: Vec<_> = pairs.iter().map(|p| p.0.as_ptr()).collect();
    let d: Vec<_> = pairs.iter().map(|p| p.1.as_ptr()).collect();
    let mut scores = vec![f32::NAN; pairs.len()];
    let mut err = null_mut();
    // SAFETY: arrays of `n` live C strings, room for `n` scores.
    let code = unsafe {
        crossenc_predict(
            model.0,
            q.as_ptr(),
            d.as_ptr(),
            pairs.len(),
            scores.as_mut_ptr(),
            &mut err,
        )
    };
    match code {
        CROSSENC_OK => {
            assert!(err.is_null(), "*err not NULL on success");
            Ok(scores)
        }
        code => Err((code, take(err).unwrap())),
    }
}

#[test]
fn scores_equal_the_crates_bit_for_bit_and_pytorchs_within_tolerance() {
    let reference = reference();
    let pairs: Vec<(CString, CString)> = reference
        .iter()
        .map(|(q, d, ..)| (cstring(q), cstring(d)))
        .collect();
    let model = Model::open();
    let ours = predict(&model, &pairs).unwrap();

    let rust = engine_model();
    let pairs_str: Vec<(&str, &str)> = reference
        .iter()
        .map(|(q, d, ..)| (q.as_str(), d.as_str()))
        .collect();
    let want = rust.predict(&pairs_str).unwrap();
    for (i, ((&got, &want), r)) in ours.iter().zip(&want).zip(&reference).enumerate() {
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "pair {i}: C ABI {got}, crate {want}"
        );
        assert!(
            (got - r.3).abs() <= TOL,
            "pair {i}: {got} vs PyTorch {}",
            r.3
        );
    }
}

/// The engine crate's own model on the fixture (`crossenc` is this package's
/// C ABI; the engine is its dependency, renamed `engine`).
fn engine_model() -> engine::CrossEncoder {
    engine::CrossEncoder::from_dir(fixture()).unwrap()
}

#[test]
fn the_c_tests_reference_table_matches_reference_json() {
    // tests/c/test_capi.c carries some reference pairs inline (C has no JSON
    // reader); if tools/make_fixtures.py is rerun, this says what to update.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/test_capi.c"))
            .unwrap();
    let table = source
        .split("/* BEGIN REFERENCE */")
        .nth(1)
        .and_then(|s| s.split("/* END REFERENCE */").next())
        .expect("reference table markers");
    let reference = reference();
    let mut rows = 0;
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("{\""))
    {
        // {"query", "document", logitf, scoref},
        let line = line.trim_start_matches("{\"").trim_end_matches("},");
        let (query, rest) = line.split_once("\", \"").unwrap();
        let (document, numbers) = rest.split_once("\", ").unwrap();
        let numbers: Vec<f32> = numbers
            .split(", ")
            .map(|n| n.trim_end_matches('f').parse().unwrap())
            .collect();
        let r = reference
            .iter()
            .find(|r| r.0 == query && r.1 == document)
            .unwrap_or_else(|| {
                panic!("test_capi.c: ({query:?}, {document:?}) is not in reference.json")
            });
        assert_eq!(
            numbers,
            [r.2, r.3],
            "test_capi.c: ({query:?}, {document:?})"
        );
        rows += 1;
    }
    assert_eq!(rows, 7, "test_capi.c: reference rows");
}

#[test]
fn n_zero_is_success_and_reads_nothing() {
    let model = Model::open();
    let mut err = null_mut();
    // SAFETY: n = 0: the NULL arrays are not read.
    let code = unsafe { crossenc_predict(model.0, null(), null(), 0, null_mut(), &mut err) };
    assert_eq!(code, CROSSENC_OK);
    assert!(err.is_null());
    let mut len = 7usize;
    let query = cstring("q");
    // SAFETY: as above; `len` is writable.
    let code = unsafe {
        crossenc_rank(
            model.0,
            query.as_ptr(),
            null(),
            0,
            0,
            null_mut(),
            &mut len,
            &mut err,
        )
    };
    assert_eq!((code, len), (CROSSENC_OK, 0));
}

#[test]
fn null_arguments_are_errors_naming_the_argument() {
    let model = Model::open();
    let q = [cstring("q"), cstring("q")];
    let d = [cstring("a"), cstring("b")];
    let (qp, dp) = (ptrs(&q), ptrs(&d));
    let with_null = [d[0].as_ptr(), null()];
    let mut scores = [0.0f32; 2];
    let s = scores.as_mut_ptr();
    let mut err = null_mut();
    let cases: [(
        &str,
        *const CrossencModel,
        *const *const c_char,
        *const *const c_char,
        *mut f32,
    ); 5] = [
        ("model is NULL", null(), qp.as_ptr(), dp.as_ptr(), s),
        ("queries is NULL", model.0, null(), dp.as_ptr(), s),
        ("documents is NULL", model.0, qp.as_ptr(), null(), s),
        (
            "documents[1] is NULL",
            model.0,
            qp.as_ptr(),
            with_null.as_ptr(),
            s,
        ),
        (
            "scores is NULL",
            model.0,
            qp.as_ptr(),
            dp.as_ptr(),
            null_mut(),
        ),
    ];
    for (want, m, qs, ds, out) in cases {
        // SAFETY: every pointer is NULL or valid for 2 entries.
        let code = unsafe { crossenc_predict(m, qs, ds, 2, out, &mut err) };
        expect_error(code, err, CROSSENC_ERR_INVALID_ARGUMENT, want);
    }

    let mut ranked = [CrossencRanked::default(); 2];
    let mut len = 0;
    let query = cstring("q");
    // SAFETY: valid pointers but for the NULL under test.
    let code = unsafe {
        crossenc_rank(
            model.0,
            null(),
            dp.as_ptr(),
            2,
            0,
            ranked.as_mut_ptr(),
            &mut len,
            &mut err,
        )
    };
    expect_error(code, err, CROSSENC_ERR_INVALID_ARGUMENT, "query is NULL");
    // SAFETY: as above.
    let code = unsafe {
        crossenc_rank(
            model.0,
            query.as_ptr(),
            dp.as_ptr(),
            2,
            0,
            null_mut(),
            &mut len,
            &mut err,
        )
    };
    expect_error(code, err, CROSSENC_ERR_INVALID_ARGUMENT, "out is NULL");
    // SAFETY: as above.
    let code = unsafe {
        crossenc_rank(
            model.0,
            query.as_ptr(),
            dp.as_ptr(),
            2,
            0,
            ranked.as_mut_ptr(),
            null_mut(),
            &mut err,
        )
    };
    expect_error(code, err, CROSSENC_ERR_INVALID_ARGUMENT, "out_len is NULL");

    // SAFETY: NULL directory, writable error slot.
    let m = unsafe { crossenc_model_open(null(), 0, &mut err) };
    expect_open_error(m, err, "model_dir is NULL");

    // NULL is a no-op for both frees, and a NULL err slot is allowed.
    // SAFETY: NULL everywhere.
    unsafe {
        crossenc_model_free(null_mut());
        crossenc_string_free(null_mut());
        assert_eq!(
            crossenc_predict(null(), null(), null(), 1, null_mut(), null_mut()),
            CROSSENC_ERR_INVALID_ARGUMENT
        );
    }
}

#[test]
fn invalid_utf8_is_an_error_naming_argument_and_index() {
    let model = Model::open();
    let good = [cstring("a"), cstring("b"), cstring("c")];
    let bad = [
        cstring("a"),
        CString::new(b"ok \xff\xfe".to_vec()).unwrap(),
        cstring("c"),
    ];
    let (g, b) = (ptrs(&good), ptrs(&bad));
    let mut scores = [0.0f32; 3];
    let mut err = null_mut();
    // SAFETY: arrays of 3 live C strings, room for 3 scores.
    let code = unsafe {
        crossenc_predict(
            model.0,
            b.as_ptr(),
            g.as_ptr(),
            3,
            scores.as_mut_ptr(),
            &mut err,
        )
    };
    expect_error(
        code,
        err,
        CROSSENC_ERR_INVALID_ARGUMENT,
        "queries[1] is not valid UTF-8 (invalid byte at offset 3)",
    );
    // SAFETY: as above.
    let code = unsafe {
        crossenc_predict(
            model.0,
            g.as_ptr(),
            b.as_ptr(),
            3,
            scores.as_mut_ptr(),
            &mut err,
        )
    };
    expect_error(
        code,
        err,
        CROSSENC_ERR_INVALID_ARGUMENT,
        "documents[1] is not valid UTF-8",
    );
    assert_eq!(scores, [0.0; 3], "a failed call wrote scores");

    let dir = CString::new(b"\xff\xfe".to_vec()).unwrap();
    // SAFETY: a live C string, writable error slot.
    let m = unsafe { crossenc_model_open(dir.as_ptr(), 0, &mut err) };
    expect_open_error(m, err, "model_dir is not valid UTF-8");
}

#[test]
fn bad_model_dirs_say_what_is_wrong() {
    let config = fixture().join("config.json");
    let cases = [
        (
            "/nonexistent/crossenc-model",
            "/nonexistent/crossenc-model not found (a model folder holds config.json",
        ),
        (config.to_str().unwrap(), "is a file; a model is the folder"),
    ];
    for (dir, want) in cases {
        let dir = cstring(dir);
        let mut err = null_mut();
        // SAFETY: a live C string, writable error slot.
        let m = unsafe { crossenc_model_open(dir.as_ptr(), 0, &mut err) };
        expect_open_error(m, err, want);
    }
    let dir = cstring(fixture().to_str().unwrap());
    let mut err = null_mut();
    // SAFETY: as above.
    let m = unsafe { crossenc_model_open(dir.as_ptr(), -2, &mut err) };
    expect_open_error(m, err, "threads is -2; pass 0 for all cores");
}

#[test]
fn options_are_checked_and_applied() {
    let dir = cstring(fixture().to_str().unwrap());
    let open = |o: &CrossencOptions| {
        let mut err = null_mut();
        // SAFETY: a live C string and options struct, writable error slot.
        let m = unsafe { crossenc_model_open_with(dir.as_ptr(), o, &mut err) };
        (m, take(err))
    };
    let refused = [
        (
            CrossencOptions {
                struct_size: 8,
                ..CrossencOptions::new()
            },
            "options.struct_size is 8",
        ),
        (
            CrossencOptions {
                precision: 3,
                ..CrossencOptions::new()
            },
            "options.precision = 3 is not one of",
        ),
        (
            CrossencOptions {
                long_docs: 9,
                ..CrossencOptions::new()
            },
            "options.long_docs = 9",
        ),
        (
            CrossencOptions {
                truncation: -1,
                ..CrossencOptions::new()
            },
            "options.truncation = -1",
        ),
        (
            CrossencOptions {
                activation: 5,
                ..CrossencOptions::new()
            },
            "options.activation = 5",
        ),
        (
            CrossencOptions {
                max_length: 4096,
                ..CrossencOptions::new()
            },
            "option max_length: 4096 is more than",
        ),
    ];
    for (options, want) in refused {
        let (m, err) = open(&options);
        assert!(m.is_null(), "{want}: opened");
        let err = err.unwrap();
        assert!(err.contains(want), "{err:?} does not contain {want:?}");
    }

    let (m, err) = open(&CrossencOptions {
        activation: CROSSENC_ACTIVATION_IDENTITY,
        max_length: 32,
        threads: 1,
        batch_size: 2,
        ..CrossencOptions::new()
    });
    assert!(err.is_none() && !m.is_null(), "{err:?}");
    let model = Model(m);
    // SAFETY: a live model.
    assert_eq!(unsafe { crossenc_model_max_length(model.0) }, 32);
    let pairs = [
        (cstring("a query"), cstring("a document")),
        (cstring("b"), cstring("c")),
    ];
    let logits = predict(&model, &pairs).unwrap();
    let rust = engine::CrossEncoder::builder()
        .max_length(32)
        .build(fixture())
        .unwrap();
    let want = rust
        .predict_all(&[("a query", "a document"), ("b", "c")])
        .unwrap();
    assert_eq!(
        logits,
        [want[0].logits[0], want[1].logits[0]],
        "identity activation: the logits"
    );
}

#[test]
fn rank_is_best_first_with_ties_in_input_order() {
    let model = Model::open();
    let query = cstring("capital of France");
    let docs = [
        cstring("Paris is the capital of France"),
        cstring("the weather is mild"),
        cstring("Paris is the capital of France"),
        cstring(""),
        cstring("the weather is mild"),
    ];
    let d = ptrs(&docs);
    let mut out = [CrossencRanked::default(); 5];
    let mut len = 0;
    let mut err = null_mut();
    // SAFETY: 5 live C strings, room for 5 entries.
    let code = unsafe {
        crossenc_rank(
            model.0,
            query.as_ptr(),
            d.as_ptr(),
            5,
            0,
            out.as_mut_ptr(),
            &mut len,
            &mut err,
        )
    };
    assert_eq!(code, CROSSENC_OK, "{:?}", take(err));
    let rust = engine_model();
    let texts = [
        "Paris is the capital of France",
        "the weather is mild",
        "Paris is the capital of France",
        "",
        "the weather is mild",
    ];
    let want = rust.rank("capital of France", &texts, None).unwrap();
    let got: Vec<(usize, f32)> = out[..len].iter().map(|r| (r.index, r.score)).collect();
    let want: Vec<(usize, f32)> = want.iter().map(|r| (r.index, r.score)).collect();
    assert_eq!(got, want);
    for w in got.windows(2) {
        assert!(
            w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
            "{got:?}"
        );
    }
    // The duplicates are adjacent, first copy first.
    let pos = |i| got.iter().position(|r| r.0 == i).unwrap();
    assert_eq!(pos(2), pos(0) + 1);
    assert_eq!(pos(4), pos(1) + 1);

    // top_k 2, with room for 2 only.
    let mut top = [CrossencRanked::default(); 2];
    // SAFETY: room for min(5, 2) entries.
    let code = unsafe {
        crossenc_rank(
            model.0,
            query.as_ptr(),
            d.as_ptr(),
            5,
            2,
            top.as_mut_ptr(),
            &mut len,
            &mut err,
        )
    };
    assert_eq!((code, len), (CROSSENC_OK, 2));
    assert_eq!(&top[..], &out[..2]);

    // A threshold keeps the prefix scoring at least it; NaN is refused.
    // SAFETY: room for 5 entries.
    let code = unsafe {
        crossenc_rank_with_threshold(
            model.0,
            query.as_ptr(),
            d.as_ptr(),
            5,
            0,
            out[1].score,
            out.as_mut_ptr(),
            &mut len,
            &mut err,
        )
    };
    assert_eq!(code, CROSSENC_OK);
    assert!(len >= 2 && out[..len].iter().all(|r| r.score >= out[1].score));
    // SAFETY: as above.
    let code = unsafe {
        crossenc_rank_with_threshold(
            model.0,
            query.as_ptr(),
            d.as_ptr(),
            5,
            0,
            f32::NAN,
            out.as_mut_ptr(),
            &mut len,
            &mut err,
        )
    };
    expect_error(code, err, CROSSENC_ERR_INVALID_ARGUMENT, "threshold is NaN");
}

#[test]
fn one_model_serves_many_threads() {
    let model = Model::open();
    let pairs: Vec<(CString, CString)> = reference()
        .iter()
        .map(|(q, d, ..)| (cstring(q), cstring(d)))
        .collect();
    let want = predict(&model, &pairs).unwrap();
    /// The model's pointer, shared: the header promises that one model serves
    /// many threads at once.
    struct Shared(*mut CrossencModel);
    // SAFETY: the model behind the pointer is Send + Sync (the crate asserts
    // it at compile time) and outlives the scope below.
    unsafe impl Sync for Shared {}
    impl Shared {
        /// A borrowed view: `ManuallyDrop`, as the owner frees the model.
        fn model(&self) -> std::mem::ManuallyDrop<Model> {
            std::mem::ManuallyDrop::new(Model(self.0))
        }
    }
    let shared = Shared(model.0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let m = shared.model();
                for _ in 0..10 {
                    assert_eq!(predict(&m, &pairs).unwrap(), want);
                }
            });
        }
    });
}

#[test]
fn version_is_the_packages() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(crossenc_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
