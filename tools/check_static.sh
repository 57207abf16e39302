#!/usr/bin/env bash
# Builds the static musl `crossenc` and scores a fixture with it.
# Run from the repo root: bash tools/check_static.sh
set -euo pipefail
target=x86_64-unknown-linux-musl
cargo build --release --target "$target" --bin crossenc
bin="target/$target/release/crossenc"
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "check_static.sh: $bin links shared libraries:" >&2
    ldd "$bin" >&2
    exit 1
fi
out=$(printf '{"query": "capital of France", "document": "Paris is the capital of France"}\n' \
    | "$bin" score --model tests/data/fixtures/bert-l2-h32)
case "$out" in
    '{"score":'*) ;;
    *) echo "check_static.sh: unexpected output: $out" >&2; exit 1 ;;
esac
echo "static binary ok: $bin ($(stat -c %s "$bin") bytes): $out"
