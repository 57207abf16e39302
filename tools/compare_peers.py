"""Usage: ~/venv-crossenc/bin/python tools/compare_peers.py [--model DIR] [--crossenc PATH]
           [--workloads seed20,bulk,latency,long] [--runs N] [--threads N]
           [--engines crossenc,crossenc-int8,crossenc-bf16,st,ort,ort-int8] [--crossenc-runs K] [--pairs FILE.jsonl ...]
           [--rank-pairs FILE.jsonl ...] [--rank-corpus CORPUS.json ...] [--no-check] [--onnx-cache DIR]
           [--json]

Times crossenc (f32 and int8) against its peers on the same pairs, the same model folder and the
same cores:
  crossenc               `crossenc bench model --model DIR --workload W --json --runs K`; its own
                         reported `seconds` (median wall time of one pass, tokenization included;
                         process start and model load are outside it)
  crossenc int8          the same with `--precision int8` (engine name crossenc-int8)
  crossenc bf16          the same with `--precision bf16` (engine name crossenc-bf16)
  sentence-transformers  CrossEncoder(DIR, max_length=512).predict(pairs, batch_size=32), float32,
                         torch.set_num_threads(threads)  (engine name st)
  onnxruntime            the folder's BertForSequenceClassification exported to ONNX (eager attention,
                         TorchScript exporter, dynamic batch/sequence axes), BERT-fused by
                         onnxruntime.transformers.optimizer, InferenceSession on the CPU EP with
                         intra_op_num_threads=threads and ORT_ENABLE_ALL; the HF fast tokenizer, pairs
                         sorted by tokenized length, batches of 32 padded to their longest (timed)
                         (engine name ort)
  onnxruntime int8       ORT dynamic quantization of that same optimized model:
                         onnxruntime.quantization.quantize_dynamic(weight_type=QuantType.QInt8,
                         per_channel=True, extra_options DefaultTensorType FLOAT, needed because shape
                         inference cannot type the fused com.microsoft ops' outputs): int8 weights,
                         activations quantized per run (QEmbedLayerNormalization, QAttention,
                         MatMulInteger); run exactly like ort (engine name ort-int8)
The pairs of each workload come from `crossenc bench model --workload W --dump-pairs` (JSON Lines
{"query", "document"}), so every engine scores exactly the same pairs. Rounds alternate engines
(crossenc, crossenc-int8, ST, ORT, ORT-int8, crossenc, ...) after one untimed warm-up round. The
table shows each engine's median seconds, pairs/s, min and max, and two speedup columns:
"crossenc speedup" = engine seconds / crossenc (f32) seconds and "crossenc-int8 speedup" = engine
seconds / crossenc-int8 seconds (> 1: crossenc resp. crossenc-int8 is faster than that engine; the
second column appears when crossenc-int8 is timed). Unless --no-check:
  - the logits of the f32 engines (crossenc's from `crossenc score --model DIR`, ST, ORT) are compared
    pairwise and the max |diff| printed;
  - the int8 engines are checked against crossenc's f32 logits on the same pairs (crossenc-int8's
    from `crossenc score --precision int8`, ORT-int8's from its timed run): max |logit diff|,
    Spearman rank correlation of the logits (Pearson correlation of average ranks, ties sharing
    their mean rank; "n/a" with fewer than 2 pairs) and top-10 overlap (how many of the 10 pairs with
    the highest f32 logits are among the engine's 10 highest; top-n when there are n < 10 pairs;
    ties broken by pair order).

Options:
  --model DIR        model folder (default ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce,
                     made by tools/make_bench_model.py)
  --crossenc PATH    crossenc binary (default target/release/crossenc of this repo)
  --workloads LIST   comma-separated, from seed20, bulk, latency, long (default all four)
  --runs N           timed rounds per workload (default 5)
  --threads N        threads for every engine (default 2); passed to crossenc as --threads when its
                     `bench model` accepts that option
  --engines LIST     subset of crossenc,crossenc-int8,crossenc-bf16,st,ort,ort-int8 to time (default all;
                     crossenc,st,ort gives the f32-only comparison); the workloads' pairs still come
                     from crossenc's --dump-pairs unless --pairs is given. crossenc-int8 needs a binary
                     whose `bench model` and `score` accept --precision
  --crossenc-runs K  passes per crossenc invocation (`--runs K`; default 1): each round uses the median
                     that crossenc reports for its K passes. Each invocation is a fresh process: if
                     `bench model` does no warm-up pass of its own, K=1 times a cold pass; use K>=3
  --pairs FILE       time your own JSON Lines pairs instead of crossenc's workloads (repeatable; the
                     workload is named after the file); crossenc and crossenc-int8 are then not timed
                     (they cannot time arbitrary pairs) but still checked with `crossenc score` when
                     the binary exists
  --rank-pairs FILE  JSON Lines {"query", "document"} pairs (repeatable) that are only scored, once and
                     untimed, by crossenc f32 (`crossenc score`), crossenc-int8 and ort-int8 (those of
                     the two in --engines; at least one must be), and reported after the tables with
                     the same three int8 accuracy figures, e.g. a 1,000-document ranking. Done even
                     with --no-check; needs the crossenc binary
  --rank-corpus CORPUS.json  like --rank-pairs, with the pairs (rank_query, d) for every d in the
                     corpus's "documents" (keys "rank_query": str, "documents": [str]), e.g.
                     tests/data/precision/corpus.json (1,000 pairs; repeatable)
  --no-check         skip the logits comparisons of the workloads (saves the untimed `crossenc score`
                     passes, f32 and int8, per workload)
  --onnx-cache DIR   where the exported/optimized ONNX models are kept, in one folder per
                     (weights, config, torch/transformers/onnxruntime versions): model_opt.onnx (f32)
                     and model_opt_int8.onnx (quantized from it)
                     (default ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/onnx)
  --json             print one JSON document with all results on stdout (the tables go to stderr):
                     per workload "engines" (seconds, pairs_per_s, runs, ...), "speedup" and
                     "speedup_int8" (engine seconds / crossenc resp. crossenc-int8 seconds),
                     "max_abs_diff", "int8_accuracy" ({engine: {max_abs_diff, spearman, top_k,
                     top_k_overlap}}); "rankings" (one per --rank-pairs/--rank-corpus, with
                     "int8_accuracy"); "ort_fusions" and "ort_int8_ops"

Needs the venv with torch, transformers, sentence-transformers, onnx, onnxruntime (and onnxscript
for torch's ONNX exporter); numpy, no scipy. Run by hand from the repo root; not part of CI. No hub
access.
"""

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ["seed20", "bulk", "latency", "long"]
ENGINES = ["crossenc", "crossenc-int8", "crossenc-bf16", "st", "ort", "ort-int8"]  # the order in a round
ENGINE_NAMES = {"crossenc": "crossenc", "crossenc-int8": "crossenc int8", "crossenc-bf16": "crossenc bf16",
                "st": "sentence-transformers", "ort": "onnxruntime", "ort-int8": "onnxruntime int8"}
