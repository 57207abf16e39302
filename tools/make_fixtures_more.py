"""Rerun from the repo root: ~/venv-crossenc/bin/python tools/make_fixtures_more.py   (writes tests/data/fixtures/{xlmr-tiny,electra-tiny}/)

Needs, besides the venv of tools/make_fixtures.py, the `sentencepiece` wheel (`~/venv-crossenc/bin/pip install
sentencepiece`): it is used only to obtain SentencePiece's built-in `nmt_nfkc` normalisation table (the
`precompiled_charsmap` that real XLM-R tokenizer.json files carry in their `Precompiled` normalizer).

Builds two more tiny, randomly initialised cross-encoder fixtures with the same reference format as
tools/make_fixtures.py (same 17 pairs, imported from it; see tools/README.md):

* `xlmr-tiny`: `XLMRobertaForSequenceClassification` (2 layers, hidden 32, 4 heads, intermediate 64, 1 label,
  pad_token_id 1, max_position_embeddings 50 -> 48 usable positions, type_vocab_size 1, gelu) with a SentencePiece
  Unigram tokenizer trained here with the `tokenizers` library (made deterministic, see train_unigram_pieces),
  laid out as transformers 5's XLMRobertaTokenizer builds it (see xlmr_normalizer): normalizer
  Precompiled(nmt_nfkc), pre-tokenizer Sequence[WhitespaceSplit, Metaspace("▁", prepend_scheme always, split)],
  Unigram model (unk_id 3, no byte fallback), TemplateProcessing `<s> $A </s>` / `<s> $A </s> </s> $B </s>`
  (all type ids 0), Metaspace decoder.
  reference.safetensors holds `hidden.{i}.{l}` and `head_dense.{i}` = tanh(classifier.dense(h_<s>)).
* `electra-tiny`: `ElectraForSequenceClassification` with embedding_size 16 != hidden_size 32 (so
  `electra.embeddings_project` exists), the WordPiece tokenizer of tests/data/fixtures/bert-l2-h32 (files copied,
  model_max_length 48). reference.safetensors holds `hidden.{i}.{l}` (l = 0 is the *projected* embedding output,
  [len, 32]), `embeddings.{i}` (embedding LayerNorm output before the projection, [len, 16]) and `head_dense.{i}` =
  gelu(classifier.dense(h_[CLS])) (exact erf GELU whatever hidden_act says).

Deterministic: fixed seeds, CPU only, eager attention, float32.
"""

import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (sets the offline env vars, 1 torch thread, deterministic algorithms)

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from tokenizers.models import Unigram  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    ElectraConfig,
    ElectraForSequenceClassification,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaTokenizerFast,
)
from sentence_transformers import CrossEncoder  # noqa: E402

transformers.logging.set_verbosity_error()

REPO = mf.REPO
OUT = mf.OUT
PAIRS = mf.PAIRS

XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3; "<mask>" is appended last
XLMR_VOCAB_SIZE = 1000  # upper bound: the trainer stops earlier on this small corpus
NMT_NFKC_SHA256 = "1e2c7b43d3ee9755ceaa2ac335e253d8703604e0249ee1e81156c92b46423844"  # sentencepiece 0.2.x

