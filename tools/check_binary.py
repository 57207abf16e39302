#!/usr/bin/env python3
"""Usage: python3 tools/check_binary.py [--runner CMD] [--texts N] [--documents N] BINARY

Checks a built `crossenc` binary end to end, through its command line, against the PyTorch results
committed under tests/data. CI runs it on the static aarch64 binary under `qemu-aarch64 -cpu max`
(NEON, sdot, bfdot): the whole engine on Arm, without building its test suite for Arm. Pure Python
3 standard library.

  BINARY          the crossenc binary to check
  --runner CMD    a command to run it through, e.g. "qemu-aarch64 -cpu max"
  --texts N       embed the first N of the 27 real-weight texts in f32 (default 8)
  --documents N   embed and score the first N documents of the precision corpus in every
                  precision (default 1)

Emulated f32 arithmetic is slow (~0.2 s a token for the real model under qemu on 2 cores, bf16
slower still), hence the small defaults.

What it checks:
  fixtures (tests/data/fixtures, random weights, every architecture): `crossenc score
      --activation identity` on each cross-encoder's 17 pairs against its reference logits
      (transformers), |diff| <= 1e-4 as tests/parity.rs, and the `truncated` flags; `crossenc embed`
      on each sentence-transformers fixture's texts (SentenceTransformer.encode), |diff| <= 1e-5;
  real weights, f32: `crossenc embed` on the first N texts of
      tests/data/real/all-MiniLM-L6-v2-embeddings.json, |diff| <= 1e-5 and cosine >= 0.99999 (as
      tests/embeddings.rs); `crossenc score` with the benchmark cross-encoder
      (tools/make_bench_model.py) on (rank_query, document) for the first N documents of
      tests/data/precision (AutoModelForSequenceClassification's logits), |diff| <= 1e-4;
  real weights, int8 and bf16: `crossenc embed` on those documents, cosine >= 0.999 (int8) and
      >= 0.9999 (bf16) to PyTorch's f32 (issue 12's figures, as tests/precision.rs); `crossenc
      score` on those pairs, |logit - PyTorch f32| <= 0.01 (int8) and <= 0.002 (bf16). The x86_64
      build's worst over all 1,000 documents was 2.9e-3 and 2.4e-4 (AVX2, 2026-12-01): the bounds
      leave room for other paths (bf16 rounds the activations too on bfdot and vdpbf16ps), and a
      broken kernel lands far outside them.

The real models are read from ${CROSSENC_CACHE_DIR:-~/.cache/crossenc}/all-MiniLM-L6-v2 and
all-MiniLM-L6-v2-ce (tools/fetch_real_weights.sh, tools/make_bench_model.py). Prints one line per
check; exits 1 on the first failure, 2 on bad usage or missing files.
"""

import argparse
import json
import math
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path

# The safetensors reader and the cache folder of the script that makes the benchmark model.
from make_bench_model import default_cache_dir, read_safetensors

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def fail(message, code=1):
    print(f"check_binary.py: {message}", file=sys.stderr)
    sys.exit(code)


def f32_tensors(path):
    """The f32 tensors of a safetensors file, as {name: flat list}."""
    _, tensors = read_safetensors(path)
    out = {}
    for name, dtype, _, blob in tensors:
        if dtype != "F32":
            fail(f"{path}: {name} is {dtype}, not F32", 2)
        out[name] = list(struct.unpack(f"<{len(blob) // 4}f", blob))
    return out


def run(command, lines):
    """Runs the binary with JSON Lines on stdin; returns the JSON Lines it writes."""
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    start = time.monotonic()
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    took = time.monotonic() - start
    if done.returncode != 0:
        fail(f"`{shlex.join(command)}` exited {done.returncode}:\n{done.stderr}")
    out = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(out) != len(lines):
        fail(f"`{shlex.join(command)}`: {len(out)} output lines for {len(lines)} inputs")
    return out, took


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def check_embed(base, model, precision, inputs, want, min_cos, max_diff, what):
    got, took = run(
        base + ["embed", "--model", str(model), "--precision", precision],
        [{"text": t} for t in inputs],
    )
    worst_cos = min(cosine(g["embedding"], w) for g, w in zip(got, want))
    worst_diff = max(abs(x - y) for g, w in zip(got, want) for x, y in zip(g["embedding"], w))
    print(
        f"embed {precision}: {what}: {len(inputs)} texts in {took:.1f} s; against PyTorch f32: "
        f"min cosine {worst_cos:.7f}, max |diff| {worst_diff:.2e}"
    )
    if worst_cos < min_cos or (max_diff is not None and worst_diff > max_diff):
        bounds = f"cosine >= {min_cos}" + (f", |diff| <= {max_diff}" if max_diff else "")
        fail(f"embed {precision}: {what}: want {bounds}")


