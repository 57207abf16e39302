"""Rerun from the repo root:
    bash tools/fetch_real_weights.sh && python3 tools/make_bench_model.py \
      && ~/venv-crossenc/bin/python tools/make_precision_reference.py

The corpora and PyTorch f32 results that reduced precision is measured against (issue 12):

  tests/data/precision/corpus.json          {"python": version, "queries": [20 str],
                                             "documents": [1000 str], "rank_query": str}
  tests/data/precision/f32.safetensors      f32 tensors:
      query_embeddings [20, 384], document_embeddings [1000, 384]: SentenceTransformer.encode
          of the real all-MiniLM-L6-v2 (mean pooling, normalized, max_seq_length 256);
      rank_logits [1000]: AutoModelForSequenceClassification on (rank_query, document) for every
          document, with the benchmark cross-encoder made from the same weights
          (tools/make_bench_model.py, max_length 512, longest-first truncation).

The documents are the first 1,000 distinct paragraphs (12 to 220 words, mostly letters) of the
Python documentation that CPython ships in `pydoc_data.topics`, in sorted topic order: real English
prose about one subject, with near-duplicates and many shades of relevance, which is what makes a
ranking sensitive to small errors. The queries are questions about Python written for this file.
float32, eager attention, CPU.
"""

import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from pydoc_data.topics import topics  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/precision"
CACHE = Path(os.environ.get("CROSSENC_CACHE_DIR", Path.home() / ".cache/crossenc"))

QUERIES = [
    "how do I catch an exception and re-raise it",
    "what does the with statement do",
    "how are default argument values evaluated",
    "difference between is and == comparison",
    "how does a for loop iterate over a sequence",
    "what is a generator and how does yield work",
    "how to define a class with a custom constructor",
    "what happens when an attribute is not found",
    "how are strings formatted with format specifiers",
    "how does integer division and modulo work",
    "what is the scope of a variable inside a function",
    "how to use lambda expressions",
    "how do keyword arguments work in a call",
    "what are the rules for operator precedence",
    "how does the import statement find modules",
    "what is a context manager",
    "how are dictionaries compared and ordered",
    "how do decorators wrap a function",
    "what does the global statement mean",
    "how are bytes and str literals different",
]
RANK_QUERY = "how does Python decide which exception handler runs"


def documents(count=1000):
    seen, out = set(), []
    for key in sorted(topics):
        for p in re.split(r"\n\s*\n", topics[key]):
            p = " ".join(p.split())
            words = len(p.split())
            letters = sum(c.isalpha() or c == " " for c in p)
            if 12 <= words <= 220 and not p.startswith((">>>", "...")) and letters > 0.75 * len(p):
                if p not in seen:
                    seen.add(p)
                    out.append(p)
    if len(out) < count:
        sys.exit(f"only {len(out)} paragraphs in pydoc_data.topics")
    return out[:count]


def main():
    st_dir = CACHE / "all-MiniLM-L6-v2"
    ce_dir = CACHE / "all-MiniLM-L6-v2-ce"
    for d in (st_dir, ce_dir):
        if not (d / "model.safetensors").exists():
            sys.exit(f"{d} missing: run tools/fetch_real_weights.sh and tools/make_bench_model.py")
    docs = documents()
    st = SentenceTransformer(str(st_dir), device="cpu")
    assert st.max_seq_length == 256, st.max_seq_length
    q_emb = st.encode(QUERIES, batch_size=32, convert_to_tensor=True, normalize_embeddings=False)
    d_emb = st.encode(docs, batch_size=32, convert_to_tensor=True, normalize_embeddings=False)

    tok = AutoTokenizer.from_pretrained(str(ce_dir))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(ce_dir), torch_dtype=torch.float32, attn_implementation="eager").eval()
    logits = []
    with torch.no_grad():
        for i in range(0, len(docs), 32):
            batch = tok([RANK_QUERY] * len(docs[i:i + 32]), docs[i:i + 32], padding=True,
                        truncation="longest_first", max_length=512, return_tensors="pt")
            logits.append(model(**batch).logits[:, 0])
    logits = torch.cat(logits)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "corpus.json").write_text(json.dumps({
        "python": sys.version.split()[0],
        "queries": QUERIES,
        "documents": docs,
        "rank_query": RANK_QUERY,
    }, indent=0) + "\n")
    save_file({
        "query_embeddings": q_emb.float().contiguous(),
        "document_embeddings": d_emb.float().contiguous(),
        "rank_logits": logits.float().contiguous(),
    }, str(OUT / "f32.safetensors"))
    print(OUT)


if __name__ == "__main__":
    main()
