/*
 * The C ABI from C: scores against PyTorch's, ranking, every error path,
 * and one model shared by 4 threads. Run by capi/tests/run.sh (under
 * AddressSanitizer and UBSan, dynamically linked, and on aarch64 in qemu):
 *
 *     test_capi tests/data/fixtures/bert-l2-h32
 *
 * Checks print the failing case and exit 1 (not assert(): NDEBUG would
 * remove it). Every error message is freed, so a leak is ours.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossenc.h"

static int checks;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* Checks that a call failed with `code` and a message containing `want`,
 * then frees the message. */
static void expect_error(int line, int got, int code, char *err, const char *want) {
    checks++;
    if (got != code || err == NULL || strstr(err, want) == NULL) {
        fprintf(stderr, "line %d: want code %d and an error containing \"%s\"; got code %d, error \"%s\"\n",
                line, code, want, got, err ? err : "(NULL)");
        exit(1);
    }
    printf("  ok: error \"%s\"\n", err);
    crossenc_string_free(err);
}
/* The call runs first, then `err` is read: as two arguments of one call their
 * order would be unspecified. */
#define EXPECT_ERROR(call, code, err, want)                  \
    do {                                                     \
        int got_ = (call);                                   \
        expect_error(__LINE__, got_, (code), (err), (want)); \
    } while (0)
/* An opener's failure: NULL, and a message containing `want` in `err`. */
#define EXPECT_OPEN_FAILS(open, err, want)                                  \
    do {                                                                    \
        CrossencModel *opened_ = (open);                                    \
        expect_error(__LINE__, opened_ == NULL ? 0 : -1, 0, (err), (want)); \
    } while (0)

/* Pairs of tests/data/fixtures/bert-l2-h32/reference.json (written with PyTorch and
 * sentence-transformers by tools/make_fixtures.py): pairs 0, 1, 2, 6, 7, 8 and 15.
 * capi/src/c_api_tests.rs checks that this table still matches that file. */
struct Reference {
    const char *query;
    const char *document;
    float logit;
    float score;
};
/* BEGIN REFERENCE */
static const struct Reference REF[] = {
    {"What is the capital of France?", "Paris is the capital and the largest city of France.", -1.29920352f, 0.214299098f},
    {"Café au lait for a naïve user", "Der Ärger über das Wetter; l'été à Paris était très chaud. Über Straße", -1.44942749f, 0.190089688f},
    {"HOW DO I RESET MY PASSWORD?", "Click on the FORGOT PASSWORD link on the Login Page.", -1.25483167f, 0.221864879f},
    {"", "A document without any query.", -1.4896518f, 0.183973998f},
    {"A query without any document", "", -1.6826123f, 0.156749874f},
    {"", "", -1.70743942f, 0.153496101f},
    {"¿Dónde está la biblioteca?", "La bibliothèque est à côté de la gare. La biblioteca è vicina alla stazione.", -1.3177582f, 0.21119152f},
};
/* END REFERENCE */
#define N_REF (sizeof(REF) / sizeof(REF[0]))

/* Our kernels sum in another order than PyTorch's: a few ulps per reduction,
 * at most ~10x that after LayerNorm (tests/parity.rs argues the bound); a
 * real bug moves scores by 1e-2 or more. */
#define TOL 1e-4f

static const char *queries[N_REF];
static const char *documents[N_REF];
static float expected[N_REF]; /* this library's scores, set in main */

struct Worker {
    const CrossencModel *model;
    int mismatches;
    int failures;
};

/* Scores the reference pairs 25 times on the shared model. */
static void *worker(void *arg) {
    struct Worker *w = arg;
    for (int round = 0; round < 25; round++) {
        float scores[N_REF];
        char *err = NULL;
        if (crossenc_predict(w->model, queries, documents, N_REF, scores, &err) != CROSSENC_OK) {
            fprintf(stderr, "thread: %s\n", err ? err : "(no message)");
            crossenc_string_free(err);
            w->failures++;
            continue;
        }
        /* Bit for bit: scores do not depend on batching or threads. */
        if (memcmp(scores, expected, sizeof scores) != 0) w->mismatches++;
    }
    return NULL;
}