CROSSENC_PRECISION = {"crossenc": "f32", "crossenc-int8": "int8", "crossenc-bf16": "bf16"}  # crossenc engines
INT8_ENGINES = ["crossenc-int8", "crossenc-bf16", "ort-int8"]  # reduced precision, checked against crossenc f32
TOP_K = 10
BATCH_SIZE = 32
MAX_LENGTH = 512
# Fused ops the ORT BERT optimizer should produce for a BERT encoder.
FUSIONS = ["EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu", "Gelu",
           "FastGelu", "LayerNormalization"]
SETTLE_S = 0.2  # pause between engines so spinning worker threads of the previous one park


def die(msg):
    print(f"compare_peers.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cache_dir():
    env = os.environ.get("CROSSENC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "crossenc"


# --------------------------------------------------------------------------------------- crossenc


class Crossenc:
    def __init__(self, path, model, threads):
        self.path = str(path)
        self.model = str(model)
        self.threads = threads
        self.bench_args = []

    def exists(self):
        return os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def _run(self, args, stdin=None, what="crossenc"):
        cmd = [self.path] + args
        try:
            p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        except OSError as e:
            die(f"cannot run {self.path}: {e}")
        if p.returncode != 0:
            err = p.stderr.strip() or p.stdout.strip() or "(no output)"
            die(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{err}")
        return p.stdout

    def check_bench(self):
        """Fails clearly unless the binary has `bench model` with --dump-pairs and --json."""
        if not self.exists():
            die(f"crossenc binary not found at {self.path}; build it (cargo build --release) or pass "
                "--crossenc PATH, or time your own pairs with --pairs FILE --engines st,ort")
        p = subprocess.run([self.path, "bench", "model", "--help"], capture_output=True, text=True)
        help_text = p.stdout + p.stderr
        missing = [o for o in ("--dump-pairs", "--json", "--workload", "--runs") if o not in help_text]
        if p.returncode != 0 or missing:
            first = next((l for l in help_text.splitlines() if l.strip()), "(no output)")
            die(f"{self.path} has no usable `bench model` subcommand "
                f"(`crossenc bench model --help` exited {p.returncode}"
                + (f", lacks {', '.join(missing)}" if p.returncode == 0 else "")
                + f": {first.strip()}); build a crossenc that has it, or time your own pairs with --pairs FILE --engines st,ort")
        if "--threads" in help_text:
            self.bench_args = ["--threads", str(self.threads)]
        else:
            log(f"note: `crossenc bench model` has no --threads; crossenc uses its default thread count")

    def check_precision(self):
        """Fails clearly unless `bench model` and `score` accept --precision (for crossenc-int8)."""
        for sub in (["bench", "model"], ["score"]):
            p = subprocess.run([self.path] + sub + ["--help"], capture_output=True, text=True)
            if p.returncode != 0 or "--precision" not in p.stdout + p.stderr:
                die(f"`crossenc {' '.join(sub)}` of {self.path} has no --precision option; build a "
                    "crossenc that has it, or leave crossenc-int8 out of --engines")

    @staticmethod
    def precision_args(precision):
        # f32 is the default: no option, so that a crossenc without --precision still runs.
        return [] if precision == "f32" else ["--precision", precision]

    def dump_pairs(self, workload):
        out = self._run(["bench", "model", "--model", self.model, "--workload", workload,
                         "--dump-pairs"], what=f"crossenc bench model --dump-pairs ({workload})")
        pairs = parse_pairs(out.splitlines(), f"`crossenc bench model --workload {workload} --dump-pairs`")
        if not pairs:
            die(f"`crossenc bench model --workload {workload} --dump-pairs` printed no pairs")
        return pairs

    def bench(self, workload, runs, precision="f32"):
        out = self._run(["bench", "model", "--model", self.model, "--workload", workload, "--json",
                         "--runs", str(runs)] + self.bench_args + self.precision_args(precision),
                        what=f"crossenc bench model --json ({workload}, {precision})")
        for line in reversed(out.splitlines()):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("workload") == workload:
                if not isinstance(rec.get("seconds"), (int, float)) or rec["seconds"] <= 0:
                    die(f"crossenc bench JSON for {workload} has no positive `seconds`: {line}")
                return rec
        die(f"`crossenc bench model --workload {workload} --json` printed no JSON line with "
            f"\"workload\": \"{workload}\"; stdout was:\n{out[-2000:]}")

    def logits(self, pairs, precision="f32"):
        text = "".join(json.dumps({"query": q, "document": d}) + "\n" for q, d in pairs)
        args = (["score", "--model", self.model, "--threads", str(self.threads)]
                + self.precision_args(precision))
        out = self._run(args, stdin=text, what=f"crossenc score ({precision})")
        rows = [json.loads(l) for l in out.splitlines() if l.strip()]
        if len(rows) != len(pairs):
            die(f"crossenc score returned {len(rows)} lines for {len(pairs)} pairs")
        return [r["logits"][0] for r in rows]


def parse_pairs(lines, source):
    pairs = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            q, d = rec["query"], rec["document"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            die(f"{source}, line {i}: expected {{\"query\": str, \"document\": str}} ({e})")
        if not isinstance(q, str) or not isinstance(d, str):
            die(f"{source}, line {i}: query and document must be strings")
        pairs.append((q, d))
    return pairs


def rank_corpus_pairs(path):
    """The (rank_query, document) pairs of a corpus JSON such as tests/data/precision/corpus.json."""
    try:
        doc = json.loads(Path(path).read_text())
        query, docs = doc["rank_query"], doc["documents"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        die(f"--rank-corpus {path}: expected a JSON object with \"rank_query\": str and "
            f"\"documents\": [str] ({e})")
    if not isinstance(query, str) or not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
        die(f"--rank-corpus {path}: \"rank_query\" must be a string and \"documents\" a list of strings")
    if not docs:
        die(f"--rank-corpus {path}: no documents")
    return [(query, d) for d in docs]


# ---------------------------------------------------------------------------- sentence-transformers


class SentenceTransformersEngine:
    def __init__(self, model, threads):
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(threads)
        self.torch = torch
        self.ce = CrossEncoder(str(model), max_length=MAX_LENGTH, device="cpu")
        dtypes = {p.dtype for p in self.ce.parameters()}
        if dtypes != {torch.float32}:
            die(f"sentence-transformers loaded {dtypes}, expected float32 only")
        if self.ce.num_labels != 1:
            die(f"expected a one-label cross-encoder, the model has {self.ce.num_labels} labels")
        self.identity = torch.nn.Identity()

    def run(self, pairs):
        """Logits (identity activation: same work as the default sigmoid, minus one exp)."""
        scores = self.ce.predict(pairs, batch_size=BATCH_SIZE, activation_fn=self.identity,
                                 show_progress_bar=False)
        return [float(x) for x in scores]


# ------------------------------------------------------------------------------------ onnxruntime


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prepare_onnx(model, onnx_cache, num_heads, hidden_size):
    """Exports + BERT-optimizes once per (weights, config, versions); returns (path, fusion counts)."""
    import onnxruntime
    import torch
    import transformers

    key = hashlib.sha256()
    for f in ("model.safetensors", "config.json"):
        key.update(file_digest(model / f).encode())
    key.update(f"{torch.__version__} {transformers.__version__} {onnxruntime.__version__}".encode())
    out_dir = Path(onnx_cache) / f"{model.name}-{key.hexdigest()[:12]}"
    opt_path = out_dir / "model_opt.onnx"
    stats_path = out_dir / "fusions.json"
    if opt_path.is_file() and stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        log(f"onnx: reusing {opt_path}")
        return opt_path, stats

    from transformers import AutoModelForSequenceClassification
    from onnxruntime.transformers.optimizer import optimize_model

    out_dir.mkdir(parents=True, exist_ok=True)
    raw_path = out_dir / "model.onnx"
    log(f"onnx: exporting {model} -> {raw_path}")
    hf = AutoModelForSequenceClassification.from_pretrained(
        str(model), attn_implementation="eager", dtype=torch.float32).eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones(2, 16, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: ORT's BERT optimizer fuses its graph fully (EmbedLayerNorm,
        # Attention, SkipLayerNorm, BiasGelu); the dynamo exporter's graph leaves attention unfused.
        torch.onnx.export(hf, dummy, str(raw_path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True,
                          dynamo=False)
    log("onnx: optimize_model(model_type='bert')")
    opt = optimize_model(str(raw_path), model_type="bert", num_heads=num_heads,
                         hidden_size=hidden_size)
    fused = opt.get_fused_operator_statistics()
    stats = {k: int(fused.get(k, 0)) for k in FUSIONS}
    opt.save_model_to_file(str(opt_path))
    stats_path.write_text(json.dumps(stats, indent=1) + "\n")
    del hf, opt
    gc.collect()
    return opt_path, stats


def prepare_onnx_int8(opt_path):
    """quantize_dynamic(QInt8, per_channel) of the optimized model, cached next to it (same key);
    returns (path, counts of the quantized op types in its graph)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    q_path = opt_path.with_name("model_opt_int8.onnx")
    stats_path = opt_path.with_name("int8_ops.json")
    if q_path.is_file() and stats_path.is_file():
        log(f"onnx int8: reusing {q_path}")
        return q_path, json.loads(stats_path.read_text())
    log(f"onnx int8: quantize_dynamic(QInt8, per_channel=True) {opt_path.name} -> {q_path}")
    tmp = q_path.with_name("model_opt_int8.tmp.onnx")
    try:
        # ONNX shape inference cannot type the outputs of the fused com.microsoft ops (Attention,
        # SkipLayerNormalization, ...), so the MatMuls after them need the default type given.
        quantize_dynamic(str(opt_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    ops = {}
    for node in onnx.load(str(tmp), load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    os.replace(tmp, q_path)
    quantized = {k: v for k, v in sorted(ops.items())
                 if k.startswith(("Q", "Dynamic")) or k.endswith(("Integer", "Linear"))}
    stats_path.write_text(json.dumps(quantized, indent=1) + "\n")
    gc.collect()
    return q_path, quantized


class OrtEngine:
    def __init__(self, model, onnx_path, threads):
        import numpy as np
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.np = np
        self.tok = AutoTokenizer.from_pretrained(str(model))
        if not self.tok.is_fast:
            die("the HF tokenizer of the model folder is not a fast tokenizer")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.sess.get_inputs()}

    def tokenize(self, pairs):
        enc = self.tok([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first",
                       max_length=MAX_LENGTH, padding=False)
        return enc["input_ids"], enc["token_type_ids"]

    def run(self, pairs):
        np = self.np
        ids, types = self.tokenize(pairs)
        order = sorted(range(len(pairs)), key=lambda i: -len(ids[i]))  # longest first, like ST
        logits = [0.0] * len(pairs)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            width = len(ids[batch[0]])
            a_ids = np.zeros((len(batch), width), dtype=np.int64)
            a_types = np.zeros((len(batch), width), dtype=np.int64)
            a_mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, i in enumerate(batch):
                n = len(ids[i])
                a_ids[r, :n] = ids[i]
                a_types[r, :n] = types[i]
                a_mask[r, :n] = 1
            feed = {"input_ids": a_ids, "attention_mask": a_mask, "token_type_ids": a_types}
            out = self.sess.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})[0]
            for r, i in enumerate(batch):
                logits[i] = float(out[r, 0])
        return logits

    def token_count(self, pairs):
        ids, _ = self.tokenize(pairs)
        return sum(len(x) for x in ids)


# ------------------------------------------------------------------------------------------ main


def timed(fn, *args):
    gc.collect()
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def max_abs_diff(a, b):
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def average_ranks(x):
    """1-based ranks of x, ties sharing the average of the ranks they span (as scipy's rankdata)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a, b):
    """Spearman's rho: Pearson correlation of the average ranks; None when undefined (n < 2 or a
    constant side)."""
    import numpy as np

    if len(a) < 2:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else None


def top_k(logits, k):
    """Indices of the k highest logits (ties: the earlier pair first)."""
    return set(sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:k])


def accuracy(ref, got):
    """int8 logits `got` against the f32 reference `ref` (crossenc f32) on the same pairs."""
    k = min(TOP_K, len(ref))
    return {"max_abs_diff": max_abs_diff(ref, got), "spearman": spearman(ref, got),
            "top_k": k, "top_k_overlap": len(top_k(ref, k) & top_k(got, k))}


def fmt_accuracy(acc):
    if not acc:
        return []
    k = next(iter(acc.values()))["top_k"]
    lines = [f"{'vs crossenc f32':<22} {'max |diff|':>11} {'Spearman':>9} {f'top-{k} overlap':>15}"]
    for e in INT8_ENGINES:
        a = acc.get(e)
        if a is None:
            continue
        rho = f"{a['spearman']:.5f}" if a["spearman"] is not None else "n/a"
        lines.append(f"{ENGINE_NAMES[e]:<22} {a['max_abs_diff']:>11.2e} {rho:>9} "
                     f"{str(a['top_k_overlap']) + '/' + str(a['top_k']):>15}")
    return lines


def fmt_table(res, engines):
    lines = []
    w = res["workload"]
    tok = res.get("tokens")
    lines.append(f"== {w}: {res['pairs']} pairs"
                 + (f", {tok} tokens" if tok is not None else "")
                 + f", median of {res['runs']} runs, {res['threads']} threads")
    int8_col = bool(res.get("speedup_int8"))
    lines.append(f"{'engine':<22} {'seconds':>9} {'pairs/s':>9} {'min s':>9} {'max s':>9} "
                 f"{'crossenc speedup':>17}" + (f" {'crossenc-int8 speedup':>22}" if int8_col else ""))
    for e in engines:
        r = res["engines"].get(e)
        if r is None:
            continue
        sp = res["speedup"].get(e)
        sp_txt = f"{sp:.2f}x" if sp is not None else "-"
        line = (f"{ENGINE_NAMES[e]:<22} {r['seconds']:>9.4f} {r['pairs_per_s']:>9.1f} "
                f"{min(r['runs']):>9.4f} {max(r['runs']):>9.4f} {sp_txt:>17}")
        if int8_col:
            sp8 = res["speedup_int8"].get(e)
            line += f" {(f'{sp8:.2f}x' if sp8 is not None else '-'):>22}"
        lines.append(line)
    for e in CROSSENC_PRECISION:
        ce = res["engines"].get(e, {})
        if "gflops" in ce or "pct_peak" in ce:
            def num(v, f):
                return format(v, f) if isinstance(v, (int, float)) else "-"
            lines.append(f"{ENGINE_NAMES[e]} reports: tokens/s {num(ce.get('tokens_per_s'), '.0f')}, "
                         f"GFLOP/s {num(ce.get('gflops'), '.2f')}, % of peak {num(ce.get('pct_peak'), '.1f')}")
    if res.get("tokens_hf") is not None and tok is not None and res["tokens_hf"] != tok:
        lines.append(f"note: HF tokenizer counts {res['tokens_hf']} tokens, crossenc {tok}")
    if res.get("max_abs_diff"):
        spread = res.get("logit_range")
        parts = [f"{k} {v:.2e}" for k, v in res["max_abs_diff"].items()]
        lines.append("logits max |diff|: " + ", ".join(parts)
                     + (f"  (logits in [{spread[0]:.4f}, {spread[1]:.4f}])" if spread else ""))
    lines += fmt_accuracy(res.get("int8_accuracy"))
    return "\n".join(lines)


def fmt_ranking(rank):
    lo, hi = rank["logit_range"]
    return "\n".join([f"== ranking {rank['name']}: {rank['pairs']} pairs, scored once (not timed), "
                      f"{rank['threads']} threads; crossenc f32 logits in [{lo:.4f}, {hi:.4f}]"]
                     + fmt_accuracy(rank["int8_accuracy"]))


def main():
    ap = argparse.ArgumentParser(description="Compare crossenc (f32 and int8) with sentence-transformers "
                                             "and ONNX Runtime (f32 and int8).",
                                 epilog="See the docstring at the top of tools/compare_peers.py.")
    ap.add_argument("--model", type=Path, default=cache_dir() / "all-MiniLM-L6-v2-ce")
    ap.add_argument("--crossenc", type=Path, default=REPO / "target" / "release" / "crossenc")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--crossenc-runs", type=int, default=1)
    ap.add_argument("--pairs", type=Path, action="append", default=[])
    ap.add_argument("--rank-pairs", type=Path, action="append", default=[], metavar="FILE.jsonl",
                    help="JSON Lines {query, document}: scored, not timed, by crossenc f32 and the "
                         "int8 engines; accuracy figures only (repeatable)")
    ap.add_argument("--rank-corpus", type=Path, action="append", default=[], metavar="CORPUS.json",
                    help="like --rank-pairs with the pairs (rank_query, d) for every d in "
                         "\"documents\", e.g. tests/data/precision/corpus.json (repeatable)")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--onnx-cache", type=Path, default=cache_dir() / "onnx")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    if args.runs < 1 or args.crossenc_runs < 1 or args.threads < 1:
        die("--runs, --crossenc-runs and --threads must be >= 1")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        die(f"--engines: unknown {bad}; choose from {','.join(ENGINES)}")
    model = args.model
    if not (model / "config.json").is_file() or not (model / "model.safetensors").is_file():
        die(f"{model} is not a model folder; make it with `python3 tools/make_bench_model.py`")
    config = json.loads((model / "config.json").read_text())
    int8_engines = [e for e in INT8_ENGINES if e in engines]
    ce_engines = [e for e in CROSSENC_PRECISION if e in engines]

    rankings = []
    for f in args.rank_pairs:
        if not f.is_file():
            die(f"--rank-pairs {f}: no such file")
        rankings.append((f.name, parse_pairs(f.read_text().splitlines(), str(f))))
    for f in args.rank_corpus:
        if not f.is_file():
            die(f"--rank-corpus {f}: no such file")
        rankings.append((f"{f.name} (rank_query x documents)", rank_corpus_pairs(f)))
    for rname, rpairs in rankings:
        if not rpairs:
            die(f"ranking {rname}: no pairs")
    if rankings and not int8_engines:
        die(f"--rank-pairs/--rank-corpus report int8 accuracy: add {' or '.join(INT8_ENGINES)} to --engines")

    crossenc = Crossenc(args.crossenc, model, args.threads)
    if rankings and not crossenc.exists():
        die(f"--rank-pairs/--rank-corpus need crossenc's f32 logits, and there is no crossenc binary at "
            f"{crossenc.path}")
    if ("crossenc-int8" in engines or "crossenc-bf16" in engines) and crossenc.exists():
        crossenc.check_precision()
    time_crossenc = bool(ce_engines) and not args.pairs
    if args.pairs:
        workloads = []
        for f in args.pairs:
            if not f.is_file():
                die(f"--pairs {f}: no such file")
            workloads.append((f.stem, parse_pairs(f.read_text().splitlines(), str(f))))
        if ce_engines:
            log(f"note: --pairs given: {','.join(ce_engines)} not timed (`bench model` times its own "
                "workloads only)")
    else:
        names = [w.strip() for w in args.workloads.split(",") if w.strip()]
        bad = [w for w in names if w not in WORKLOADS]
        if bad or not names:
            die(f"--workloads: unknown {bad}; choose from {','.join(WORKLOADS)}")
        # Without crossenc there is nothing to take the workloads' pairs from.
        crossenc.check_bench()
        workloads = [(w, crossenc.dump_pairs(w)) for w in names]
    check_crossenc = not args.no_check and "crossenc" in engines and crossenc.exists()
    # The int8 engines are checked against crossenc's f32 logits (`crossenc score`, no --precision).
    check_int8 = not args.no_check and bool(int8_engines) and crossenc.exists()
    if not args.no_check and ce_engines and not crossenc.exists():
        log(f"note: no crossenc binary at {crossenc.path}; its logits are not checked")
    if not args.no_check and "ort-int8" in engines and not crossenc.exists():
        log("note: no crossenc binary, so no f32 reference: the int8 accuracy is not reported")

    import torch
    torch.set_num_threads(args.threads)
    import onnxruntime
    import sentence_transformers
    import transformers

    st = SentenceTransformersEngine(model, args.threads) if "st" in engines or not args.no_check else None
    ort_stats = None
    int8_ops = None
    ort_engine = None
    ort_int8_engine = None
    if "ort" in engines or "ort-int8" in engines:
        onnx_path, ort_stats = prepare_onnx(model, args.onnx_cache, config["num_attention_heads"],
                                            config["hidden_size"])
        log("onnx fusions: " + ", ".join(f"{k} {v}" for k, v in ort_stats.items() if v))
        n_layers = config["num_hidden_layers"]
        if (ort_stats.get("Attention", 0) != n_layers
                or ort_stats.get("SkipLayerNormalization", 0) != 2 * n_layers):
            log(f"WARNING: incomplete BERT fusion (expected Attention {n_layers}, "
                f"SkipLayerNormalization {2 * n_layers}): ORT is timed on a less optimized graph")
        if "ort" in engines:
            ort_engine = OrtEngine(model, onnx_path, args.threads)
        if "ort-int8" in engines:
            int8_path, int8_ops = prepare_onnx_int8(onnx_path)
            log("onnx int8 ops: " + ", ".join(f"{k} {v}" for k, v in int8_ops.items()))
            ort_int8_engine = OrtEngine(model, int8_path, args.threads)

    runners = {}
    if time_crossenc:
        for e in ce_engines:
            runners[e] = None  # subprocess, handled below
    if "st" in engines:
        runners["st"] = st.run
    if ort_engine is not None:
        runners["ort"] = ort_engine.run
    if ort_int8_engine is not None:
        runners["ort-int8"] = ort_int8_engine.run
    order = [e for e in ENGINES if e in runners]
    hf_tok = ort_engine or ort_int8_engine

    results = []
    for name, pairs in workloads:
        log(f"workload {name}: {len(pairs)} pairs; 1 warm-up + {args.runs} rounds of {','.join(order)}")
        times = {e: [] for e in order}
        ce_recs = {e: [] for e in order if e in CROSSENC_PRECISION}
        outputs = {}
        for rnd in range(args.runs + 1):
            for e in order:
                if e in CROSSENC_PRECISION:
                    rec = crossenc.bench(name, args.crossenc_runs, CROSSENC_PRECISION[e])
                    if rec.get("pairs") is not None and rec["pairs"] != len(pairs):
                        die(f"crossenc bench {name} reports {rec['pairs']} pairs, dumped {len(pairs)}")
                    secs = float(rec["seconds"])
                    if rnd > 0:
                        ce_recs[e].append(rec)
                else:
                    secs, out = timed(runners[e], pairs)
                    outputs[e] = out
                if rnd > 0:
                    times[e].append(secs)
                time.sleep(SETTLE_S)
            if rnd > 0:
                log(f"  round {rnd}: " + ", ".join(f"{e} {times[e][-1]:.4f}s" for e in order))

        res = {"workload": name, "pairs": len(pairs), "runs": args.runs, "threads": args.threads,
               "engines": {}, "speedup": {}}
        for e in order:
            med = statistics.median(times[e])
            res["engines"][e] = {"seconds": med, "pairs_per_s": len(pairs) / med, "runs": times[e]}
        for e, recs in ce_recs.items():
            if not recs:
                continue
            for k in ("tokens_per_s", "gflops", "pct_peak"):
                vals = [r[k] for r in recs if isinstance(r.get(k), (int, float))]
                if vals:
                    res["engines"][e][k] = statistics.median(vals)
            if isinstance(recs[-1].get("tokens"), int):
                res["engines"][e]["tokens"] = recs[-1]["tokens"]
                res.setdefault("tokens", recs[-1]["tokens"])
        if hf_tok is not None:
            res["tokens_hf"] = hf_tok.token_count(pairs)
            res.setdefault("tokens", res["tokens_hf"])
        # speedup[e] = seconds of e / seconds of crossenc; speedup_int8 the same for crossenc-int8.
        for base, key in (("crossenc", "speedup"), ("crossenc-int8", "speedup_int8")):
            if base in res["engines"]:
                base_s = res["engines"][base]["seconds"]
                res[key] = {e: res["engines"][e]["seconds"] / base_s for e in order}

        if not args.no_check:
            logits = {}
            f32 = crossenc.logits(pairs) if check_crossenc or check_int8 else None
            if check_crossenc:
                logits["crossenc"] = f32
            logits["st"] = outputs["st"] if "st" in outputs else st.run(pairs)
            if "ort" in outputs:
                logits["ort"] = outputs["ort"]
            keys = list(logits)
            res["max_abs_diff"] = {f"{a}-{b}": max_abs_diff(logits[a], logits[b])
                                   for i, a in enumerate(keys) for b in keys[i + 1:]}
            res["logit_range"] = [min(logits["st"]), max(logits["st"])]
            if check_int8:
                acc = {}
                for e in ("crossenc-int8", "crossenc-bf16"):
                    if e in engines:
                        acc[e] = accuracy(f32, crossenc.logits(pairs, CROSSENC_PRECISION[e]))
                if "ort-int8" in engines:
                    acc["ort-int8"] = accuracy(f32, outputs["ort-int8"])
                res["int8_accuracy"] = acc
        results.append(res)

    ranks = []
    for rname, rpairs in rankings:
        log(f"ranking {rname}: {len(rpairs)} pairs; scoring (not timed) with crossenc f32, "
            + ", ".join(int8_engines))
        f32 = crossenc.logits(rpairs)
        acc = {}
        for e in ("crossenc-int8", "crossenc-bf16"):
            if e in engines:
                acc[e] = accuracy(f32, crossenc.logits(rpairs, CROSSENC_PRECISION[e]))
        if "ort-int8" in engines:
            acc["ort-int8"] = accuracy(f32, ort_int8_engine.run(rpairs))
        ranks.append({"name": rname, "pairs": len(rpairs), "threads": args.threads,
                      "logit_range": [min(f32), max(f32)], "int8_accuracy": acc})

    tables = "\n\n".join([fmt_table(r, order) for r in results] + [fmt_ranking(r) for r in ranks])
    header = (f"model {model}; threads {args.threads}; torch {torch.__version__}, transformers "
              f"{transformers.__version__}, sentence-transformers {sentence_transformers.__version__}, "
              f"onnxruntime {onnxruntime.__version__}")
    if ort_stats is not None:
        header += "\nORT fusions: " + ", ".join(f"{k} {v}" for k, v in ort_stats.items())
    if int8_ops is not None:
        header += ("\nORT int8 (quantize_dynamic QInt8, per_channel) ops: "
                   + ", ".join(f"{k} {v}" for k, v in int8_ops.items()))
    if args.json:
        log("\n" + header + "\n\n" + tables)
        doc = {"model": str(model), "threads": args.threads, "runs": args.runs,
               "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH, "engines": order,
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                            "sentence_transformers": sentence_transformers.__version__,
                            "onnxruntime": onnxruntime.__version__},
               "ort_fusions": ort_stats, "ort_int8_ops": int8_ops, "workloads": results,
               "rankings": ranks}
        print(json.dumps(doc, indent=1))
    else:
        print("\n" + header + "\n\n" + tables)


if __name__ == "__main__":
    main()
