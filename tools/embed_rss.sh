#!/usr/bin/env bash
# Usage: bash tools/embed_rss.sh [N] [BINARY]
#
# Peak RSS of `crossenc embed` on N short texts (default 100,000) with the real all-MiniLM-L6-v2
# (bash tools/fetch_real_weights.sh), measured by /usr/bin/time -f %M. Prints one line:
#   texts=N peak_rss_mb=M seconds=S binary=BINARY
# BINARY defaults to target/release/crossenc (cargo build --release). The texts are made here,
# deterministically: "sentence number i about <topic>", 6-8 tokens each.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
bin="${2:-target/release/crossenc}"
model="$(bash tools/fetch_real_weights.sh | tail -n 1)"
[ -x /usr/bin/time ] || { echo "embed_rss.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
texts="$(mktemp)"
trap 'rm -f "$texts"' EXIT
python3 - "$n" >"$texts" <<'PY'
import json, sys
topics = ["rivers", "the capital of france", "search engines", "rust code", "the weather"]
for i in range(int(sys.argv[1])):
    print(json.dumps({"text": f"sentence number {i} about {topics[i % len(topics)]}"}))
PY
start=$(date +%s.%N)
rss_kb=$( { /usr/bin/time -f %M "$bin" embed --model "$model" --input "$texts" >/dev/null; } 2>&1 | tail -n 1)
end=$(date +%s.%N)
echo "texts=$n peak_rss_mb=$((rss_kb / 1024)) seconds=$(python3 -c "print(round($end - $start, 1))") binary=$bin"
