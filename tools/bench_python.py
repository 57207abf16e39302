#!/usr/bin/env python3
"""Usage: ~/venv-crossenc/bin/python tools/bench_python.py [--model DIR] [--workloads seed20,bulk]
           [--runs N] [--threads N] [--precisions f32,int8,bf16] [--crossenc PATH] [--json]

Times crossenc's Python package against sentence-transformers' CrossEncoder on the same pairs, the
same model folder and the same threads, in one process (the venv needs torch,
sentence-transformers and crossenc: `pip install ./python`):
  st                     sentence_transformers.CrossEncoder(DIR, max_length=512, device="cpu")
                         .predict(pairs, batch_size=32), torch.set_num_threads(threads)
  crossenc[-int8|-bf16]  crossenc.CrossEncoder(DIR, max_length=512, threads=threads,
                         precision=P).predict(pairs, batch_size=32)
Both with their default activation (sigmoid). Each timed call is the whole predict (tokenization
included; model load outside). The pairs of each workload come from
`crossenc bench model --workload W --dump-pairs` (the CLI's workloads: seed20 = 20 held-out
(query, document) pairs of ~190 tokens, bulk = 1,000 pairs). Rounds alternate engines after one
untimed warm-up round; the table gives each engine's median, min and max seconds, pairs/s and
"x st" = st median / engine median (> 1: faster than sentence-transformers). Scores are checked:
crossenc f32 against sentence-transformers (max |diff|), int8/bf16 against crossenc f32.

  --model DIR      default ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce
                   (tools/make_bench_model.py)
  --crossenc PATH  the CLI that dumps the workloads' pairs (default target/release/crossenc)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent


def die(msg):
    sys.exit(f"bench_python.py: {msg}")


def dump_pairs(cli, model, workload):
    cmd = [str(cli), "bench", "model", "--model", str(model), "--workload", workload, "--dump-pairs"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die(f"{' '.join(cmd)} failed: {getattr(e, 'stderr', '') or e}")
    pairs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [(p["query"], p["document"]) for p in pairs]


def main():
    cache = Path(os.environ.get("CROSSENC_CACHE_DIR") or Path.home() / ".cache" / "crossenc")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=cache / "all-MiniLM-L6-v2-ce")
    ap.add_argument("--workloads", default="seed20,bulk")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="f32,int8,bf16")
    ap.add_argument("--crossenc", type=Path, default=REPO / "target" / "release" / "crossenc")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not (a.model / "model.safetensors").is_file():
        die(f"{a.model} is not a model folder: run tools/make_bench_model.py")

    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    import crossenc

    torch.set_num_threads(a.threads)
    st = STCrossEncoder(str(a.model), max_length=512, device="cpu")
    engines = {"st": lambda pairs: st.predict(pairs, batch_size=32, show_progress_bar=False)}
    ours = {}
    for p in a.precisions.split(","):
        name = "crossenc" if p == "f32" else f"crossenc-{p}"
        ours[name] = crossenc.CrossEncoder(str(a.model), max_length=512, threads=a.threads, precision=p)
        engines[name] = (lambda m: lambda pairs: m.predict(pairs, batch_size=32))(ours[name])

    results = []
    for workload in a.workloads.split(","):
        pairs = dump_pairs(a.crossenc, a.model, workload)
        times = {e: [] for e in engines}
        out = {}
        for rnd in range(a.runs + 1):
            for e, run in engines.items():
                t = time.perf_counter()
                out[e] = np.asarray(run(pairs), dtype=np.float32)
                secs = time.perf_counter() - t
                if rnd:
                    times[e].append(secs)
                time.sleep(0.2)  # let the previous engine's spinning threads park
        st_med = statistics.median(times["st"])
        res = {"workload": workload, "pairs": len(pairs), "threads": a.threads, "runs": a.runs,
               "engines": {}}
        for e in engines:
            med = statistics.median(times[e])
            res["engines"][e] = {"seconds": med, "min": min(times[e]), "max": max(times[e]),
                                 "pairs_per_s": len(pairs) / med, "x_st": st_med / med}
        if "crossenc" in out:
            res["max_abs_diff_vs_st"] = float(np.abs(out["crossenc"] - out["st"]).max())
            for e in out:
                if e.startswith("crossenc-"):
                    res["engines"][e]["max_abs_diff_vs_f32"] = float(np.abs(out[e] - out["crossenc"]).max())
        results.append(res)

    if a.json:
        print(json.dumps(results, indent=1))
        return
    print(f"model {a.model}; {a.threads} threads; torch {torch.__version__}, sentence-transformers "
          f"{sentence_transformers.__version__}, crossenc {crossenc.__version__} "
          f"({ours[next(iter(ours))].kernel_path}); medians of {a.runs} alternating rounds")
    for res in results:
        print(f"\n{res['workload']}: {res['pairs']} pairs")
        print(f"  {'engine':<16} {'median s':>9} {'min s':>8} {'max s':>8} {'pairs/s':>9} {'x st':>6}")
        for e, r in res["engines"].items():
            print(f"  {e:<16} {r['seconds']:9.4f} {r['min']:8.4f} {r['max']:8.4f} "
                  f"{r['pairs_per_s']:9.1f} {r['x_st']:6.2f}")
        if "max_abs_diff_vs_st" in res:
            extra = ", ".join(f"{e} vs f32 {r['max_abs_diff_vs_f32']:.2e}" for e, r in res["engines"].items()
                              if "max_abs_diff_vs_f32" in r)
            print(f"  max |score diff|: crossenc vs st {res['max_abs_diff_vs_st']:.2e}"
                  + (f"; {extra}" if extra else ""))


if __name__ == "__main__":
    main()
