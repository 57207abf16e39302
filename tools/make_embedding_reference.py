"""Rerun from the repo root:
    bash tools/fetch_real_weights.sh && ~/venv-crossenc/bin/python tools/make_embedding_reference.py [--real-only | --tiny-only]

Sentence-transformers *embedding* references (SentenceTransformer.encode), no Hugging Face hub access:

* real (needs tools/fetch_real_weights.sh): `SentenceTransformer(<cache>/all-MiniLM-L6-v2).encode(TEXTS,
  convert_to_numpy=True)` with all its defaults (max_seq_length 256 from sentence_bert_config.json, mean pooling,
  the Normalize module listed in modules.json, batch_size 32) -> tests/data/real/all-MiniLM-L6-v2-embeddings.json.
* tiny: sentence-transformers model folders tests/data/fixtures/st-{mean,cls,max}/ built from the BertModel part of
  tests/data/fixtures/bert-l2-h32 (same weights in all three; its classifier is dropped, the pooler kept), each
  with an embeddings.json from `SentenceTransformer(folder).encode(TINY_TEXTS)`.

The folders use the classic hub layout that most published models have (modules.json types
`sentence_transformers.models.*`, sentence_bert_config.json with max_seq_length), not what sentence-transformers
6.2's own save() writes (module paths `sentence_transformers.base.modules.transformer.Transformer`, ...,
max_seq_length moved to tokenizer_config.json). Per folder:
  st-mean: mean pooling, legacy `pooling_mode_*_tokens` booleans in 1_Pooling/config.json, Normalize listed in
           modules.json with *no* 2_Normalize folder (exactly like all-MiniLM-L6-v2);
  st-cls:  cls pooling, the 6.x Pooling config keys {"embedding_dimension", "pooling_mode": "cls", "include_prompt"};
  st-max:  max pooling, legacy booleans.
In all three tokenizer_config.json says model_max_length 512 while sentence_bert_config.json says 48: the latter
wins (asserted), and some texts are longer than 48 tokens.

Floats are written as the shortest decimal that round-trips the float32 value (lossless for f32).
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer, BertModel  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "data" / "fixtures"
REAL_OUT = REPO / "tests" / "data" / "real" / "all-MiniLM-L6-v2-embeddings.json"
CACHE = Path(os.environ.get("CROSSENC_CACHE_DIR", Path.home() / ".cache" / "crossenc"))
REAL_DIR = CACHE / "all-MiniLM-L6-v2"

LONG_EN = (
    "Information retrieval is the science of searching for information in documents, searching for documents "
    "themselves, and searching for metadata that describes data. A modern search engine first retrieves a few "
    "hundred candidate passages with a fast method such as a bag of words model or a dense embedding index, and "
    "then a slower but more accurate cross-encoder reads every query and passage together to produce a relevance "
    "score. Because the cross-encoder attends over both texts at the same time, it can model fine interactions "
    "between the words of the question and the words of the answer, but it must be run once for every candidate, "
    "which is expensive. Long passages are truncated to the maximum sequence length of the model, so the end of a "
    "very long document is simply never seen by the network. Engineers therefore split long documents into smaller "
    "windows, score every window separately, and keep the best score, or they accept the truncation when the "
    "beginning of the document usually contains the most important information for the user. Embedding models, on "
    "the other hand, encode every text on its own into a single vector, so that millions of passages can be "
    "indexed ahead of time and compared with the query by cosine similarity, which is fast but less precise than "
    "reading both texts together. The two approaches are usually combined in a retrieve and rerank pipeline."
)

TEXTS = [
    "What is the capital of France?",
    "Paris is the capital and the largest city of France.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street.",
    "How do I reset my password?",
    "HOW DO I RESET MY PASSWORD?",
    "spondilolistesi sintomi",
    "La spondilolistesi è lo scivolamento in avanti di una vertebra rispetto a quella sottostante.",
    "Qual è la capitale d'Italia? Roma è la capitale e la città più grande d'Italia.",
    "Perché il cielo è blu? La luce del sole viene diffusa dall'atmosfera.",
    "Café au lait for a naïve user; Der Ärger über das Wetter; l'été à Paris était très chaud.",
    "¿Dónde está la biblioteca? La biblioteca está al lado de la estación.",
    "I love pizza 🍕🍕 and coffee ☕ 😀 👍🏽 family 👨‍👩‍👧 rocket 🚀",
    "东京是日本的首都。北京是中国的首都。",
    "東京は日本の首都です。私は毎朝コーヒーを飲みます。",
    "안녕하세요 ሰላም Ελλάδα Москва",
    "",
    "   \t\n  ",
    "a",
    "e-mail: info@example.com; see https://example.com/a?b=1&c=2 -- 'single' \"double\" ~~~ $%&*",
    "The answer is 6280 (six thousand two hundred eighty), or 6.28e3; call 555-0199 on 2024-01-31.",
    "foo\u0000bar\u0007 baz\u001b zero\u200dwidth soft\u00adhyphen",
    "Machine learning models are trained on large datasets to make predictions.",
    "Neural networks learn weights and biases through gradient descent and backpropagation.",
    "Il gatto dorme sul divano mentre la pioggia cade sulla città.",
    LONG_EN,
    LONG_EN[:700],
]

TINY_TEXTS = [
    "What is the capital of France?",
    "spondilolistesi sintomi",
    "Qual è la capitale d'Italia? Roma è la capitale e la città più grande d'Italia.",
    "Café au lait for a naïve user; Der Ärger über das Wetter.",
    "I love pizza 🍕 and coffee ☕",
    "东京是日本的首都。",
    "",
    "   \t\n  ",
    "a",
    LONG_EN,
    "The museum is open from nine in the morning until six in the evening, every day except Monday.",
]

TINY_SPECS = {
    "st-mean": dict(mode="mean", normalize=True, legacy=True),
    "st-cls": dict(mode="cls", normalize=False, legacy=False),
    "st-max": dict(mode="max", normalize=False, legacy=True),
}
TINY_MAX_SEQ = 48


def f32(x) -> str:
    return str(np.float32(x))  # numpy prints the shortest string that round-trips the float32


def write_json(path: Path, header: dict, texts, input_ids, embeddings) -> None:
    """JSON with one text / id list / embedding per line; embeddings as float32 shortest round-trip decimals."""
    lines = ["{"]
    for k, v in header.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "texts": [')
    lines.append(",\n".join("    " + json.dumps(t, ensure_ascii=False) for t in texts))
    lines.append("  ],")
    lines.append('  "input_ids": [')
    lines.append(",\n".join("    " + json.dumps(ids) for ids in input_ids))
    lines.append("  ],")
    lines.append('  "embeddings": [')
    lines.append(",\n".join("    [" + ", ".join(f32(x) for x in row) + "]" for row in embeddings))
    lines.append("  ]")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back["texts"] == list(texts)
    assert np.array_equal(np.asarray(back["embeddings"], dtype=np.float32), np.asarray(embeddings, dtype=np.float32))


def manual_embeddings(folder: Path, texts, max_len: int, mode: str, normalize: bool):
    """Independent re-computation (eager f32 BertModel, one text at a time, no padding) of what ST should give."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    ids_all, out = [], []
    for t in texts:
        enc = tok(t, truncation="longest_first", max_length=max_len, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]  # [len, hidden], real tokens only
        if mode == "mean":
            v = h.mean(dim=0)  # every real token, [CLS] and [SEP] included
        elif mode == "cls":
            v = h[0]
        elif mode == "max":
            v = h.max(dim=0).values
        else:
            raise ValueError(mode)
        if normalize:
            v = torch.nn.functional.normalize(v, p=2, dim=-1)
        ids_all.append(enc["input_ids"][0].tolist())
        out.append(v)
    return ids_all, torch.stack(out).numpy()


