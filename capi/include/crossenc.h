/*
 * crossenc.h: the C ABI of crossenc, a CPU inference engine for BERT
 * cross-encoder rerankers. C99; usable from C++.
 *
 * Build the library with `cargo build --release -p crossenc-capi`, then link
 * target/release/libcrossenc.a (add -lpthread -ldl -lm) or libcrossenc.so.
 *
 * Conventions, for every function below:
 *
 * - Return codes. Functions returning int return CROSSENC_OK (0) on success
 *   and a CROSSENC_ERR_* code (non-zero) on failure. Openers return NULL on
 *   failure. Nothing is written to output arrays on failure.
 * - Errors. Every fallible function takes `char **err` last. If err is not
 *   NULL, *err is set to NULL on success and, on failure, to a message (UTF-8,
 *   lowercase, naming the argument or file at fault) that the caller owns and
 *   frees with crossenc_string_free. Pass NULL to ignore messages.
 * - Pointers. A NULL pointer where a value is needed (the model, a string
 *   array, any entry of one, an output array) is an error
 *   (CROSSENC_ERR_INVALID_ARGUMENT), never a crash. n = 0 is allowed: success,
 *   nothing read or written (the arrays may then be NULL).
 * - Strings are NUL-terminated UTF-8. Invalid UTF-8 is an error naming the
 *   argument and its index, e.g. "documents[3] is not valid UTF-8 ...".
 * - Panics. No Rust panic crosses this boundary: an internal bug becomes
 *   CROSSENC_ERR_PANIC (or NULL from an opener) with its message in *err.
 *   This relies on the library being built with panic=unwind (the release
 *   profile's setting).
 * - Threads. A CrossencModel is immutable once opened: one model may be used
 *   from any number of threads at once (concurrent crossenc_predict and
 *   crossenc_rank calls on the same model are safe; the Rust side asserts
 *   that the model is Send + Sync at compile time). Only crossenc_model_free
 *   must not race with other calls on the same model. Each call computes on
 *   the model's thread pool (see CrossencOptions.threads).
 * - Ownership. The library never keeps a caller's pointer after a call
 *   returns. A model is freed with crossenc_model_free, an error message with
 *   crossenc_string_free; crossenc_version's string is static.
 */
#ifndef CROSSENC_H
#define CROSSENC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
/** Success. */
#define CROSSENC_OK 0
/** A NULL pointer, invalid UTF-8, or an option out of range. */
#define CROSSENC_ERR_INVALID_ARGUMENT 1
/** The model could not score the input (e.g. a multi-label model, a query
 *  that does not fit with only_second truncation). */
#define CROSSENC_ERR_MODEL 2
/** An internal bug (a Rust panic, caught at the boundary). Please report it. */
#define CROSSENC_ERR_PANIC 3

/** A loaded cross-encoder. Opaque; open with crossenc_model_open or
 *  crossenc_model_open_with, free with crossenc_model_free. */
typedef struct CrossencModel CrossencModel;

/* Values of CrossencOptions.precision: the precision the encoder's linear
 * layers compute in (README, "Reduced precision"). */
#define CROSSENC_PRECISION_F32 0  /* default: PyTorch's results within ~1e-5 */
#define CROSSENC_PRECISION_INT8 1 /* int8 weights and activations, Q8_0-style blocks */
#define CROSSENC_PRECISION_BF16 2 /* bf16 weights, f32 sums */

/* Values of CrossencOptions.long_docs: how a document longer than the max
 * length is scored (README, "Long documents"). */
#define CROSSENC_LONG_DOCS_FIRST 0 /* default: truncate, as sentence-transformers */
#define CROSSENC_LONG_DOCS_MAX 1   /* overlapping windows, the largest logit (MaxP) */
#define CROSSENC_LONG_DOCS_MEAN 2  /* overlapping windows, the mean logit */

/* Values of CrossencOptions.truncation: how an over-long pair is cut. */
#define CROSSENC_TRUNCATION_LONGEST_FIRST 0 /* default: as sentence-transformers */
#define CROSSENC_TRUNCATION_ONLY_SECOND 1   /* keep the query whole; a query that
                                               does not fit is an error */

/* Values of CrossencOptions.activation: how a logit becomes a score. */
#define CROSSENC_ACTIVATION_DEFAULT 0  /* the model config's, else sigmoid (as the CLI's "score") */
#define CROSSENC_ACTIVATION_SIGMOID 1  /* 1 / (1 + e^-logit) */
#define CROSSENC_ACTIVATION_IDENTITY 2 /* the raw logit */

/**
 * Options for crossenc_model_open_with. Zero in any field means "the
 * default", so start from crossenc_options_default() (or zero the struct and
 * set struct_size) and change what you need.
 *
 * struct_size lets the struct grow without breaking the ABI: it must be
 * sizeof(CrossencOptions) as the caller compiled it. A library that knows
 * more fields than the caller gave uses defaults for the rest; a library
 * older than the caller's header refuses options it does not know (non-zero
 * bytes past its own struct) instead of ignoring them.
 */
