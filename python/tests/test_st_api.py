"""The drop-in: every call recorded from sentence-transformers' CrossEncoder
(tests/data/python/st_api.json, tools/record_st_api.py) made again with
crossenc.CrossEncoder: same result kind, type, shape and values (within TOL),
same errors."""

import numpy as np
import pytest

from conftest import DATA, TOL, load_json

RECORD = load_json(DATA / "python" / "st_api.json")
CASES = RECORD["cases"]


def case_id(case):
    kw = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    return f"{case['model']}-{case['call']}-{CASES.index(case)}" + (f"-{kw}" if kw else "")


def run(model, case):
    args = list(case["args"])
    call = case["call"]
    if case.get("tuples"):
        first = args[0]
        args[0] = tuple(first) if first and isinstance(first[0], str) else [tuple(p) for p in first]
    if call == "predict_ndarray":
        args[0] = np.array(args[0], dtype=object)
        call = "predict"
    return getattr(model, call)(*args, **case["kwargs"])


def check_rank(got, hits):
    assert isinstance(got, list) and len(got) == len(hits), (got, hits)
    want_scores = [h["score"] for h in hits]
    for i, (g, w) in enumerate(zip(got, hits)):
        assert set(g) == set(w), f"hit {i}: keys {sorted(g)} != {sorted(w)}"
        assert type(g["corpus_id"]) is int and type(g["score"]) is float
        assert abs(g["score"] - w["score"]) <= TOL, f"hit {i}: {g} vs {w}"
        # PyTorch pads each batch, which moves a score by an ulp or two, so
        # equal documents need not score equal there: where sentence-
        # transformers' neighbours are within TOL, only the scores must agree.
        near_tie = any(abs(w["score"] - s) <= TOL for j, s in enumerate(want_scores) if j != i)
        if not near_tie:
            assert g["corpus_id"] == w["corpus_id"], f"hit {i}: {g} vs {w}"
        if "text" in w:
            assert g["text"] is not None
    # Ours: best first, equal scores in input order.
    for a, b in zip(got, got[1:]):
        assert a["score"] > b["score"] or (a["score"] == b["score"] and a["corpus_id"] < b["corpus_id"])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_as_sentence_transformers(case, models):
    model = models(case["model"])
    want = case["result"]
    if want["kind"] == "error":
        with pytest.raises(Exception) as err:
            run(model, case)
        assert type(err.value).__name__ == want["type"]
        assert str(err.value) == want["message"]
        return
    got = run(model, case)
    kind = want["kind"]
    if kind == "ndarray":
        assert isinstance(got, np.ndarray), type(got)
        assert list(got.shape) == want["shape"]
        # sentence-transformers returns float64 for no input (np.array([])),
        # float32 otherwise; crossenc is float32 always.
        assert got.dtype == np.float32
        if got.size:
            diff = np.abs(got - np.array(want["values"], dtype=np.float32)).max()
            assert diff <= TOL, f"max |crossenc - sentence-transformers| = {diff:.3e}"
    elif kind == "scalar":
        assert isinstance(got, np.float32) and np.ndim(got) == 0, type(got)
        assert abs(float(got) - want["value"]) <= TOL
    elif kind == "list":
        assert isinstance(got, list) and len(got) == want["len"]
        for g, w in zip(got, want["values"]):
            assert list(np.shape(g)) == want["item_shape"]
            assert np.abs(np.asarray(g) - np.asarray(w, dtype=np.float32)).max() <= TOL
    elif kind == "rank":
        hits = want["hits"]
        if hits and "text" in hits[0]:
            docs = case["args"][1]
            for g in got:
                assert g["text"] == docs[g["corpus_id"]]
        check_rank(got, hits)
    else:
        raise AssertionError(f"unknown kind {kind}")


def test_record_covers_every_shape():
    kinds = {(c["model"], c["result"]["kind"]) for c in CASES}
    for k in [("bert-l2-h32", "scalar"), ("bert-3labels", "ndarray"), ("bert-l2-h32", "rank"),
              ("bert-3labels", "error"), ("real-ce", "rank"), ("bert-l2-h32", "list")]:
        assert k in kinds, k
