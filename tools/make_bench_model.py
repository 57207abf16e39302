#!/usr/bin/env python3
"""Usage: python3 tools/make_bench_model.py [--src DIR] [--out DIR]

Makes a benchmark cross-encoder folder from the real sentence-transformers/all-MiniLM-L6-v2 weights
(fetched by tools/fetch_real_weights.sh). Pure Python 3 standard library: no numpy, no torch.

  --src DIR  the all-MiniLM-L6-v2 folder
             (default ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2)
  --out DIR  the folder to write
             (default ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce)

The output is a BertForSequenceClassification folder with one label:
  model.safetensors  the source tensors (keys without the `bert.` prefix, as the source has them)
                     plus `classifier.weight` [1, hidden] and `classifier.bias` [1], f32,
                     deterministic pseudo-random values (random.Random(0), uniform in +-0.05);
                     the int64 `embeddings.position_ids` buffer is dropped; `__metadata__` is kept
  config.json        the source config with architectures ["BertForSequenceClassification"],
                     id2label {"0": "LABEL_0"}, label2id {"LABEL_0": 0}
  tokenizer files    copied unchanged (tokenizer.json, tokenizer_config.json, vocab.txt,
                     special_tokens_map.json)
The sentence-transformers embedding files of the source (modules.json, 1_Pooling/, ...) are NOT
copied, so that sentence_transformers.CrossEncoder loads the folder as a plain cross-encoder.
The classifier is random: the scores mean nothing, the folder is for timing and for comparing
engines on the same weights. Idempotent (same bytes every run); prints the output folder path as
the last stdout line. Exits non-zero with a message on failure.
"""

import argparse
import json
import os
import random
import shutil
import struct
import sys
from pathlib import Path

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
# Files of the source's sentence-transformers *embedding* pipeline: their presence would make
# CrossEncoder build Transformer -> Pooling -> Normalize instead of a classifier.
ST_EMBEDDING_FILES = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling",
    "2_Normalize",
]
DROP_TENSORS = {"embeddings.position_ids"}
SEED = 0
SCALE = 0.05
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1}


def die(msg):
    print(f"make_bench_model.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def default_cache_dir():
    env = os.environ.get("CROSSENC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "crossenc"


def read_safetensors(path):
    """Returns (metadata or None, [(name, dtype, shape, bytes)] in file order of data offsets)."""
    data = path.read_bytes()
    if len(data) < 8:
        die(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        die(f"{path}: header length {n} past the end of the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        die(f"{path}: bad JSON header: {e}")
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors = []
    for name, info in header.items():
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if dtype in DTYPE_SIZES and numel * DTYPE_SIZES[dtype] != end - start:
            die(f"{path}: tensor {name}: {dtype}{shape} does not fit offsets [{start}, {end})")
        if not 0 <= start <= end <= len(body):
            die(f"{path}: tensor {name}: offsets [{start}, {end}) out of range")
        tensors.append((name, dtype, list(shape), bytes(body[start:end])))
    tensors.sort(key=lambda t: header[t[0]]["data_offsets"][0])
    return metadata, tensors


def write_safetensors(path, metadata, tensors):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)  # pad so tensor data starts 8-byte aligned
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for _, _, _, raw in tensors:
            f.write(raw)
    os.replace(tmp, path)


def f32_bytes(values):
    return struct.pack(f"<{len(values)}f", *values)


def write_text(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main():
    cache = default_cache_dir()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=cache / "all-MiniLM-L6-v2")
    ap.add_argument("--out", type=Path, default=cache / "all-MiniLM-L6-v2-ce")
    args = ap.parse_args()
    src, out = args.src, args.out

    for f in ["config.json", "model.safetensors", "tokenizer.json"]:
        if not (src / f).is_file():
            die(f"{src / f} is missing; run `bash tools/fetch_real_weights.sh` first")
    if src.resolve() == out.resolve():
        die("--out must differ from --src")

    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    hidden = config.get("hidden_size")
    if not isinstance(hidden, int) or hidden <= 0:
        die(f"{src / 'config.json'}: no hidden_size")

    metadata, tensors = read_safetensors(src / "model.safetensors")
    names = {t[0] for t in tensors}
    if any(n.startswith("bert.") for n in names):
        die(f"{src}: expected keys without the `bert.` prefix (a BertModel checkpoint)")
    if "classifier.weight" in names or "classifier.bias" in names:
        die(f"{src}: already has a classifier")
    if "pooler.dense.weight" not in names:
        die(f"{src}: no pooler (pooler.dense.weight); BertForSequenceClassification needs one")
    tensors = [t for t in tensors if t[0] not in DROP_TENSORS]

    rng = random.Random(SEED)
    weight = [rng.uniform(-SCALE, SCALE) for _ in range(hidden)]
    bias = [rng.uniform(-SCALE, SCALE)]
    tensors.append(("classifier.weight", "F32", [1, hidden], f32_bytes(weight)))
    tensors.append(("classifier.bias", "F32", [1], f32_bytes(bias)))

    config["architectures"] = ["BertForSequenceClassification"]
    config["id2label"] = {"0": "LABEL_0"}
    config["label2id"] = {"LABEL_0": 0}
    config.pop("_name_or_path", None)

    out.mkdir(parents=True, exist_ok=True)
    for name in ST_EMBEDDING_FILES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            tmp = out / (name + ".tmp")
            shutil.copyfile(src / name, tmp)
            os.replace(tmp, out / name)
    write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_safetensors(out / "model.safetensors", metadata, tensors)
    print(f"wrote {len(tensors)} tensors (incl. classifier [1, {hidden}]) and config.json", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()
