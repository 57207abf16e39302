#!/usr/bin/env python3
"""Usage: ~/venv-crossenc/bin/python tools/record_st_api.py [--out tests/data/python/st_api.json]

Records what sentence_transformers.CrossEncoder returns for the calls the crossenc Python package
mirrors (predict and rank: shapes, types, dtypes, values, errors), so that python/tests can check
the drop-in against it without torch. Needs torch, transformers and sentence-transformers.

Models:
  bert-l2-h32   tests/data/fixtures/bert-l2-h32 (one label; sigmoid by default)
  bert-3labels  tests/data/fixtures/bert-3labels (three labels; identity by default)
  xlmr-tiny, electra-tiny  the other architectures' fixtures (predict only)
  real-ce       ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce, the cross-encoder
                tools/make_bench_model.py makes from the real all-MiniLM-L6-v2 weights
                (tools/fetch_real_weights.sh); its pairs are the held-out queries and documents of
                tests/data/precision/corpus.json

Each case is {"model", "call", "args", "kwargs", "result"}; "result" is one of
  {"kind": "ndarray", "dtype", "shape", "values"}   a numpy array
  {"kind": "scalar", "type", "value"}               a numpy scalar (a single pair's score)
  {"kind": "list", "len", "item_shape", "values"}   predict(convert_to_numpy=False)
  {"kind": "rank", "hits"}                          rank's list of dicts, in order
  {"kind": "error", "type", "message"}              the exception raised
"tuples": true marks a case whose pairs were passed as tuples (JSON writes them as lists).
An "activation_fn" kwarg is recorded as the torch class's dotted name (e.g. "torch.nn.Identity");
the script passes the module itself to sentence-transformers. CPU, float32, one thread.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
from sentence_transformers import CrossEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_dir():
    return os.environ.get("CROSSENC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "crossenc")


def encode(result):
    if isinstance(result, np.ndarray):
        return {"kind": "ndarray", "dtype": str(result.dtype), "shape": list(result.shape),
                "values": result.tolist()}
    if isinstance(result, np.generic):
        return {"kind": "scalar", "type": type(result).__name__, "value": result.item()}
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return {"kind": "rank", "hits": result}
    if isinstance(result, list):
        items = [r.numpy() if isinstance(r, torch.Tensor) else np.asarray(r) for r in result]
        return {"kind": "list", "len": len(items),
                "item_shape": list(items[0].shape) if items else None,
                "values": [i.tolist() for i in items]}
    raise TypeError(f"cannot record {type(result)}")


def activation(name):
    return {"torch.nn.Identity": torch.nn.Identity(), "torch.nn.Sigmoid": torch.nn.Sigmoid(),
            "torch.nn.Softmax": torch.nn.Softmax(dim=-1)}[name]


def call(model, name, args, kwargs):
    kw = dict(kwargs)
    if "activation_fn" in kw:
        kw["activation_fn"] = activation(kw["activation_fn"])
    if name == "predict_ndarray":
        args = [np.array(args[0], dtype=object)]
        name = "predict"
    try:
        result = getattr(model, name)(*args, **kw)
        if name == "rank" and result == []:
            return {"kind": "rank", "hits": []}
        return encode(result)
    except Exception as e:  # the error itself is the record
        return {"kind": "error", "type": type(e).__name__, "message": str(e)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "python", "st_api.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)

    fixtures = os.path.join(ROOT, "tests", "data", "fixtures")
    models = {name: os.path.join(fixtures, name)
              for name in ["bert-l2-h32", "bert-3labels", "xlmr-tiny", "electra-tiny"]}
    real = os.path.join(cache_dir(), "all-MiniLM-L6-v2-ce")
    if not os.path.isdir(real):
        sys.exit(f"record_st_api.py: {real} is missing: run tools/fetch_real_weights.sh and "
                 "tools/make_bench_model.py first")
    models["real-ce"] = real

    ref = json.load(open(os.path.join(fixtures, "bert-l2-h32", "reference.json")))
    pairs = [[p["query"], p["document"]] for p in ref["pairs"]]
    corpus = json.load(open(os.path.join(ROOT, "tests", "data", "precision", "corpus.json")))
    real_query = corpus["rank_query"]
    real_docs = corpus["documents"][:40]
    real_pairs = [[q, d] for q, d in zip(corpus["queries"][:20], corpus["documents"][40:60])]

    cases = []

    def add(model, name, args, kwargs=None, tuples=False):
        # tuples: the pairs were passed as tuples (JSON keeps them as lists).
        cases.append({"model": model, "call": name, "args": args, "kwargs": kwargs or {},
                      "tuples": tuples})

    for m in ["bert-l2-h32", "bert-3labels", "xlmr-tiny", "electra-tiny"]:
        add(m, "predict", [pairs])
        add(m, "predict", [pairs], {"activation_fn": "torch.nn.Identity"})
    for m in ["bert-l2-h32", "bert-3labels"]:
        add(m, "predict", [pairs[0]])                                   # one pair, a list
        add(m, "predict", [tuple(pairs[1])], tuples=True)               # one pair, a tuple
        add(m, "predict", [[tuple(p) for p in pairs[:3]]], tuples=True)  # a list of tuples
        add(m, "predict", [[]])                                         # nothing
        add(m, "predict", [pairs[:4]], {"convert_to_numpy": False})
        add(m, "predict_ndarray", [pairs[:5]])                          # a 2-D numpy array of str
        add(m, "predict", [pairs], {"batch_size": 3})
        add(m, "predict", [pairs[:2]], {"batch_size": 0})
        add(m, "rank", [pairs[0][0], [p[1] for p in pairs]])
        add(m, "rank", [pairs[0][0], [p[1] for p in pairs]], {"top_k": 3, "return_documents": True})
    add("bert-3labels", "predict", [pairs], {"apply_softmax": True})
    add("bert-3labels", "predict", [pairs[2]], {"apply_softmax": True})
    add("bert-l2-h32", "predict", [pairs], {"apply_softmax": True})     # one label: no effect
    add("bert-l2-h32", "predict", [pairs[:6]], {"activation_fn": "torch.nn.Sigmoid"})
    add("bert-3labels", "predict", [pairs[:6]], {"activation_fn": "torch.nn.Softmax"})
    # Equal scores keep input order: the same documents twice.
    docs = [p[1] for p in pairs[:4]]
    add("bert-l2-h32", "rank", [pairs[0][0], docs + docs], {"return_documents": True})
    add("bert-l2-h32", "rank", [pairs[0][0], []])
    add("bert-l2-h32", "rank", [pairs[0][0], docs], {"top_k": 0})
    add("real-ce", "predict", [real_pairs])
    add("real-ce", "predict", [real_pairs], {"activation_fn": "torch.nn.Identity"})
    add("real-ce", "predict", [real_pairs[0]])
    add("real-ce", "rank", [real_query, real_docs], {"top_k": 10, "return_documents": True})

    loaded = {}
    for case in cases:
        name = case["model"]
        if name not in loaded:
            loaded[name] = CrossEncoder(models[name], device="cpu")
        case["result"] = call(loaded[name], case["call"], case["args"], case["kwargs"])
        if case["call"] == "predict_ndarray":
            case["args"] = [case["args"][0]]

    import sentence_transformers
    import transformers
    out = {
        "generator": "tools/record_st_api.py",
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "models": {k: (os.path.relpath(v, ROOT) if k != "real-ce" else "real-ce") for k, v in models.items()},
        "cases": cases,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases -> {a.out}")


if __name__ == "__main__":
    main()