# Extra training text for the Unigram tokenizer (the WordPiece corpus of make_fixtures.py is used too).
EXTRA_CORPUS = [
    # Italian
    "spondilolistesi sintomi: dolore lombare, rigidità e formicolio alle gambe.",
    "La spondilolistesi è lo scivolamento in avanti di una vertebra rispetto a quella sottostante.",
    "Quali sono i sintomi dell'influenza? Febbre, tosse, mal di gola e stanchezza.",
    "Il medico consiglia riposo, molta acqua e un antinfiammatorio per tre giorni.",
    "Come si prepara il risotto alla milanese? Serve lo zafferano e un buon brodo.",
    "Il treno per Milano parte alle otto e arriva a Roma dopo tre ore.",
    "Gli studenti dell'università hanno superato l'esame di matematica con ottimi voti.",
    "La Divina Commedia di Dante è divisa in Inferno, Purgatorio e Paradiso.",
    "Dove si trova la farmacia più vicina? È in piazza, accanto alla chiesa.",
    "Perché è importante dormire bene? Il sonno aiuta la memoria e la salute del cuore.",
    # English
    "Symptoms of the flu include fever, cough, sore throat and tiredness.",
    "The doctor recommended physical therapy for the lower back pain.",
    "How long does it take to learn a new language? It depends on practice and motivation.",
    "The search results are reranked by a cross-encoder before they are shown to the user.",
    "Multilingual models share one vocabulary across many languages and scripts.",
    # Portuguese / Dutch
    "Onde fica a estação de comboios? Fica perto do centro da cidade.",
    "Het weer is vandaag mooi, dus we gaan fietsen in het park.",
]


