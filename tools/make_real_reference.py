"""Rerun from the repo root: bash tools/fetch_real_weights.sh && ~/venv-crossenc/bin/python tools/make_real_reference.py

Reference outputs of the real sentence-transformers/all-MiniLM-L6-v2 BERT encoder (fetched by
tools/fetch_real_weights.sh into ${CROSSENC_CACHE_DIR:-$HOME/.cache/crossenc}/all-MiniLM-L6-v2/).

Writes
  tests/data/real/all-MiniLM-L6-v2.json         max_length + per input: text or query/document,
                                                input_ids, token_type_ids
  tests/data/real/all-MiniLM-L6-v2.safetensors  last_hidden.{i} [len_i, 384] (real tokens only) and
                                                pooler.{i} [384], f32, i in the order of "inputs"

  tests/data/real/all-MiniLM-L6-v2-long.json    the same for 3 long pairs at max_length 512 (several
  tests/data/real/all-MiniLM-L6-v2-long.safetensors  attention key blocks), keeping only rows
                                                "rows" (every 16th and the last) of each last_hidden

transformers.BertModel, float32, eager attention, CPU; each kind (single texts, pairs, long pairs) is
run as ONE padded batch with attention mask, default truncation (longest_first), max_length 128
(512 for the long pairs).
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, BertModel  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "real"
MODEL_DIR = Path(os.environ.get("CROSSENC_CACHE_DIR", Path.home() / ".cache" / "crossenc")) / "all-MiniLM-L6-v2"
NAME = "all-MiniLM-L6-v2"
MAX_LENGTH = 128
MAX_LENGTH_LONG = 512
CORPUS = (REPO / "benches" / "data" / "corpus.txt").read_text(encoding="utf-8")

TEXTS = [
    "",
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "HOW DO I RESET MY PASSWORD?",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Café au lait, crème brûlée and a naïve résumé.",
    "Der Ärger über die Straße war groß.",
    "Il gatto dorme sul divano perché piove.",
    "¿Dónde está la biblioteca? Está al lado de la estación.",
    "Où se trouve la gare ? À côté de l'hôtel.",
    "东京是日本的首都。",
    "東京は日本の首都です。",
    "I love pizza 🍕 and coffee ☕ 😀👍🏽",
    "Family: 👨‍👩‍👧 zero\u200dwidth joiner, soft\u00adhyphen, control\u0007char.",
    "Prices: 3.14 euros, 2,000 dollars, 50% off; call 555-0199 on 2024-01-31.",
    "e-mail: info@example.com (see [1], {x}) -- 'single' \"double\" ~~~",
    "   \t  leading and trailing whitespace   ",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "Rust is a systems programming language focused on safety, speed and concurrency.",
    "안녕하세요, Ελληνικά, Русский язык, हिन्दी",
    "Machine learning models are trained on data.",
    (
        "Information retrieval is the science of searching for information in documents. A modern "
        "search engine first retrieves candidate passages with a fast method such as BM25 or a dense "
        "embedding index, and then a slower but more accurate cross-encoder reads every query and "
        "passage together to produce a relevance score. Because the cross-encoder attends over both "
        "texts at the same time, it can model fine interactions between the words of the question and "
        "the words of the answer, but it must be run once for every candidate, which is expensive. Long "
        "passages are truncated to the maximum sequence length of the model, so the end of a very long "
        "document is never seen by the network, and engineers therefore split documents into windows."
    ),
]

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("What is the capital of France?", "Berlin is the capital of Germany."),
    ("How many people live in Berlin?", "Berlin has a population of 3,520,031 registered inhabitants."),
    ("Café near the station", "Das Café neben dem Bahnhof öffnet um 7 Uhr."),
    ("¿Dónde está la biblioteca?", "La bibliothèque est à côté de la gare."),
    ("东京是日本的首都吗？", "是的，東京は日本の首都です。"),
    ("best pizza 🍕", "We serve the best pizza in town 😀👍"),
    ("", "A document without a query."),
    ("A query without a document", ""),
    ("", ""),
    ("HOW DO I RESET MY PASSWORD?", "Click on 'Forgot password?' on the login page and follow the e-mail."),
    (
        "why do search engines truncate long documents before reranking them with a cross-encoder model",
        TEXTS[-1],
    ),
]


def check_checkpoint() -> dict:
    info = {}
    with safe_open(MODEL_DIR / "model.safetensors", framework="pt") as f:
        for k in f.keys():
            sl = f.get_slice(k)
            info[k] = (sl.get_dtype(), sl.get_shape())
    return info


def write(name, max_length, has_pooler, inputs, tensors):
    OUT.mkdir(parents=True, exist_ok=True)
    lines = ["{", f'  "max_length": {max_length},', f'  "has_pooler": {json.dumps(has_pooler)},', '  "inputs": [']
    lines.append(",\n".join("    " + json.dumps(x, ensure_ascii=False) for x in inputs))
    lines += ["  ]", "}"]
    (OUT / f"{name}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    save_file(tensors, OUT / f"{name}.safetensors")


def main() -> int:
    if not (MODEL_DIR / "model.safetensors").is_file():
        print(f"{MODEL_DIR} missing: run bash tools/fetch_real_weights.sh first", file=sys.stderr)
        return 1
    assert len(TEXTS) >= 24 and len(PAIRS) >= 12

    tensors_info = check_checkpoint()
    has_pooler = "pooler.dense.weight" in tensors_info and "pooler.dense.bias" in tensors_info
    print(f"checkpoint: {len(tensors_info)} tensors; pooler weights present: {has_pooler}")
    for k in ("embeddings.position_ids", "embeddings.word_embeddings.weight", "pooler.dense.weight"):
        print(f"    {k}: {tensors_info.get(k)}")

    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    # NB: this tokenizer.json ships with truncation (LongestFirst, 128) AND padding (Fixed 128)
    # enabled; compare against it with padding off.
    file_tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    file_tok.no_padding()
    file_tok.enable_truncation(MAX_LENGTH)
    model = BertModel.from_pretrained(MODEL_DIR, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    # Every parameter must come from the checkpoint (no random init, e.g. of the pooler).
    sd = model.state_dict()
    missing = [k for k in sd if k not in tensors_info]
    assert not missing, f"parameters not in the checkpoint (randomly initialised): {missing}"
    from safetensors.torch import load_file

    ckpt = load_file(MODEL_DIR / "model.safetensors")
    for k, v in sd.items():
        assert torch.equal(v, ckpt[k]), k

    def run(batch_texts, batch_pairs, inputs, tensors, max_length=MAX_LENGTH, every=1):
        file_tok.enable_truncation(max_length)
        if batch_pairs is None:
            enc = tok(batch_texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        else:
            enc = tok(
                [q for q, _ in batch_pairs], [d for _, d in batch_pairs],
                truncation=True, max_length=max_length, padding=True, return_tensors="pt",
            )
        with torch.no_grad():
            out = model(**enc)
        n_items = len(batch_texts if batch_pairs is None else batch_pairs)
        for j in range(n_items):
            n = int(enc["attention_mask"][j].sum())
            ids = enc["input_ids"][j, :n].tolist()
            tt = enc["token_type_ids"][j, :n].tolist()
            assert enc["attention_mask"][j, :n].all() and not enc["attention_mask"][j, n:].any()
            # tokenizer.json alone (what the Rust side loads) must agree, incl. truncation
            if batch_pairs is None:
                fe = file_tok.encode(batch_texts[j])
                item = {"text": batch_texts[j]}
            else:
                fe = file_tok.encode(*batch_pairs[j])
                item = {"query": batch_pairs[j][0], "document": batch_pairs[j][1]}
            assert fe.ids == ids and fe.type_ids == tt, (item, fe.ids, ids)
            i = len(inputs)
            item["input_ids"] = ids
            item["token_type_ids"] = tt
            inputs.append(item)
            rows = list(range(0, n, every))
            if rows[-1] != n - 1:
                rows.append(n - 1)
            if every > 1:
                item["rows"] = rows
            tensors[f"last_hidden.{i}"] = out.last_hidden_state[j, rows].float().contiguous().clone()
            if has_pooler:
                tensors[f"pooler.{i}"] = out.pooler_output[j].float().contiguous().clone()

    inputs, tensors = [], {}
    run(TEXTS, None, inputs, tensors)
    run(None, PAIRS, inputs, tensors)
    write(NAME, MAX_LENGTH, has_pooler, inputs, tensors)
    lens = [len(x["input_ids"]) for x in inputs]
    print(f"{NAME}: {len(TEXTS)} texts + {len(PAIRS)} pairs, token lengths {min(lens)}..{max(lens)}, "
          f"pooler written: {has_pooler}")

    long_inputs, long_tensors = [], {}
    long_pairs = [
        ("how does a cross-encoder rerank search results", CORPUS[:1000]),
        ("why is reranking slow on a CPU", CORPUS[:2000]),
        ("what does the second step of a search system do", CORPUS),
    ]
    run(None, long_pairs, long_inputs, long_tensors, max_length=MAX_LENGTH_LONG, every=16)
    write(f"{NAME}-long", MAX_LENGTH_LONG, has_pooler, long_inputs, long_tensors)
    print(f"{NAME}-long: token lengths {[len(x['input_ids']) for x in long_inputs]}")

    for f in sorted(OUT.iterdir()):
        print(f"    {f.name:40s} {f.stat().st_size:>9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
