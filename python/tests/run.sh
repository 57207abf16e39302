#!/usr/bin/env bash
# The Python package from a clean checkout, as a user installs it:
#   1. `pip install ./python` into a fresh venv (timed: maturin builds the Rust extension);
#   2. the wheel (`pip wheel ./python`, the same build) and its size (<= 10 MB);
#   3. pytest python/tests (PyTorch references, sentence-transformers' recorded calls,
#      threads, errors, and the Dask example on a local process pool), no test skipped.
#
#     bash python/tests/run.sh
#
# Needs python3 (>= 3.9) with venv, cargo, and PyPI (maturin, numpy, pytest, dask[dataframe]).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/py-venv
rm -rf "$venv" && python3 -m venv "$venv"
py=$venv/bin/python

echo "-- pip install ./python (a clean venv; compiles the extension)"
start=$(date +%s)
"$py" -m pip install --quiet ./python
echo "pip install ./python: $(( $(date +%s) - start )) s (target: under 300 s on 2 cores from a clean checkout)"

echo "-- the wheel"
rm -rf target/wheels-py && "$py" -m pip wheel --quiet --no-deps ./python -w target/wheels-py
wheel=$(ls target/wheels-py/crossenc-*.whl)
size=$(stat -c %s "$wheel")
echo "$(basename "$wheel"): $size bytes ($(( size / 1024 )) KiB; limit 10 MB)"
case "$(basename "$wheel")" in
    *-cp39-abi3-*) ;;
    *) echo "run.sh: $wheel is not an abi3 wheel for CPython >= 3.9" >&2; exit 1 ;;
esac
[ "$size" -le 10000000 ] || { echo "run.sh: the wheel is over 10 MB" >&2; exit 1; }

echo "-- pytest python/tests"
"$py" -m pip install --quiet pytest "dask[dataframe]" tqdm
CROSSENC_PYTEST_NO_SKIPS=1 "$py" -m pytest python/tests -q -rs
