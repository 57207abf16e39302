"""Rerun from the repo root (after tools/fetch_real_weights.sh):
    ~/venv-crossenc/bin/python tools/bf16_fake_quant.py

What bf16 weights alone do to retrieval with the real all-MiniLM-L6-v2, measured in PyTorch: the
encoder's nn.Linear weights rounded to bf16 (round to nearest even, `.to(torch.bfloat16)`),
everything else f32, on the corpus of tests/data/precision. Prints the worst cosine of a text's
embedding to f32 and, per query, the top-10 overlap with f32's retrieval. tests/precision.rs cites
these figures (issue 12): worst cosine 0.999984, one query of 20 keeps 9 of 10.
"""

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CROSSENC_CACHE_DIR", Path.home() / ".cache/crossenc"))
corpus = json.loads((ROOT / "tests/data/precision/corpus.json").read_text())
model = SentenceTransformer(str(CACHE / "all-MiniLM-L6-v2"), device="cpu")
model.max_seq_length = 256


def encode():
    kw = dict(convert_to_tensor=True, normalize_embeddings=True, batch_size=64)
    return model.encode(corpus["queries"], **kw), model.encode(corpus["documents"], **kw)


q32, d32 = encode()
with torch.no_grad():
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "encoder" in name:
            module.weight.copy_(module.weight.to(torch.bfloat16).float())
q16, d16 = encode()
worst = torch.nn.functional.cosine_similarity(torch.cat([q32, d32]), torch.cat([q16, d16])).min()
s32, s16 = q32 @ d32.T, q16 @ d16.T
overlaps = [
    len(set(s32[i].topk(10).indices.tolist()) & set(s16[i].topk(10).indices.tolist()))
    for i in range(len(corpus["queries"]))
]
print(f"worst cosine to f32: {worst.item():.6f}")
print(f"top-10 overlap per query: {overlaps} (mean {sum(overlaps) / len(overlaps):.2f})")