# --------------------------------------------------------------------------------------------
# XLM-R style SentencePiece Unigram tokenizer.
# --------------------------------------------------------------------------------------------
def nmt_nfkc_charsmap() -> bytes:
    """SentencePiece's built-in `nmt_nfkc` normalisation table, as stored in `precompiled_charsmap`.

    The sentencepiece library only exposes it inside a trained model, so a throw-away character model is
    trained on three words; the table does not depend on the training data.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["hello world"] * 10), model_writer=buf, vocab_size=10, model_type="char",
        normalization_rule_name="nmt_nfkc", minloglevel=2, num_threads=1,
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buf.getvalue())
    cm = proto.normalizer_spec.precompiled_charsmap
    digest = hashlib.sha256(cm).hexdigest()
    assert digest == NMT_NFKC_SHA256, f"nmt_nfkc charsmap changed: {digest}"
    return cm


# The pipeline is the one transformers 5's XLMRobertaTokenizer builds when it loads *any* XLM-R folder (it
# re-creates the backend from the tokenizer.json's Unigram vocab and Precompiled charsmap, ignoring the file's
# normalizer/pre-tokenizer/post-processor). The hub files of real XLM-R models instead have normalizer
# Sequence[Precompiled, Replace(" {2,}", " ")] and pre-tokenizer Metaspace(split) without WhitespaceSplit: same ids
# except on whitespace-only text (hub layout: one "▁" token, transformers 5: no token) and offsets that include
# the leading space. Using transformers 5's layout here makes tokenizer.json alone agree exactly (ids and offsets).
def xlmr_normalizer(charsmap: bytes):
    return normalizers.Precompiled(charsmap)


def xlmr_pre_tokenizer():
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )


def train_unigram_pieces(charsmap: bytes, corpus):
    """Train with `tokenizers.trainers.UnigramTrainer`, then canonicalise the result.

    The trainer is not reproducible as is: (1) characters of the corpus that the EM pruning dropped are
    re-added with scores min_score + k * 1e-4 in the iteration order of a randomly seeded Rust HashSet, and
    (2) the other scores differ in the last bits (summation order). The set of pieces is stable. So: the
    re-added characters (single characters whose score lies on that 1e-4 ladder above the minimum) are
    re-scored in code-point order, all other scores are rounded to 1e-8, and pieces are sorted by
    (score descending, piece). The script trains twice and asserts identical results.
    """
    tok = Tokenizer(Unigram())
    tok.normalizer = xlmr_normalizer(charsmap)
    tok.pre_tokenizer = xlmr_pre_tokenizer()
    trainer = trainers.UnigramTrainer(
        vocab_size=XLMR_VOCAB_SIZE - len(XLMR_SPECIALS) - 1,
        special_tokens=["<unk>"],
        unk_token="<unk>",
        show_progress=False,
        max_piece_length=16,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    pieces = [(p, s) for p, s in vocab if p != "<unk>"]
    min_score = min(s for _, s in pieces)
    ladder, rest = [], []
    for p, s in pieces:
        k = (s - min_score) / 1e-4
        if len(p) == 1 and abs(k - round(k)) < 1e-6 and round(k) < 1000:
            ladder.append(p)
        else:
            rest.append((p, round(s, 8)))
    # pieces exactly at min_score that are real trained pieces are indistinguishable from ladder step 0; a
    # multi-character piece can never be on the ladder, and for single characters treating them as ladder
    # entries is harmless (they get a score in the same 1e-4 band).
    ladder.sort()
    base = round(min_score, 8)
    canon = rest + [(p, round(base + k * 1e-4, 8)) for k, p in enumerate(ladder)]
    canon.sort(key=lambda ps: (-ps[1], ps[0]))
    return canon


def build_xlmr_tokenizer() -> Tokenizer:
    charsmap = nmt_nfkc_charsmap()
    corpus = mf.CORPUS + EXTRA_CORPUS
    pieces = train_unigram_pieces(charsmap, corpus)
    again = train_unigram_pieces(charsmap, corpus)
    assert pieces == again, "Unigram training is not reproducible after canonicalisation"
    vocab = [(t, 0.0) for t in XLMR_SPECIALS] + pieces + [("<mask>", 0.0)]
    tok = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = xlmr_normalizer(charsmap)
    tok.pre_tokenizer = xlmr_pre_tokenizer()
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in XLMR_SPECIALS]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    v = tok.get_vocab()
    for i, t in enumerate(XLMR_SPECIALS):
        assert v[t] == i, (t, v[t])
    assert v["<mask>"] == len(vocab) - 1
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tok


# --------------------------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------------------------
def rerandomise(model: torch.nn.Module, seed: int) -> None:
    """Same distributions as make_fixtures.rerandomise, except that `embeddings_project` (a Linear whose name
    contains "embeddings") is treated as a Linear layer: std 0.2 * sqrt(32 / fan_in), bias N(0, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "LayerNorm.weight" in name:
                new = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
            elif "LayerNorm.bias" in name:
                new = 0.1 * torch.randn(p.shape, generator=g)
            elif "embeddings." in name and "embeddings_project" not in name:
                new = 0.5 * torch.randn(p.shape, generator=g)
            elif name.endswith(".bias"):
                new = 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith(".weight") and p.dim() == 2:
                std = 0.2 * (32.0 / p.shape[1]) ** 0.5
                new = std * torch.randn(p.shape, generator=g)
            else:
                raise RuntimeError(f"unexpected parameter {name}")
            p.copy_(new.to(p.dtype))


def encode(tokenizer, q, d, **kw):
    # Batch of one (see make_fixtures.encode); token_type_ids requested explicitly because the XLM-R
    # tokenizer does not return them by default (all zeros there).
    enc = tokenizer([q], [d], return_token_type_ids=True, **kw)
    return {"input_ids": list(enc["input_ids"][0]), "token_type_ids": list(enc["token_type_ids"][0])}


def write_config(folder: Path, updates: dict) -> None:
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(updates)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def build_reference(name: str, folder: Path, model_cls, model_type: str, head_act, max_length: int, extra_hooks=None):
    """Reload the saved folder in f32 and write reference.json + reference.safetensors (make_fixtures format)."""
    ref_model = model_cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    ref_model.eval()
    tok = AutoTokenizer.from_pretrained(folder)
    file_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tok.model_max_length == max_length, (tok.model_max_length, max_length)
    num_labels = ref_model.config.num_labels
    num_layers = ref_model.config.num_hidden_layers
    hidden = ref_model.config.hidden_size

    pairs_out = []
    for q, d in PAIRS:
        main = encode(tok, q, d, truncation="longest_first", max_length=max_length)
        full = encode(tok, q, d, truncation=False)
        # tokenizer.json alone (what the Rust tokenizers crate loads) must agree with transformers: ids, type ids
        # and offsets
        fe = file_tok.encode(q, d)
        assert fe.ids == full["input_ids"] and fe.type_ids == full["token_type_ids"], (name, q, d, fe.tokens)
        te = tok([q], [d], return_offsets_mapping=True)
        assert [tuple(o) for o in te["offset_mapping"][0]] == fe.offsets, (name, q, d)
        try:
            only_second = encode(tok, q, d, truncation="only_second", max_length=max_length)
            assert len(only_second["input_ids"]) <= max_length
        except Exception:
            only_second = None
        pairs_out.append(
            {"query": q, "document": d, **main, "truncated": len(full["input_ids"]) > max_length, "only_second": only_second}
        )

    qs = [q for q, _ in PAIRS]
    ds = [d for _, d in PAIRS]
    batch = tok(qs, ds, truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt",
                return_token_type_ids=True)
    for i, p in enumerate(pairs_out):
        n = len(p["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == p["input_ids"]
        assert int(batch["attention_mask"][i].sum()) == n
    captured = {}
    hooks = []
    head = ref_model.classifier
    hooks.append(head.dense.register_forward_hook(lambda m, i, o: captured.__setitem__("head_dense", head_act(o))))
    for key, module in (extra_hooks or {}).items():
        hooks.append(module(ref_model).register_forward_hook(lambda m, i, o, key=key: captured.__setitem__(key, o)))
    with torch.no_grad():
        out = ref_model(**batch, output_hidden_states=True)
    for h in hooks:
        h.remove()
    assert len(out.hidden_states) == num_layers + 1
    assert out.hidden_states[0].shape[-1] == hidden
    with torch.no_grad():  # the head really is out_proj(head_dense(h[:, 0]))
        again = head.out_proj(captured["head_dense"])
        assert torch.allclose(again, out.logits, atol=1e-6, rtol=0)
        assert torch.allclose(captured["head_dense"], head_act(head.dense(out.hidden_states[-1][:, 0])), atol=0, rtol=0)
    logits = out.logits.float()

    ce = CrossEncoder(
        str(folder), max_length=max_length, device="cpu", local_files_only=True,
        model_kwargs={"dtype": torch.float32, "attn_implementation": "eager"},
    )
    assert ce.max_seq_length == max_length
    ce_default = CrossEncoder(str(folder), device="cpu", local_files_only=True)
    assert ce_default.max_seq_length == max_length, (ce_default.max_seq_length, max_length)
    act = ce.activation_fn
    activation = {torch.nn.Sigmoid: "sigmoid", torch.nn.Identity: "identity"}[type(act)]
    for i, (q, d) in enumerate(PAIRS):
        feats = ce.preprocess([[q, d]])
        assert feats["input_ids"][0].tolist() == pairs_out[i]["input_ids"], (name, i)
        if "token_type_ids" in feats:
            assert feats["token_type_ids"][0].tolist() == pairs_out[i]["token_type_ids"], (name, i)
    scores = ce.predict([[q, d] for q, d in PAIRS], batch_size=4, convert_to_tensor=True).float()
    scores = scores.reshape(len(PAIRS), -1)
    expected = act(logits)
    assert torch.allclose(scores, expected, atol=2e-6, rtol=0), (scores - expected).abs().max()

    tensors = {}
    for i, p in enumerate(pairs_out):
        n = len(p["input_ids"])
        for l in range(num_layers + 1):
            tensors[f"hidden.{i}.{l}"] = out.hidden_states[l][i, :n].float().contiguous().clone()
        for key in (extra_hooks or {}):
            tensors[f"{key}.{i}"] = captured[key][i, :n].float().contiguous().clone()
        tensors[f"head_dense.{i}"] = captured["head_dense"][i].float().contiguous().clone()
        p["logits"] = [float(x) for x in logits[i]]
        p["scores"] = [float(x) for x in scores[i]]
    save_file(tensors, folder / "reference.safetensors")

    ref = {
        "fixture": name,
        "model_type": model_type,
        "max_length": max_length,
        "num_labels": num_labels,
        "num_layers": num_layers,
        "hidden_size": hidden,
        "activation": activation,
        "pairs": pairs_out,
    }
    (folder / "reference.json").write_text(mf.fmt_json(ref) + "\n", encoding="utf-8")

    sizes = {f.name: f.stat().st_size for f in sorted(folder.iterdir())}
    n_trunc = sum(p["truncated"] for p in pairs_out)
    n_null = sum(p["only_second"] is None for p in pairs_out)
    print(
        f"{name}: {len(pairs_out)} pairs, max_length {max_length}, activation {activation}, truncated {n_trunc}, "
        f"only_second null {n_null}, folder {sum(sizes.values()) / 1024:.0f} KiB"
    )
    for fname, sz in sizes.items():
        print(f"    {fname:28s} {sz:>9d}")
    print("    weights:")
    for k, v in load_file(folder / "model.safetensors").items():
        print(f"      {k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}")


def fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def build_xlmr(raw_tok: Tokenizer) -> None:
    name, seed = "xlmr-tiny", 2001
    folder = OUT / name
    fresh(folder)
    max_length = 48
    hf_tok = XLMRobertaTokenizerFast(tokenizer_object=raw_tok, model_max_length=max_length)
    hf_tok.save_pretrained(folder)
    config = XLMRobertaConfig(
        vocab_size=raw_tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        max_position_embeddings=50,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,
        classifier_dropout=None,
    )
    torch.manual_seed(seed)
    model = XLMRobertaForSequenceClassification(config)
    rerandomise(model, seed)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    write_config(folder, {"model_type": "xlm-roberta", "pad_token_id": 1, "position_embedding_type": "absolute"})
    sd = load_file(folder / "model.safetensors")
    assert not any("position_ids" in k for k in sd), "position_ids buffer was saved"
    assert max_length == config.max_position_embeddings - config.pad_token_id - 1
    build_reference(name, folder, XLMRobertaForSequenceClassification, "xlm-roberta", torch.tanh, max_length)


def build_electra() -> None:
    name, seed = "electra-tiny", 2002
    folder = OUT / name
    fresh(folder)
    src = OUT / "bert-l2-h32"
    max_length = 48
    shutil.copy(src / "tokenizer.json", folder / "tokenizer.json")
    tcfg = json.loads((src / "tokenizer_config.json").read_text())
    tcfg["model_max_length"] = max_length
    (folder / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, sort_keys=True) + "\n")
    vocab_size = Tokenizer.from_file(str(src / "tokenizer.json")).get_vocab_size()
    config = ElectraConfig(
        vocab_size=vocab_size,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        num_labels=1,
        classifier_dropout=None,
        summary_type="first",
    )
    torch.manual_seed(seed)
    model = ElectraForSequenceClassification(config)
    rerandomise(model, seed)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    write_config(folder, {"model_type": "electra", "pad_token_id": 0, "position_embedding_type": "absolute"})
    sd = load_file(folder / "model.safetensors")
    assert not any("position_ids" in k for k in sd), "position_ids buffer was saved"
    assert "electra.embeddings_project.weight" in sd
    gelu = transformers.activations.get_activation("gelu")
    assert isinstance(model.classifier.activation, type(gelu))
    build_reference(
        name, folder, ElectraForSequenceClassification, "electra", gelu, max_length,
        extra_hooks={"embeddings": lambda m: m.electra.embeddings},
    )


def main() -> int:
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    raw_tok = build_xlmr_tokenizer()
    print(f"xlmr tokenizer: vocab size {raw_tok.get_vocab_size()}")
    build_xlmr(raw_tok)
    build_electra()
    total = sum(f.stat().st_size for f in (REPO / "tests" / "data").rglob("*") if f.is_file())
    print(f"tests/data total: {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
