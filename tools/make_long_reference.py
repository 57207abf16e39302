"""Rerun from the repo root:
    bash tools/fetch_real_weights.sh && python3 tools/make_bench_model.py \
      && ~/venv-crossenc/bin/python tools/make_long_reference.py

PyTorch reference for long documents scored in windows (`--long-docs max|mean`, issue 11), written
to tests/data/long_docs.json. The windows are built here from transformers' own tokenizer calls,
independently of crossenc's code, by the definition crossenc documents:

  - a pair that fits untruncated (tokenizer(query, document) at max_length is not cut) is one
    window: the plain pair;
  - otherwise Q = the query's tokens without special tokens, cut to max_length // 2;
    W = max_length - len(Q) - tokenizer.num_special_tokens_to_add(pair=True) (3 for BERT, 4 for
    XLM-R); D = the document's tokens without special tokens; window k covers D[k*S : k*S + W]
    with S = stride (default W // 2, at least 1), for k = 0, 1, ... while k*S < len(D), stopping
    after the first window that reaches the end of D;
  - each window is the model family's pair template around (Q, window): [CLS] Q [SEP] W [SEP] with
    token types 0 then 1 (BERT), <s> Q </s></s> W </s> with types 0 (XLM-R), written out here and
    checked against tokenizer(query, document) on every pair that fits;
  - "max" takes per label the largest logit over the windows, "mean" their mean (float64 here,
    from the float32 logits); the activation applies after.

Models: the real all-MiniLM-L6-v2 encoder with the benchmark head (tools/make_bench_model.py,
${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2-ce) at max_length 512 on documents
of ~300 to ~3,000 tokens, and the tiny fixtures bert-l2-h32 and xlmr-tiny (the XLM-R template
<s> Q </s></s> W </s>) at max_length 32. Every window is run alone (batch of one, no padding),
float32, eager attention.

Output: {"models": [{"name", "path" ("fixture:NAME" or "real:all-MiniLM-L6-v2-ce"), "max_length",
"cases": [{"query", "document", "stride" (null = default), "windows": [{"input_ids",
"token_type_ids", "logits"}], "max": [..], "mean": [..], "truncated_query": bool}]}]}.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/long_docs.json"
CACHE = Path(os.environ.get("CROSSENC_CACHE_DIR", Path.home() / ".cache/crossenc"))


def sentences():
    text = (ROOT / "benches/data/corpus.txt").read_text().replace("\n", " ")
    return [s.strip() + "." for s in text.split(".") if s.strip()]


def document(n_sentences, offset):
    s = sentences()
    return " ".join(s[(offset + i) % len(s)] for i in range(n_sentences))


def template(tok, q, w):
    """The pair template of the tokenizer's model family, written out by hand."""
    if tok.cls_token == "<s>":  # XLM-R / RoBERTa
        ids = [tok.cls_token_id] + q + [tok.sep_token_id, tok.sep_token_id] + w + [tok.sep_token_id]
        return ids, [0] * len(ids)
    ids = [tok.cls_token_id] + q + [tok.sep_token_id] + w + [tok.sep_token_id]
    return ids, [0] * (len(q) + 2) + [1] * (len(w) + 1)


def windows(tok, query, doc, max_length, stride):
    plain = tok(query, doc, truncation="longest_first", max_length=max_length,
                return_overflowing_tokens=False)
    full = tok(query, doc, truncation=False)
    q_all = tok(query, add_special_tokens=False)["input_ids"]
    d = tok(doc, add_special_tokens=False)["input_ids"]
    ids, types = template(tok, q_all, d)
    assert ids == full["input_ids"], "the hand-written template is not the tokenizer's"
    if "token_type_ids" in full:
        assert types == full["token_type_ids"]
    assert len(ids) - len(q_all) - len(d) == tok.num_special_tokens_to_add(pair=True)
    if len(full["input_ids"]) <= max_length:
        return [(plain["input_ids"], plain.get("token_type_ids", [0] * len(plain["input_ids"])))], False
    q = q_all[: max_length // 2]
    width = max_length - len(q) - tok.num_special_tokens_to_add(pair=True)
    assert width > 0
    step = max(1, stride if stride is not None else width // 2)
    out = []
    k = 0
    while True:
        part = d[k * step: k * step + width]
        ids, types = template(tok, q, part)
        assert len(ids) <= max_length, (len(ids), max_length)
        out.append((ids, types))
        if k * step + width >= len(d) or (k + 1) * step >= len(d):
            break
        k += 1
    return out, len(q) < len(q_all)


def run(name, path, max_length, cases):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, torch_dtype=torch.float32, attn_implementation="eager").eval()
    uses_types = "token_type_ids" in tok.model_input_names
    out_cases = []
    for query, doc, stride in cases:
        wins, cut_query = windows(tok, query, doc, max_length, stride)
        rows = []
        for ids, types in wins:
            inputs = {"input_ids": torch.tensor([ids])}
            if uses_types:
                inputs["token_type_ids"] = torch.tensor([types])
            with torch.no_grad():
                logits = model(**inputs).logits[0].tolist()
            rows.append({"input_ids": ids, "token_type_ids": types if uses_types else [0] * len(ids),
                         "logits": logits})
        labels = len(rows[0]["logits"])
        mx = [max(r["logits"][j] for r in rows) for j in range(labels)]
        mean = [sum(r["logits"][j] for r in rows) / len(rows) for j in range(labels)]
        out_cases.append({"query": query, "document": doc, "stride": stride, "windows": rows,
                          "max": mx, "mean": mean, "truncated_query": cut_query})
        print(f"{name}: {len(rows)} window(s), doc {len(tok(doc, add_special_tokens=False)['input_ids'])} tokens",
              file=sys.stderr)
    return {"name": name, "max_length": max_length, "cases": out_cases}


def main():
    real = CACHE / "all-MiniLM-L6-v2-ce"
    if not (real / "model.safetensors").exists():
        sys.exit(f"make_long_reference.py: {real} missing: run tools/fetch_real_weights.sh "
                 "and tools/make_bench_model.py first")
    q = "why does a reranker read the query and the document together"
    real_cases = [
        (q, document(40, 0), None),                      # ~1,000 tokens
        (q, document(120, 7), None),                     # ~3,000 tokens
        ("how are long documents cut into windows", document(70, 20), 300),
        ("what does the second step of search do", document(8, 3), None),   # fits: one window
        (document(30, 5), document(60, 11), None),       # a query longer than max_length / 2
    ]
    tiny_cases = [
        ("a question about paris", "paris is the capital of france and its largest city " * 6, None),
        ("berlin", "a long text about many things, cities and rivers and the sea " * 5, 5),
        ("short", "fits", None),
        ("a query that is itself rather long for such a tiny model window", "doc words " * 20, None),
    ]
    models = [
        {**run("all-MiniLM-L6-v2-ce", str(real), 512, real_cases), "path": "real:all-MiniLM-L6-v2-ce"},
    ]
    for fixture in ["bert-l2-h32", "xlmr-tiny"]:
        path = ROOT / "tests/data/fixtures" / fixture
        models.append({**run(fixture, str(path), 32, tiny_cases), "path": f"fixture:{fixture}"})
    OUT.write_text(json.dumps({"models": models}, indent=None) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