def check_score(base, model, precision, pairs, want, bound, what, extra=()):
    got, took = run(
        base
        + ["score", "--model", str(model), "--precision", precision, "--activation", "identity"]
        + list(extra),
        [{"query": q, "document": d} for q, d in pairs],
    )
    if any(len(g["logits"]) != len(w) for g, w in zip(got, want)):
        fail(f"score {precision}: {what}: the number of logits differs from the reference")
    worst = max(abs(x - y) for g, w in zip(got, want) for x, y in zip(g["logits"], w))
    print(
        f"score {precision}: {what}: {len(pairs)} pairs in {took:.1f} s; "
        f"max |logit - PyTorch f32| {worst:.2e} (bound {bound:g})"
    )
    if worst > bound:
        fail(f"score {precision}: {what}: |logit diff| {worst} over {bound}")
    return got


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runner", default="")
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--documents", type=int, default=1)
    args = parser.parse_args()

    cache = default_cache_dir()
    st_model, ce_model = cache / "all-MiniLM-L6-v2", cache / "all-MiniLM-L6-v2-ce"
    for path in (Path(args.binary), st_model, ce_model):
        if not path.exists():
            fail(
                f"{path} not found (the models: bash tools/fetch_real_weights.sh && "
                "python3 tools/make_bench_model.py)",
                2,
            )
    base = shlex.split(args.runner) + [args.binary]

    fixtures = sorted((DATA / "fixtures").iterdir())
    for fixture in fixtures:
        if (fixture / "reference.json").exists():
            ref = json.loads((fixture / "reference.json").read_text())
            pairs = [(p["query"], p["document"]) for p in ref["pairs"]]
            got = check_score(
                base, fixture, "f32", pairs, [p["logits"] for p in ref["pairs"]], 1e-4,
                fixture.name, ["--max-length", str(ref["max_length"])],
            )
            for g, p in zip(got, ref["pairs"]):
                if g["truncated"] != p["truncated"]:
                    fail(f"{fixture.name}: truncated {g['truncated']} for {p}")
        elif (fixture / "embeddings.json").exists():
            ref = json.loads((fixture / "embeddings.json").read_text())
            check_embed(
                base, fixture, "f32", ref["texts"], ref["embeddings"], 0.99999, 1e-5, fixture.name
            )

    real = json.loads((DATA / "real" / "all-MiniLM-L6-v2-embeddings.json").read_text())
    texts, want_texts = real["texts"][: args.texts], real["embeddings"][: args.texts]
    corpus = json.loads((DATA / "precision" / "corpus.json").read_text())
    reference = f32_tensors(DATA / "precision" / "f32.safetensors")
    n = min(args.documents, len(corpus["documents"]))
    documents = corpus["documents"][:n]
    flat = reference["document_embeddings"]
    dim = len(flat) // len(corpus["documents"])
    want_docs = [flat[i * dim : (i + 1) * dim] for i in range(n)]
    pairs = [(corpus["rank_query"], d) for d in documents]
    want_logits = [[x] for x in reference["rank_logits"][:n]]

    check_embed(base, st_model, "f32", texts, want_texts, 0.99999, 1e-5, "real weights")
    check_score(base, ce_model, "f32", pairs, want_logits, 1e-4, "real weights")
    for precision, min_cos, bound in (("int8", 0.999, 0.01), ("bf16", 0.9999, 0.002)):
        check_embed(base, st_model, precision, documents, want_docs, min_cos, None, "real weights")
        check_score(base, ce_model, precision, pairs, want_logits, bound, "real weights")
    print("check_binary.py: all passed")


if __name__ == "__main__":
    main()