static void test_open_errors(const char *dir) {
    char *err = NULL;
    printf("open errors\n");
    EXPECT_OPEN_FAILS(crossenc_model_open(NULL, 0, &err), err, "model_dir is NULL");

    EXPECT_OPEN_FAILS(crossenc_model_open("/nonexistent/crossenc-model", 0, &err), err, "not found");

    /* The fixture's config.json: a file, not a model folder. */
    char file[4096];
    snprintf(file, sizeof file, "%s/config.json", dir);
    EXPECT_OPEN_FAILS(crossenc_model_open(file, 0, &err), err, "is a file");

    EXPECT_OPEN_FAILS(crossenc_model_open("\xff\xfe", 0, &err), err, "model_dir is not valid UTF-8");

    EXPECT_OPEN_FAILS(crossenc_model_open(dir, -1, &err), err, "threads is -1");

    /* err may be NULL: the failure is still reported by the return value. */
    CHECK(crossenc_model_open(NULL, 0, NULL) == NULL, "NULL dir opened (err NULL)");

    CrossencOptions opts = crossenc_options_default();
    opts.struct_size = 8;
    EXPECT_OPEN_FAILS(crossenc_model_open_with(dir, &opts, &err), err, "options.struct_size is 8");

    opts = crossenc_options_default();
    opts.precision = 7;
    EXPECT_OPEN_FAILS(crossenc_model_open_with(dir, &opts, &err), err, "options.precision = 7");

    opts = crossenc_options_default();
    opts.long_docs = -1;
    EXPECT_OPEN_FAILS(crossenc_model_open_with(dir, &opts, &err), err, "options.long_docs = -1");

    opts = crossenc_options_default();
    opts.max_length = 100000;
    EXPECT_OPEN_FAILS(crossenc_model_open_with(dir, &opts, &err), err, "max_length");

    /* A newer caller's struct with an option this library does not know. */
    struct {
        CrossencOptions v1;
        size_t future;
    } newer;
    newer.v1 = crossenc_options_default();
    newer.v1.struct_size = sizeof newer;
    newer.future = 1;
    EXPECT_OPEN_FAILS(crossenc_model_open_with(dir, &newer.v1, &err), err, "does not know");
    newer.future = 0; /* ... at its default it is fine */
    CrossencModel *m = crossenc_model_open_with(dir, &newer.v1, &err);
    CHECK(m != NULL && err == NULL, "open with a zeroed newer struct: %s", err);
    crossenc_model_free(m);
}