typedef struct CrossencOptions {
    /** sizeof(CrossencOptions); crossenc_options_default() sets it. */
    size_t struct_size;
    /** Threads to compute on; 0 = all cores (one pool shared by every model
     *  opened with 0). Otherwise the model gets its own pool. */
    size_t threads;
    /** Longest input in tokens, special tokens included; 0 = the model's
     *  (the smaller of tokenizer_config.json's model_max_length and
     *  max_position_embeddings). More than the model's positions is an error. */
    size_t max_length;
    /** Most sequences per forward pass; 0 = 256. */
    size_t batch_size;
    /** Most tokens per forward pass (bounds the activations' memory); 0 = 2048. */
    size_t token_budget;
    /** With CROSSENC_LONG_DOCS_MAX or _MEAN: document tokens between the
     *  starts of two windows; 0 = half a window. */
    size_t window_stride;
    /** CROSSENC_PRECISION_*. */
    int32_t precision;
    /** CROSSENC_LONG_DOCS_*. */
    int32_t long_docs;
    /** CROSSENC_TRUNCATION_*. */
    int32_t truncation;
    /** CROSSENC_ACTIVATION_*. */
    int32_t activation;
} CrossencOptions;

/** The default options, with struct_size set for this header's struct.
 *  Defined here (not in the library) so that struct_size is the caller's
 *  sizeof, whichever library version it later runs against. */
static inline CrossencOptions crossenc_options_default(void) {
    CrossencOptions opts;
    /* Field by field: `= {0}` draws -Wmissing-field-initializers from g++. */
    opts.struct_size = sizeof(CrossencOptions);
    opts.threads = 0;
    opts.max_length = 0;
    opts.batch_size = 0;
    opts.token_budget = 0;
    opts.window_stride = 0;
    opts.precision = CROSSENC_PRECISION_F32;
    opts.long_docs = CROSSENC_LONG_DOCS_FIRST;
    opts.truncation = CROSSENC_TRUNCATION_LONGEST_FIRST;
    opts.activation = CROSSENC_ACTIVATION_DEFAULT;
    return opts;
}

/** One document's place in a ranking. */
typedef struct CrossencRanked {
    /** Index of the document in the caller's array. */
    size_t index;
    /** Its score (after the model's activation). */
    float score;
} CrossencRanked;

/** The library's version, e.g. "0.1.0". Static: do not free. */
const char *crossenc_version(void);

/**
 * Opens the model folder model_dir (config.json, model.safetensors,
 * tokenizer.json, as Hugging Face's save_pretrained writes them) with default
 * options. threads: 0 = all cores; negative is an error.
 * On failure returns NULL and, if err is not NULL, sets *err to a message
 * that the caller frees with crossenc_string_free.
 */
CrossencModel *crossenc_model_open(const char *model_dir, int threads, char **err);

/**
 * Opens the model folder model_dir with options (NULL = all defaults).
 * On failure returns NULL with *err set as for crossenc_model_open.
 */
CrossencModel *crossenc_model_open_with(const char *model_dir, const CrossencOptions *options,
                                        char **err);

/**
 * Scores n (query, document) pairs into scores[0..n) with the model's
 * activation (as the CLI's "score"): scores[i] is the score of
 * (queries[i], documents[i]). Returns CROSSENC_OK (0) on success, non-zero
 * on failure (with *err set as above; scores untouched). A model with more
 * than one label is an error (CROSSENC_ERR_MODEL).
 */
int crossenc_predict(const CrossencModel *model, const char *const *queries,
                     const char *const *documents, size_t n, float *scores, char **err);

/**
 * Ranks n documents for one query: best first, equal scores in input order,
 * at most top_k of them (0 = all). Writes *out_len entries to out, which must
 * have room for n entries (or top_k, if smaller). Returns as crossenc_predict.
 */
int crossenc_rank(const CrossencModel *model, const char *query, const char *const *documents,
                  size_t n, size_t top_k, CrossencRanked *out, size_t *out_len, char **err);

/**
 * crossenc_rank keeping only documents that score at least threshold
 * (-INFINITY keeps all).
 */
int crossenc_rank_with_threshold(const CrossencModel *model, const char *query,
                                 const char *const *documents, size_t n, size_t top_k,
                                 float threshold, CrossencRanked *out, size_t *out_len,
                                 char **err);

/** The max length the model cuts pairs (or windows) to, in tokens; 0 if
 *  model is NULL. */
size_t crossenc_model_max_length(const CrossencModel *model);

/** Frees a model. NULL is a no-op. No other call may use the model while or
 *  after it is freed. */
void crossenc_model_free(CrossencModel *model);

/** Frees an error message from this library. NULL is a no-op. */
void crossenc_string_free(char *s);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CROSSENC_H */
