#!/usr/bin/env python3
"""Usage: python3 tools/precision_rss.py [--model DIR] [--crossenc PATH ...] [--workload NAME |
           --input FILE.jsonl] [--command score|embed] [--precisions f32,int8,bf16] [--rounds N]
           [--threads N] [--json]

Peak RSS of one `crossenc score` (or `crossenc embed`) process per precision, from start to exit,
as `/usr/bin/time -f %M` reports it: issue 12's "peak RSS of int8 <= 55% of f32's".

- Pairs: `--workload` (default bulk: 1,000 pairs) takes them from `crossenc bench model --workload W
  --dump-pairs`, as tools/compare_peers.py does; `--input` reads your JSON Lines
  {"query", "document"}. `--command embed` embeds each pair's document ({"text": document}).
- Rounds alternate every binary and precision (f32, int8, bf16, f32, ...), so a slow or crowded
  window of the shared machine hits all of them. Before each run the page cache is dropped
  (`echo 1 > /proc/sys/vm/drop_caches`, as root), so no run finds the model's file already mapped
  by the previous one; without root this is said on stderr and the figures may move by a few MB.
- Prints, per binary and precision, the median, min and max peak RSS in MiB and the median of the
  per-round ratios to f32 of the same binary (`--json`: one object per binary and precision).

The model defaults to ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce
(tools/make_bench_model.py); the binary to target/release/crossenc (cargo build --release).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(msg):
    print(f"precision_rss.py: {msg}", file=sys.stderr)
    sys.exit(1)


def default_model():
    cache = os.environ.get("CROSSENC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "crossenc")
    return os.path.join(cache, "all-MiniLM-L6-v2-ce")


def dump_pairs(binary, model, workload):
    r = subprocess.run([binary, "bench", "model", "--model", model, "--workload", workload,
                        "--dump-pairs"], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"`{binary} bench model --workload {workload} --dump-pairs` failed: {r.stderr.strip()}")
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    if not lines:
        die(f"`{binary} bench model --workload {workload} --dump-pairs` printed no pairs")
    return lines


def drop_page_cache(warned=[]):
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError as e:
        if not warned:
            print(f"precision_rss.py: cannot drop the page cache ({e}); runs may find the model "
                  "file cached by the previous one", file=sys.stderr)
            warned.append(True)


def peak_rss_kib(binary, command, model, precision, threads, input_path):
    args = ["/usr/bin/time", "-f", "%M", binary, command, "--model", model,
            "--input", input_path, "--precision", precision]
    if threads:
        args += ["--threads", str(threads)]
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die(f"`{' '.join(args[3:])}` exited {r.returncode}: {r.stderr.strip()[-500:]}")
    last = r.stderr.strip().splitlines()[-1]
    try:
        return int(last)
    except ValueError:
        die(f"/usr/bin/time printed {last!r}, not a peak RSS in KiB")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=default_model())
    p.add_argument("--crossenc", action="append",
                   help="binary (repeatable: alternated with each other)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--workload", default="bulk", help="seed20, bulk, latency or long")
    src.add_argument("--input", help="JSON Lines {query, document}")
    p.add_argument("--command", choices=["score", "embed"], default="score")
    p.add_argument("--precisions", default="f32,int8,bf16")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    binaries = a.crossenc or [os.path.join(REPO, "target", "release", "crossenc")]
    for b in binaries:
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            die(f"no crossenc binary at {b} (cargo build --release)")
    if not os.path.isdir(a.model):
        die(f"no model folder at {a.model} (bash tools/fetch_real_weights.sh && "
            "python3 tools/make_bench_model.py)")
    if not shutil.which("/usr/bin/time"):
        die("needs /usr/bin/time (apt-get install time)")
    precisions = [x for x in a.precisions.split(",") if x]
    if "f32" not in precisions:
        die("--precisions must include f32: the ratios are to f32")
    if a.rounds < 1:
        die("--rounds must be at least 1")

    if a.input:
        with open(a.input) as f:
            lines = [line for line in f if line.strip()]
        source = a.input
    else:
        lines = dump_pairs(binaries[0], a.model, a.workload)
        source = f"workload {a.workload}"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for line in lines:
            if a.command == "embed":
                pair = json.loads(line)
                f.write(json.dumps({"text": pair["document"]}) + "\n")
            else:
                f.write(line.rstrip("\n") + "\n")
        input_path = f.name
    print(f"{a.command}: {len(lines)} inputs ({source}), {a.rounds} rounds, {a.threads} threads",
          file=sys.stderr)

    rss = {(b, pr): [] for b in binaries for pr in precisions}
    try:
        for r in range(a.rounds):
            for b in binaries:
                for pr in precisions:
                    drop_page_cache()
                    kib = peak_rss_kib(b, a.command, a.model, pr, a.threads, input_path)
                    rss[(b, pr)].append(kib)
                    print(f"  round {r + 1}: {b} {pr} {kib} KiB", file=sys.stderr)
    finally:
        os.unlink(input_path)

    for b in binaries:
        for pr in precisions:
            v = rss[(b, pr)]
            ratios = [x / f for x, f in zip(v, rss[(b, "f32")])]
            row = {
                "binary": b,
                "command": a.command,
                "inputs": len(lines),
                "precision": pr,
                "rounds": a.rounds,
                "peak_rss_kib_median": statistics.median(v),
                "peak_rss_kib_min": min(v),
                "peak_rss_kib_max": max(v),
                "ratio_to_f32_median": round(statistics.median(ratios), 4),
            }
            if a.json:
                print(json.dumps(row))
            else:
                print(f"{b}  {pr:5s} peak RSS median {statistics.median(v) / 1024:7.1f} MiB "
                      f"(min {min(v) / 1024:.1f}, max {max(v) / 1024:.1f}); "
                      f"/ f32: {statistics.median(ratios) * 100:.1f}%")


if __name__ == "__main__":
    main()