static void test_predict(const CrossencModel *model) {
    printf("predict against PyTorch (%u pairs)\n", (unsigned)N_REF);
    /* *err is set to NULL on success: start from a non-NULL sentinel. */
    static char sentinel;
    char *err = &sentinel;
    int rc = crossenc_predict(model, queries, documents, N_REF, expected, &err);
    CHECK(rc == CROSSENC_OK, "predict failed: %s", err != &sentinel && err ? err : "");
    CHECK(err == NULL, "*err not cleared on success");
    float worst = 0;
    for (size_t i = 0; i < N_REF; i++) {
        float diff = fabsf(expected[i] - REF[i].score);
        if (diff > worst) worst = diff;
        CHECK(diff <= TOL, "pair %u: score %.9g, PyTorch %.9g", (unsigned)i, expected[i], REF[i].score);
    }
    printf("  ok: max |score - PyTorch| = %.3g (tolerance %.0e)\n", worst, TOL);

    /* Alone, each pair scores the same bits as in the batch. */
    for (size_t i = 0; i < N_REF; i++) {
        float alone;
        rc = crossenc_predict(model, &queries[i], &documents[i], 1, &alone, &err);
        CHECK(rc == CROSSENC_OK, "predict pair %u alone: %s", (unsigned)i, err);
        CHECK(memcmp(&alone, &expected[i], sizeof alone) == 0, "pair %u: alone %.9g, in batch %.9g",
              (unsigned)i, alone, expected[i]);
    }
    printf("  ok: each pair alone = in the batch, bit for bit\n");

    /* n = 0: success, nothing read or written, arrays may be NULL. */
    rc = crossenc_predict(model, NULL, NULL, 0, NULL, &err);
    CHECK(rc == CROSSENC_OK && err == NULL, "n = 0 failed: %s", err);

    printf("predict errors\n");
    float scores[N_REF];
    EXPECT_ERROR(crossenc_predict(NULL, queries, documents, N_REF, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "model is NULL");
    EXPECT_ERROR(crossenc_predict(model, NULL, documents, N_REF, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "queries is NULL");
    EXPECT_ERROR(crossenc_predict(model, queries, NULL, N_REF, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "documents is NULL");
    EXPECT_ERROR(crossenc_predict(model, queries, documents, N_REF, NULL, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "scores is NULL");
    EXPECT_ERROR(crossenc_predict(model, queries, documents, (size_t)-1, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "larger than any array");

    const char *bad_q[] = {"fine", "\xff\xfe", "fine"};
    const char *bad_d[] = {"fine", "fine", NULL};
    const char *good[] = {"a", "b", "c"};
    EXPECT_ERROR(crossenc_predict(model, bad_q, good, 3, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "queries[1] is not valid UTF-8");
    EXPECT_ERROR(crossenc_predict(model, good, bad_d, 3, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "documents[2] is NULL");
    /* A UTF-8 sequence cut short, after valid text. */
    const char *cut[] = {"caf\xc3"};
    EXPECT_ERROR(crossenc_predict(model, cut, good, 1, scores, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "queries[0] is not valid UTF-8 (invalid byte at offset 3)");
    /* err NULL: the code alone. */
    CHECK(crossenc_predict(model, bad_q, good, 3, scores, NULL) == CROSSENC_ERR_INVALID_ARGUMENT,
          "invalid UTF-8 with err NULL");
    /* A failed call writes no score. */
    for (size_t i = 0; i < N_REF; i++) scores[i] = -7.0f;
    CHECK(crossenc_predict(model, good, bad_d, 3, scores, NULL) != CROSSENC_OK, "NULL entry accepted");
    CHECK(scores[0] == -7.0f && scores[1] == -7.0f, "a failed call wrote scores");
}

static void test_rank(const CrossencModel *model) {
    printf("rank\n");
    /* The reference documents, twice over for ties: documents[i] and
     * documents[i + N_REF] are the same text, so the same score. */
    const char *query = "What is the capital of France?";
    const char *docs[2 * N_REF];
    const char *q[2 * N_REF];
    float scores[2 * N_REF];
    for (size_t i = 0; i < 2 * N_REF; i++) {
        docs[i] = documents[i % N_REF];
        q[i] = query;
    }
    char *err = NULL;
    CHECK(crossenc_predict(model, q, docs, 2 * N_REF, scores, &err) == CROSSENC_OK, "%s", err);

    CrossencRanked out[2 * N_REF];
    size_t len = 0;
    int rc = crossenc_rank(model, query, docs, 2 * N_REF, 0, out, &len, &err);
    CHECK(rc == CROSSENC_OK && err == NULL, "rank: %s", err);
    CHECK(len == 2 * N_REF, "rank returned %u of %u", (unsigned)len, (unsigned)(2 * N_REF));
    int seen[2 * N_REF] = {0};
    for (size_t r = 0; r < len; r++) {
        CHECK(out[r].index < 2 * N_REF && !seen[out[r].index], "rank %u: index %u", (unsigned)r,
              (unsigned)out[r].index);
        seen[out[r].index] = 1;
        CHECK(out[r].score == scores[out[r].index], "rank %u: score %.9g, predict's %.9g", (unsigned)r,
              out[r].score, scores[out[r].index]);
        if (r > 0) {
            CHECK(out[r - 1].score > out[r].score ||
                      (out[r - 1].score == out[r].score && out[r - 1].index < out[r].index),
                  "rank %u and %u out of order", (unsigned)(r - 1), (unsigned)r);
        }
    }
    /* Each document's copy scores the same bits and ranks right after the
     * earlier copies of its text (the order check above does the rest). */
    size_t rank_of[2 * N_REF];
    for (size_t r = 0; r < len; r++) rank_of[out[r].index] = r;
    for (size_t i = 0; i < N_REF; i++) {
        CHECK(scores[i] == scores[i + N_REF], "document %u: %.9g, its copy %.9g", (unsigned)i,
              scores[i], scores[i + N_REF]);
        CHECK(rank_of[i] < rank_of[i + N_REF], "document %u ranks after its copy", (unsigned)i);
    }
    printf("  ok: %u documents, best %u (%.6f), ties in input order\n", (unsigned)len,
           (unsigned)out[0].index, out[0].score);

    CrossencRanked top[3];
    rc = crossenc_rank(model, query, docs, 2 * N_REF, 3, top, &len, &err);
    CHECK(rc == CROSSENC_OK && len == 3, "top 3: rc %d, len %u", rc, (unsigned)len);
    for (size_t r = 0; r < 3; r++) {
        CHECK(top[r].index == out[r].index && top[r].score == out[r].score,
              "top 3, rank %u: %u, full ranking: %u", (unsigned)r, (unsigned)top[r].index,
              (unsigned)out[r].index);
    }

    /* Threshold = the 5th best score: at least 5 documents kept (more with ties). */
    float threshold = out[4].score;
    size_t at_least = 0;
    for (size_t i = 0; i < 2 * N_REF; i++) at_least += scores[i] >= threshold;
    CrossencRanked kept[2 * N_REF];
    rc = crossenc_rank_with_threshold(model, query, docs, 2 * N_REF, 0, threshold, kept, &len, &err);
    CHECK(rc == CROSSENC_OK && len == at_least && len >= 5, "threshold: rc %d, kept %u, want %u", rc,
          (unsigned)len, (unsigned)at_least);
    for (size_t r = 0; r < len; r++) {
        /* Field by field: memcmp would compare CrossencRanked's padding too. */
        CHECK(kept[r].index == out[r].index && kept[r].score == out[r].score,
              "threshold, rank %u: %u, full ranking: %u", (unsigned)r, (unsigned)kept[r].index,
              (unsigned)out[r].index);
    }
    rc = crossenc_rank_with_threshold(model, query, docs, 2 * N_REF, 0, INFINITY, kept, &len, &err);
    CHECK(rc == CROSSENC_OK && len == 0, "threshold +inf kept %u", (unsigned)len);

    len = 99;
    rc = crossenc_rank(model, query, NULL, 0, 0, NULL, &len, &err);
    CHECK(rc == CROSSENC_OK && len == 0, "n = 0: rc %d, len %u", rc, (unsigned)len);

    printf("rank errors\n");
    EXPECT_ERROR(crossenc_rank(NULL, query, docs, 2, 0, out, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "model is NULL");
    EXPECT_ERROR(crossenc_rank(model, NULL, docs, 2, 0, out, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "query is NULL");
    EXPECT_ERROR(crossenc_rank(model, "\xff", docs, 2, 0, out, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "query is not valid UTF-8");
    EXPECT_ERROR(crossenc_rank(model, query, NULL, 2, 0, out, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "documents is NULL");
    EXPECT_ERROR(crossenc_rank(model, query, docs, 2, 0, NULL, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "out is NULL");
    EXPECT_ERROR(crossenc_rank(model, query, docs, 2, 0, out, NULL, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "out_len is NULL");
    const char *bad[] = {"fine", "\xc0\xaf"};
    EXPECT_ERROR(crossenc_rank(model, query, bad, 2, 0, out, &len, &err), CROSSENC_ERR_INVALID_ARGUMENT,
                 err, "documents[1] is not valid UTF-8");
    EXPECT_ERROR(crossenc_rank_with_threshold(model, query, docs, 2, 0, NAN, out, &len, &err),
                 CROSSENC_ERR_INVALID_ARGUMENT, err, "threshold is NaN");
}

static void test_threads(const CrossencModel *model) {
    printf("4 threads on one model\n");
    pthread_t threads[4];
    struct Worker workers[4];
    for (int t = 0; t < 4; t++) {
        workers[t].model = model;
        workers[t].mismatches = 0;
        workers[t].failures = 0;
        CHECK(pthread_create(&threads[t], NULL, worker, &workers[t]) == 0, "pthread_create %d", t);
    }
    for (int t = 0; t < 4; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0, "pthread_join %d", t);
        CHECK(workers[t].failures == 0 && workers[t].mismatches == 0,
              "thread %d: %d failures, %d results differing from the main thread's", t,
              workers[t].failures, workers[t].mismatches);
    }
    printf("  ok: 4 x 25 calls, every score identical to the main thread's\n");
}

static void test_options(const char *dir) {
    printf("options\n");
    char *err = NULL;
    CrossencOptions opts = crossenc_options_default();
    opts.activation = CROSSENC_ACTIVATION_IDENTITY;
    opts.threads = 2;
    opts.batch_size = 3;
    CrossencModel *m = crossenc_model_open_with(dir, &opts, &err);
    CHECK(m != NULL, "identity: %s", err);
    float logits[N_REF];
    CHECK(crossenc_predict(m, queries, documents, N_REF, logits, &err) == CROSSENC_OK, "%s", err);
    for (size_t i = 0; i < N_REF; i++) {
        CHECK(fabsf(logits[i] - REF[i].logit) <= TOL, "pair %u: logit %.9g, PyTorch %.9g", (unsigned)i,
              logits[i], REF[i].logit);
    }
    crossenc_model_free(m);
    printf("  ok: identity activation = PyTorch's logits, batch size 3, own pool of 2 threads\n");

    const int precisions[] = {CROSSENC_PRECISION_INT8, CROSSENC_PRECISION_BF16};
    for (int p = 0; p < 2; p++) {
        opts = crossenc_options_default();
        opts.precision = precisions[p];
        m = crossenc_model_open_with(dir, &opts, &err);
        CHECK(m != NULL, "precision %d: %s", precisions[p], err);
        float scores[N_REF];
        CHECK(crossenc_predict(m, queries, documents, N_REF, scores, &err) == CROSSENC_OK, "%s", err);
        /* Reduced precision: close to f32 on this tiny model, not equal. */
        for (size_t i = 0; i < N_REF; i++) {
            CHECK(fabsf(scores[i] - REF[i].score) <= 0.05f, "precision %d pair %u: %.6f vs %.6f",
                  precisions[p], (unsigned)i, scores[i], REF[i].score);
        }
        crossenc_model_free(m);
    }
    printf("  ok: int8 and bf16 open and score near f32\n");

    opts = crossenc_options_default();
    opts.max_length = 32;
    opts.long_docs = CROSSENC_LONG_DOCS_MAX;
    m = crossenc_model_open_with(dir, &opts, &err);
    CHECK(m != NULL, "long docs: %s", err);
    CHECK(crossenc_model_max_length(m) == 32, "max length %u", (unsigned)crossenc_model_max_length(m));
    const char *q[] = {"which document"};
    const char *d[] = {"a sentence about something else. a sentence about something else. "
                       "a sentence about something else. a sentence about something else."};
    float score;
    CHECK(crossenc_predict(m, q, d, 1, &score, &err) == CROSSENC_OK, "%s", err);
    CHECK(score > 0.0f && score < 1.0f, "long docs score %f", score);
    crossenc_model_free(m);

    /* NULL options: the defaults. */
    m = crossenc_model_open_with(dir, NULL, &err);
    CHECK(m != NULL, "NULL options: %s", err);
    CHECK(crossenc_model_max_length(m) == 48, "max length %u", (unsigned)crossenc_model_max_length(m));
    crossenc_model_free(m);
    printf("  ok: long documents (max, 32 tokens), NULL options\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR (tests/data/fixtures/bert-l2-h32)\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    printf("crossenc %s\n", crossenc_version());
    for (size_t i = 0; i < N_REF; i++) {
        queries[i] = REF[i].query;
        documents[i] = REF[i].document;
    }

    test_open_errors(dir);

    char *err = NULL;
    CrossencModel *model = crossenc_model_open(dir, 0, &err);
    CHECK(model != NULL && err == NULL, "open %s: %s", dir, err);
    CHECK(crossenc_model_max_length(model) == 48, "max length");
    CHECK(crossenc_model_max_length(NULL) == 0, "max length of NULL");

    test_predict(model);
    test_rank(model);
    test_threads(model);
    test_options(dir);

    crossenc_model_free(model);
    crossenc_model_free(NULL);
    crossenc_string_free(NULL);
    printf("all %d checks passed\n", checks);
    return 0;
}