def check_pipeline(st: SentenceTransformer, mode: str, normalize: bool, max_len: int) -> None:
    mods = [type(m).__name__ for m in st]
    assert mods == ["Transformer", "Pooling"] + (["Normalize"] if normalize else []), mods
    assert st.max_seq_length == max_len, (st.max_seq_length, max_len)
    assert st[1].pooling_mode == mode, st[1].pooling_mode


def build_real() -> None:
    if not (REAL_DIR / "modules.json").is_file():
        sys.exit(f"{REAL_DIR} missing: run `bash tools/fetch_real_weights.sh` first")
    assert len(TEXTS) >= 24
    st = SentenceTransformer(str(REAL_DIR), device="cpu", local_files_only=True)
    sbert_cfg = json.loads((REAL_DIR / "sentence_bert_config.json").read_text())
    modules = json.loads((REAL_DIR / "modules.json").read_text())
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    max_len = sbert_cfg["max_seq_length"]
    check_pipeline(st, "mean", normalize, max_len)
    emb = st.encode(TEXTS, convert_to_numpy=True)
    assert emb.dtype == np.float32 and emb.shape == (len(TEXTS), 384), (emb.dtype, emb.shape)
    ids, manual = manual_embeddings(REAL_DIR, TEXTS, max_len, "mean", normalize)
    diff = float(np.abs(manual - emb).max())
    assert diff < 2e-6, diff
    assert max(len(i) for i in ids) == max_len  # the long text is truncated
    REAL_OUT.parent.mkdir(parents=True, exist_ok=True)
    header = {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": max_len, "normalize": normalize,
              "pooling": "mean"}
    write_json(REAL_OUT, header, TEXTS, ids, emb)
    lens = sorted(len(i) for i in ids)
    print(f"{REAL_OUT.relative_to(REPO)}: {len(TEXTS)} texts, token lengths {lens[0]}..{lens[-1]}, "
          f"max |ST - eager manual| {diff:.2e}, {REAL_OUT.stat().st_size} bytes")


