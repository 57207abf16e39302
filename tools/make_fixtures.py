"""Rerun from the repo root: ~/venv-crossenc/bin/python tools/make_fixtures.py   (writes tests/data/fixtures/)

Builds tiny, randomly initialised BERT cross-encoder fixtures plus PyTorch reference outputs
for the Rust engine's tests. Everything is built locally (no Hugging Face hub access):

* a small WordPiece tokenizer (1000 tokens) is trained on the multilingual corpus below (the
  `tokenizers` library's BertNormalizer/BertPreTokenizer/WordPiece/TemplateProcessing/decoder,
  with a deterministic re-implementation of its WordPiece trainer, see learn_wordpiece_vocab)
  and wrapped as `transformers.BertTokenizerFast`;
* each fixture folder gets config.json + model.safetensors (save_pretrained, or a hand-written
  safetensors for `bert-noprefix`), the tokenizer files (save_pretrained), reference.json and
  reference.safetensors (see tools/README.md for the schema).

Deterministic: fixed seeds, CPU only, eager attention, float32 reference computation.
Requires the venv with torch, transformers, sentence-transformers, tokenizers, safetensors.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors  # noqa: E402
from tokenizers.models import WordPiece  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertTokenizerFast  # noqa: E402
from sentence_transformers import CrossEncoder  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "fixtures"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, so pad_token_id == 0
VOCAB_SIZE = 1000

# --------------------------------------------------------------------------------------------
# Tokenizer training corpus (inline, multilingual).
# --------------------------------------------------------------------------------------------
CORPUS = [
    # English
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? Paris is the capital and the largest city of France.",
    "A cross-encoder reads the query and the document together and outputs a relevance score.",
    "Search engines rank documents by relevance to the user's query.",
    "How do I reset my password? Click on the forgot password link on the login page.",
    "The weather today is sunny with a light breeze and a few clouds in the afternoon.",
    "Machine learning models are trained on large datasets to make predictions.",
    "The museum is open from nine in the morning until six in the evening, every day except Monday.",
    "She bought three apples, two bananas and a bottle of fresh orange juice at the market.",
    "Transformers use self-attention to build contextual representations of every token.",
    "The train to London leaves at 10:45 from platform 3; tickets cost 25 pounds.",
    "Neural networks learn weights and biases through gradient descent and backpropagation.",
    "Please send the report by Friday, including the numbers for the second quarter.",
    "The library has thousands of books about history, science, art and music.",
    "A naive approach often works surprisingly well for simple problems.",
    "The cafe on the corner serves excellent coffee and fresh croissants every morning.",
    "Rust is a systems programming language focused on safety, speed and concurrency.",
    "Python is widely used for data science, scripting and machine learning research.",
    "The patient was given medicine for the fever and told to rest for a week.",
    "Climate change affects weather patterns, sea levels and ecosystems around the world.",
    "Our team won the football match two to one after a goal in the last minute.",
    "He read the newspaper while drinking tea and listening to the radio.",
    "To install the package, run the command and wait until the download has finished.",
    "The mountains were covered with snow, and the river below was frozen.",
    "Information retrieval systems return a ranked list of passages for each question.",
    "Is this answer relevant to the question or not? The model decides.",
    # Italian
    "Il gatto dorme sul divano mentre la pioggia cade sulla città.",
    "Qual è la capitale d'Italia? Roma è la capitale e la città più grande d'Italia.",
    "La biblioteca è vicina alla stazione e apre alle nove di mattina.",
    "Mi piace molto la pizza con il pomodoro, la mozzarella e il basilico.",
    "Perché il cielo è blu? La luce del sole viene diffusa dall'atmosfera.",
    "Domani andiamo al mare con gli amici e mangiamo il gelato.",
    # German
    "Der Ärger über das schlechte Wetter war groß, aber wir sind trotzdem gewandert.",
    "Wie spät ist es? Es ist halb neun, und der Zug fährt um neun Uhr ab.",
    "Die Straße führt über die Brücke zum Bahnhof und weiter in die Stadt.",
    "Ich möchte einen Kaffee und ein Stück Kuchen, bitte.",
    "Die Bücher liegen auf dem Tisch neben dem Fenster in der Küche.",
    "Grüße aus München! Das Bier und die Brezeln sind hervorragend.",
    # French
    "Le café est très chaud, attention à ne pas vous brûler.",
    "Où se trouve la bibliothèque ? Elle est à côté de la gare.",
    "Une approche naïve fonctionne souvent très bien pour les problèmes simples.",
    "Nous étions à l'hôtel pendant l'été, près de la plage et de la forêt.",
    "Les élèves préparent leurs examens à la fin de l'année scolaire.",
    "Quelle est la capitale de la France ? C'est Paris, bien sûr.",
    # Spanish
    "¿Dónde está la biblioteca? La biblioteca está al lado de la estación.",
    "El niño come una manzana y bebe un vaso de leche por la mañana.",
    "La canción más famosa del año sonó en todas las radios de España.",
    "¡Qué día tan bonito! Vamos a caminar por el parque y la montaña.",
    "Mañana por la tarde tenemos una reunión con el equipo de investigación.",
    "El año pasado viajamos a México y visitamos las pirámides.",
    # Chinese / Japanese
    "东京是日本的首都。北京是中国的首都。",
    "我喜欢学习机器学习和自然语言处理。",
    "今天天气很好，我们去公园散步吧。",
    "这个模型可以判断问题和文档是否相关。",
    "東京は日本の首都です。私は毎朝コーヒーを飲みます。",
    "機械学習の研究はとても面白いです。",
    "こんにちは、お元気ですか？ありがとうございます。",
    "カタカナとひらがなと漢字を使って日本語を書きます。",
    # Emoji and symbols
    "I love pizza 🍕 and coffee ☕ in the morning 😀 👍",
    "Great job 🎉 the results look good 😀 🚀",
    "Weather: sunny ☀️ then rain 🌧️ — take an umbrella ☂",
    "Prices: 3.14 euros, 2,000 dollars, 50% off, #1 in sales, e-mail: info@example.com",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14 42",
]


def learn_wordpiece_vocab(normalizer, pre_tokenizer, corpus, vocab_size):
    """Deterministic WordPiece vocabulary learning (same BPE-style procedure as the `tokenizers`
    WordPieceTrainer: start from the character alphabet, with `##` marking word-internal pieces,
    and repeatedly merge the most frequent adjacent pair).

    `tokenizers.trainers.WordPieceTrainer` breaks ties between equally frequent pairs through a
    randomly seeded Rust HashMap, so its vocab differs from run to run (~40 of 1000 tokens); here
    ties are broken by the pair's strings, which makes the committed fixtures reproducible.
    """
    word_counts = {}
    for line in corpus:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            word_counts[word] = word_counts.get(word, 0) + 1
    words = [([w[0]] + ["##" + c for c in w[1:]], n) for w, n in sorted(word_counts.items())]
    vocab = list(SPECIAL_TOKENS)
    seen = set(vocab)
    for sym in sorted({s for syms, _ in words for s in syms}):
        vocab.append(sym)
        seen.add(sym)
    while len(vocab) < vocab_size:
        pair_counts = {}
        for syms, n in words:
            for a, b in zip(syms, syms[1:]):
                pair_counts[(a, b)] = pair_counts.get((a, b), 0) + n
        if not pair_counts:
            break
        (a, b), _ = min(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        merged = a + b[2:]
        for syms, _ in words:
            i = 0
            while i < len(syms) - 1:
                if syms[i] == a and syms[i + 1] == b:
                    syms[i : i + 2] = [merged]
                i += 1
        if merged not in seen:
            vocab.append(merged)
            seen.add(merged)
    return {tok: i for i, tok in enumerate(vocab)}


def train_tokenizer() -> Tokenizer:
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = learn_wordpiece_vocab(normalizer, pre_tokenizer, CORPUS, VOCAB_SIZE)
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.add_special_tokens(SPECIAL_TOKENS)
    vocab = tok.get_vocab()
    for i, t in enumerate(SPECIAL_TOKENS):
        assert vocab[t] == i, (t, vocab[t])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


# --------------------------------------------------------------------------------------------
# Pair inputs (identical for every fixture).
# --------------------------------------------------------------------------------------------
LONG_DOC = (
    "Information retrieval is the science of searching for information in documents, searching for "
    "documents themselves, and searching for metadata that describes data. A modern search engine first "
    "retrieves a few hundred candidate passages with a fast method such as a bag of words model or a dense "
    "embedding index, and then a slower but more accurate cross-encoder reads every query and passage "
    "together to produce a relevance score. Because the cross-encoder attends over both texts at the same "
    "time, it can model fine interactions between the words of the question and the words of the answer, "
    "but it must be run once for every candidate, which is expensive. Long passages are truncated to the "
    "maximum sequence length of the model, so the end of a very long document is simply never seen by the "
    "network. Engineers therefore split long documents into smaller windows, score every window "
    "separately, and keep the best score, or they accept the truncation when the beginning of the document "
    "usually contains the most important information for the user."
)
LONG_QUERY = (
    "I am looking for a detailed explanation of how a cross-encoder reranker works inside a search "
    "engine, including how the query and the document are tokenized together, how the special tokens "
    "and segment ids are added, how the attention mask handles padding, what happens when the input is "
    "longer than the maximum length of the model, and how the final relevance score is computed from "
    "the classification head, the pooler and the activation function"
)
MEDIUM_QUERY = (
    "how does the museum in the city handle tickets for students and children on the weekend "
    "when the weather is bad and the train is late"
)
MEDIUM_DOC = (
    "The city museum is open every day except Monday. Students and children pay half price, and on the "
    "weekend there is a special family ticket. When the weather is bad the museum is often crowded, so "
    "please buy your tickets online. If your train is late, show the train ticket at the desk and you "
    "may enter later in the afternoon without paying again. The cafe on the ground floor serves coffee, "
    "tea, cake and fresh orange juice until six in the evening."
)

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and the largest city of France."),
    ("Café au lait for a naïve user", "Der Ärger über das Wetter; l'été à Paris était très chaud. Über Straße"),
    ("HOW DO I RESET MY PASSWORD?", "Click on the FORGOT PASSWORD link on the Login Page."),
    ("I love pizza 🍕🍕 and coffee ☕", "Great job 🎉 👍🏽 family 👨‍👩‍👧 rocket 🚀"),
    ("东京是日本的首都吗？", "是的，東京は日本の首都です。北京是中国的首都。"),
    ("what's up?!... (really)", "e-mail: info@example.com; see [1], {x} -- 'single' \"double\" ~~~ $%&*"),
    ("", "A document without any query."),
    ("A query without any document", ""),
    ("", ""),
    ("Why do search engines truncate long documents?", LONG_DOC),
    (LONG_QUERY, "Short answer: the model reads the first tokens only."),
    (MEDIUM_QUERY, MEDIUM_DOC),
    ("   \t\n  ", "      "),
    ("foo\u0000bar\u0007 baz\u001b", "zero\u200dwidth joiner and soft\u00adhyphen plus tab\there"),
    ("How much is 3.14 * 2,000?", "The answer is 6280 (six thousand two hundred eighty), or 6.28e3; call 555-0199 on 2024-01-31."),
    ("¿Dónde está la biblioteca?", "La bibliothèque est à côté de la gare. La biblioteca è vicina alla stazione."),
    ("Qual è la capitale d'Italia?", "안녕하세요 Roma è la capitale; ሰላም Ελλάδα Москва"),
]

# --------------------------------------------------------------------------------------------
# Fixture definitions.
# --------------------------------------------------------------------------------------------
BASE = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    num_labels=1,
    hidden_act="gelu",
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
)
FIXTURES = [
    dict(name="bert-l2-h32", seed=1001, model_max_length=48, cfg={}),
    dict(
        name="bert-3labels",
        seed=1002,
        model_max_length=48,
        cfg=dict(
            num_labels=3,
            hidden_act="relu",
            id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
            label2id={"contradiction": 0, "entailment": 1, "neutral": 2},
        ),
    ),
    dict(
        name="tinybert-h128",
        seed=1003,
        model_max_length=512,
        cfg=dict(
            hidden_size=128,
            num_attention_heads=2,
            intermediate_size=512,
            hidden_act="gelu_new",
            max_position_embeddings=40,
            layer_norm_eps=1e-5,
        ),
        extra_config={"sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"},
    ),
    dict(
        name="bert-noprefix",
        seed=1004,
        model_max_length=48,
        cfg={},
        extra_config={"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"}},
        noprefix=True,
    ),
    dict(name="bert-f16", seed=1005, model_max_length=48, cfg={}, dtype=torch.float16),
    dict(name="bert-bf16", seed=1006, model_max_length=48, cfg={}, dtype=torch.bfloat16),
]


def rerandomise(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter a non-trivial value (no zero biases, no unit LayerNorm gammas).

    Linear weights ~ N(0, s) with s = 0.2 * sqrt(32 / fan_in) (0.2 at fan_in 32, 0.1 at 128,
    0.05 at 512) so activations stay O(1) and tanh/softmax do not saturate; embeddings N(0, 0.5);
    biases N(0, 0.1); LayerNorm weight 1 + N(0, 0.1), bias N(0, 0.1).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "LayerNorm.weight" in name:
                new = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
            elif "LayerNorm.bias" in name:
                new = 0.1 * torch.randn(p.shape, generator=g)
            elif "embeddings" in name:
                new = 0.5 * torch.randn(p.shape, generator=g)
            elif name.endswith(".bias"):
                new = 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith(".weight") and p.dim() == 2:
                std = 0.2 * (32.0 / p.shape[1]) ** 0.5
                new = std * torch.randn(p.shape, generator=g)
            else:
                raise RuntimeError(f"unexpected parameter {name}")
            p.copy_(new.to(p.dtype))


def fmt_json(obj, indent=0) -> str:
    """Readable JSON: dicts one key per line, lists of scalars inline, lists of dicts one per block."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {fmt_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, list) and any(isinstance(x, (dict, list)) for x in obj):
        return "[\n" + ",\n".join(pad + fmt_json(x, indent + 1) for x in obj) + "\n" + end + "]"
    return json.dumps(obj, ensure_ascii=False)


