// Rerank documents for a query from C++ through crossenc's C ABI.
//
//     rerank MODEL_DIR QUERY DOCUMENT...
//
// Build (capi/tests/run.sh does, so this stays true):
//     cargo build --release -p crossenc-capi
//     g++ -std=c++17 -Icapi/include capi/examples/rerank.cpp target/release/libcrossenc.a -lpthread -ldl -lm -o rerank
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "crossenc.h"

namespace {

// Owners for what the library hands out: the deleters call its frees.
struct ModelDeleter {
    void operator()(CrossencModel *m) const noexcept { crossenc_model_free(m); }
};
struct StringDeleter {
    void operator()(char *s) const noexcept { crossenc_string_free(s); }
};
using Model = std::unique_ptr<CrossencModel, ModelDeleter>;
using Message = std::unique_ptr<char, StringDeleter>;

// Throws the library's message (owned, so freed on the way out).
[[noreturn]] void fail(const char *what, char *err) {
    Message message(err);
    throw std::runtime_error(std::string(what) + ": " + (message ? message.get() : "unknown error"));
}

Model open(const char *dir, size_t threads) {
    CrossencOptions opts = crossenc_options_default();
    opts.threads = threads;  // 0: all cores
    char *err = nullptr;
    Model model(crossenc_model_open_with(dir, &opts, &err));
    if (!model) fail("open", err);
    return model;
}

// Best first; ties keep input order. One model may serve many threads.
std::vector<CrossencRanked> rank(const CrossencModel *model, const std::string &query,
                                 const std::vector<std::string> &docs, size_t top_k = 0) {
    std::vector<const char *> ptrs;
    for (const auto &d : docs) ptrs.push_back(d.c_str());
    std::vector<CrossencRanked> out(docs.size());
    size_t len = 0;
    char *err = nullptr;
    if (crossenc_rank(model, query.c_str(), ptrs.data(), ptrs.size(), top_k, out.data(), &len,
                      &err) != CROSSENC_OK)
        fail("rank", err);
    out.resize(len);
    return out;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL_DIR QUERY DOCUMENT...\n", argv[0]);
        return 2;
    }
    try {
        Model model = open(argv[1], 0);
        std::vector<std::string> docs(argv + 3, argv + argc);
        for (const CrossencRanked &r : rank(model.get(), argv[2], docs))
            std::printf("%.4f\t%s\n", r.score, docs[r.index].c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "rerank: %s\n", e.what());
        return 1;
    }
    return 0;
}