def build_tiny() -> None:
    src = FIXTURES / "bert-l2-h32"
    model = BertModel.from_pretrained(src, dtype=torch.float32)  # drops classifier.*, keeps the pooler
    ref_sd = load_file(src / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref_sd["bert." + k]), k
    for name, spec in TINY_SPECS.items():
        folder = FIXTURES / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        model.save_pretrained(folder, safe_serialization=True)
        cfg = json.loads((folder / "config.json").read_text())
        for k in ("id2label", "label2id"):
            cfg.pop(k, None)
        assert cfg["architectures"] == ["BertModel"], cfg["architectures"]
        (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        assert not any("position_ids" in k or "classifier" in k for k in load_file(folder / "model.safetensors"))
        shutil.copy(src / "tokenizer.json", folder / "tokenizer.json")
        tcfg = json.loads((src / "tokenizer_config.json").read_text())
        tcfg["model_max_length"] = 512  # sentence_bert_config.json's max_seq_length must win
        (folder / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, sort_keys=True) + "\n")
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": TINY_MAX_SEQ, "do_lower_case": False}, indent=2) + "\n")
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if spec["normalize"]:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        hidden = model.config.hidden_size
        if spec["legacy"]:
            pool = {
                "word_embedding_dimension": hidden,
                "pooling_mode_cls_token": spec["mode"] == "cls",
                "pooling_mode_mean_tokens": spec["mode"] == "mean",
                "pooling_mode_max_tokens": spec["mode"] == "max",
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        else:
            pool = {"embedding_dimension": hidden, "pooling_mode": spec["mode"], "include_prompt": True}
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool, indent=2) + "\n")

        st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        check_pipeline(st, spec["mode"], spec["normalize"], TINY_MAX_SEQ)
        emb = st.encode(TINY_TEXTS, convert_to_numpy=True)
        assert emb.dtype == np.float32 and emb.shape == (len(TINY_TEXTS), hidden)
        ids, manual = manual_embeddings(folder, TINY_TEXTS, TINY_MAX_SEQ, spec["mode"], spec["normalize"])
        diff = float(np.abs(manual - emb).max())
        assert diff < 2e-6, (name, diff)
        assert max(len(i) for i in ids) == TINY_MAX_SEQ
        header = {"max_seq_length": TINY_MAX_SEQ, "normalize": spec["normalize"], "pooling": spec["mode"]}
        write_json(folder / "embeddings.json", header, TINY_TEXTS, ids, emb)
        files = sorted(f for f in folder.rglob("*") if f.is_file())
        total = sum(f.stat().st_size for f in files)
        print(f"{name}: pooling {spec['mode']}, normalize {spec['normalize']}, max |ST - manual| {diff:.2e}, "
              f"{total / 1024:.0f} KiB")
        for f in files:
            print(f"    {str(f.relative_to(folder)):28s} {f.stat().st_size:>9d}")


def main() -> int:
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--real-only", action="store_true")
    g.add_argument("--tiny-only", action="store_true")
    args = ap.parse_args()
    if not args.tiny_only:
        build_real()
    if not args.real_only:
        build_tiny()
    return 0


if __name__ == "__main__":
    sys.exit(main())