def encode(tokenizer, q, d, **kw):
    # Encode as a batch of one: the single-pair call `tokenizer(q, "")` silently drops an empty
    # second segment (`if text_pair` in transformers), giving `[CLS] q [SEP]`, whereas the batch
    # path (used by sentence-transformers and by the model forward below) and tokenizer.json itself
    # give `[CLS] q [SEP] [SEP]`.
    enc = tokenizer([q], [d], **kw)
    return {"input_ids": list(enc["input_ids"][0]), "token_type_ids": list(enc["token_type_ids"][0])}


def build_fixture(spec: dict, raw_tok: Tokenizer) -> None:
    name = spec["name"]
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    # ---- tokenizer ------------------------------------------------------------------------
    hf_tok = BertTokenizerFast(
        tokenizer_object=raw_tok,
        do_lower_case=True,
        strip_accents=True,
        tokenize_chinese_chars=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=spec["model_max_length"],
    )
    hf_tok.save_pretrained(folder)

    # ---- model ----------------------------------------------------------------------------
    cfg_kwargs = dict(BASE)
    cfg_kwargs.update(spec["cfg"])
    config = BertConfig(
        vocab_size=raw_tok.get_vocab_size(),
        pad_token_id=0,
        position_embedding_type="absolute",
        classifier_dropout=None,
        **cfg_kwargs,
    )
    torch.manual_seed(spec["seed"])
    model = BertForSequenceClassification(config)
    model.config._attn_implementation = "eager"
    rerandomise(model, spec["seed"])
    model.eval()
    dtype = spec.get("dtype", torch.float32)
    model = model.to(dtype)
    model.save_pretrained(folder, safe_serialization=True)

    # config.json: make sure the keys the Rust side reads are present, plus any legacy extras.
    cfg_path = folder / "config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_json["model_type"] = "bert"
    cfg_json["position_embedding_type"] = "absolute"
    cfg_json["pad_token_id"] = 0
    cfg_json.update(spec.get("extra_config", {}))
    cfg_path.write_text(json.dumps(cfg_json, indent=2, sort_keys=True) + "\n")

    if spec.get("noprefix"):
        st_path = folder / "model.safetensors"
        sd = load_file(st_path)
        renamed = {}
        for k, v in sd.items():
            nk = k[len("bert."):] if k.startswith("bert.") else k
            renamed[nk] = v.contiguous()
        assert "classifier.weight" in renamed and "embeddings.word_embeddings.weight" in renamed
        save_file(renamed, st_path, metadata={"format": "pt"})

    sd_keys = load_file(folder / "model.safetensors")
    assert not any("position_ids" in k for k in sd_keys), "position_ids buffer was saved"
    for k, v in sd_keys.items():
        assert v.dtype == dtype, (k, v.dtype)

    # ---- reference (reload the saved folder in float32, exactly what the Rust side sees) ---
    ref_model = BertForSequenceClassification.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager"
    )
    ref_model.eval()
    for (k1, p1), (k2, p2) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        assert k1 == k2 and torch.equal(p1.float(), p2), k1  # reload (incl. no-prefix) is lossless
    tok = AutoTokenizer.from_pretrained(folder)
    file_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))

    max_length = min(tok.model_max_length, ref_model.config.max_position_embeddings)
    num_labels = ref_model.config.num_labels
    num_layers = ref_model.config.num_hidden_layers
    hidden = ref_model.config.hidden_size

    pairs_out = []
    for q, d in PAIRS:
        main = encode(tok, q, d, truncation="longest_first", max_length=max_length)
        full = encode(tok, q, d, truncation=False)
        # the tokenizer.json alone (what the Rust tokenizers crate loads) must agree with transformers
        fe = file_tok.encode(q, d)
        assert fe.ids == full["input_ids"] and fe.type_ids == full["token_type_ids"], (name, q, d)
        try:
            only_second = encode(tok, q, d, truncation="only_second", max_length=max_length)
            assert len(only_second["input_ids"]) <= max_length
        except Exception:
            only_second = None
        pairs_out.append(
            {
                "query": q,
                "document": d,
                **main,
                "truncated": len(full["input_ids"]) > max_length,
                "only_second": only_second,
            }
        )

    qs = [q for q, _ in PAIRS]
    ds = [d for _, d in PAIRS]
    batch = tok(qs, ds, truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt")
    for i, p in enumerate(pairs_out):
        n = len(p["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == p["input_ids"]
        assert int(batch["attention_mask"][i].sum()) == n
    with torch.no_grad():
        out = ref_model(**batch, output_hidden_states=True)
        bert_out = ref_model.bert(**batch)
    assert torch.equal(bert_out.last_hidden_state, out.hidden_states[-1])
    assert len(out.hidden_states) == num_layers + 1
    logits = out.logits.float()

    # ---- sentence-transformers CrossEncoder with its default activation ------------------
    ce = CrossEncoder(
        str(folder), max_length=max_length, device="cpu", local_files_only=True,
        model_kwargs={"dtype": torch.float32, "attn_implementation": "eager"},
    )
    assert ce.max_seq_length == max_length
    ce_default = CrossEncoder(str(folder), device="cpu", local_files_only=True)
    assert ce_default.max_seq_length == max_length, (ce_default.max_seq_length, max_length)
    act = ce.activation_fn
    if isinstance(act, torch.nn.Sigmoid):
        activation = "sigmoid"
    elif isinstance(act, torch.nn.Identity):
        activation = "identity"
    else:
        raise RuntimeError(f"unexpected activation {act!r}")
    for i, (q, d) in enumerate(PAIRS):
        feats = ce.preprocess([[q, d]])
        assert feats["input_ids"][0].tolist() == pairs_out[i]["input_ids"], (name, i)
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
        tensors[f"pooled.{i}"] = bert_out.pooler_output[i].float().contiguous().clone()
        p["logits"] = [float(x) for x in logits[i]]
        p["scores"] = [float(x) for x in scores[i]]
    save_file(tensors, folder / "reference.safetensors")

    ref = {
        "fixture": name,
        "max_length": max_length,
        "num_labels": num_labels,
        "num_layers": num_layers,
        "hidden_size": hidden,
        "activation": activation,
        "pairs": pairs_out,
    }
    (folder / "reference.json").write_text(fmt_json(ref) + "\n", encoding="utf-8")

    sizes = {f.name: f.stat().st_size for f in sorted(folder.iterdir())}
    total = sum(sizes.values())
    n_trunc = sum(p["truncated"] for p in pairs_out)
    n_null = sum(p["only_second"] is None for p in pairs_out)
    print(
        f"{name}: {len(pairs_out)} pairs, max_length {max_length}, labels {num_labels}, activation {activation}, "
        f"dtype {str(dtype).replace('torch.', '')}, truncated {n_trunc}, only_second null {n_null}, "
        f"folder {total / 1024:.0f} KiB"
    )
    for fname, sz in sizes.items():
        print(f"    {fname:28s} {sz:>9d}")


def main() -> int:
    raw_tok = train_tokenizer()
    print(f"tokenizer: vocab size {raw_tok.get_vocab_size()} (transformers {transformers.__version__}, torch {torch.__version__})")
    OUT.mkdir(parents=True, exist_ok=True)
    for spec in FIXTURES:
        build_fixture(spec, raw_tok)
    total = sum(f.stat().st_size for f in (REPO / "tests" / "data").rglob("*") if f.is_file())
    print(f"tests/data total: {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
