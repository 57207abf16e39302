"""Logits against PyTorch's on the fixtures (reference.json) and on long
documents in windows (tests/data/long_docs.json, fixtures and real weights),
at the Rust tests' tolerance; int8 and bf16 near f32 on real weights."""

import numpy as np
import pytest

from conftest import DATA, FIXTURES, TOL, load_json, real_ce_dir

PARITY_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if (p / "reference.json").is_file()
                         and "pairs" in load_json(p / "reference.json"))


@pytest.mark.parametrize("name", PARITY_FIXTURES)
def test_fixture_logits_match_pytorch(name, models):
    ref = load_json(FIXTURES / name / "reference.json")
    model = models(name, max_length=ref["max_length"])
    pairs = [(p["query"], p["document"]) for p in ref["pairs"]]
    logits = model.predict(pairs, activation_fn="identity")
    want = np.array([p["logits"] for p in ref["pairs"]], dtype=np.float32)
    got = logits.reshape(len(pairs), -1)
    diff = np.abs(got - want).max()
    print(f"{name}: {len(pairs)} pairs, max |logit - PyTorch| = {diff:.3e}")
    assert diff <= TOL
    # And the model's own activation, as the reference applied it.
    scores = np.array([p["scores"] for p in ref["pairs"]], dtype=np.float32)
    assert np.abs(model.predict(pairs).reshape(len(pairs), -1) - scores).max() <= TOL


def test_parity_fixtures_found():
    assert len(PARITY_FIXTURES) >= 4, PARITY_FIXTURES


LONG = load_json(DATA / "long_docs.json")["models"]


@pytest.mark.parametrize("entry", LONG, ids=[m["name"] for m in LONG])
@pytest.mark.parametrize("mode", ["max", "mean"])
def test_long_documents_match_pytorch(entry, mode):
    from crossenc import CrossEncoder

    kind, name = entry["path"].split(":")
    path = real_ce_dir() if kind == "real" else FIXTURES / name
    worst = 0.0
    for case in entry["cases"]:
        stride = None if case["stride"] is None else int(case["stride"])
        model = CrossEncoder(str(path), max_length=entry["max_length"], long_docs=mode,
                             window_stride=stride, activation_fn="identity", threads=2)
        got = model.predict([(case["query"], case["document"])])
        want = np.array(case[mode], dtype=np.float32).reshape(np.shape(got))
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"{entry['name']} {mode}: max |logit - PyTorch| = {worst:.3e}")
    assert worst <= TOL


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_reduced_precision_keeps_the_ranking(precision, models):
    corpus = load_json(DATA / "precision" / "corpus.json")
    real_ce_dir()
    docs = corpus["documents"][:200]
    query = corpus["rank_query"]
    f32 = models("real-ce").predict([(query, d) for d in docs], activation_fn="identity")
    low = models("real-ce", precision=precision)
    assert low.precision == precision
    got = low.predict([(query, d) for d in docs], activation_fn="identity")
    diff = np.abs(got - f32).max()
    top10 = len(set(np.argsort(-f32, kind="stable")[:10]) & set(np.argsort(-got, kind="stable")[:10]))
    rho = np.corrcoef(np.argsort(np.argsort(f32)), np.argsort(np.argsort(got)))[0, 1]
    print(f"{precision} ({low.kernel_path}): max |logit - f32| = {diff:.3e}, "
          f"Spearman {rho:.5f}, top-10 kept {top10}/10")
    # The engine's own targets (tests/precision.rs): Spearman >= 0.995, top-10 kept.
    assert rho >= 0.995 and top10 >= 9 and diff < 0.05
