"""Bad input gives a Python exception with the engine's message, never a crash;
the model survives pickling and fork."""

import os
import pickle
import sys

import numpy as np
import pytest

from conftest import FIXTURES

import crossenc
from crossenc import CrossEncoder

FIXTURE = str(FIXTURES / "bert-l2-h32")


@pytest.mark.parametrize("kwargs,exc,text", [
    (dict(device="cuda"), ValueError, "CPU only"),
    (dict(precision="int4"), ValueError, "precision='int4' is not one of"),
    (dict(long_docs="all"), ValueError, "long_docs='all'"),
    (dict(threads=0), ValueError, "threads=0"),
    (dict(max_length=100000), ValueError, "max_position_embeddings"),
    (dict(max_length=0), ValueError, "max_length=0"),
    (dict(activation_fn="relu"), ValueError, "activation_fn='relu'"),
    (dict(activation_fn=3), TypeError, "activation_fn must be"),
])
def test_bad_options(kwargs, exc, text):
    with pytest.raises(exc) as err:
        CrossEncoder(FIXTURE, **kwargs)
    assert text in str(err.value), str(err.value)


def test_missing_and_broken_models(tmp_path):
    with pytest.raises(OSError, match="not found"):
        CrossEncoder(str(tmp_path / "nothing-here"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
        (broken / f).write_bytes((FIXTURES / "bert-l2-h32" / f).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="model.safetensors"):
        CrossEncoder(str(broken))
    with pytest.raises(TypeError):
        CrossEncoder(None)


def test_hub_id_offline_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")


def test_bad_inputs(models):
    model = models("bert-l2-h32")
    with pytest.raises(TypeError, match=r"sentences\[1\] is \(str, int\)"):
        model.predict([("q", "d"), ("q", 1)])
    with pytest.raises(TypeError, match=r"sentences\[0\] is a list of 3 items"):
        model.predict([["q", "d", "e"]])
    with pytest.raises(TypeError, match="a pair"):
        model.predict("just one string")
    with pytest.raises(TypeError, match="documents must be a list of str"):
        model.rank("q", "one string")
    with pytest.raises(ValueError, match="softmax over a single label"):
        model.predict([("q", "d")], activation_fn="softmax")
    with pytest.raises(ValueError, match="batch_size"):
        model.predict([("q", "d")], batch_size=-1)


def test_odd_text_scores(models):
    model = models("bert-l2-h32")
    odd = [("", ""), ("\x00\x07", "\ud7ff" * 3), ("q" * 100_000, "d"), ("🎉" * 50, "\t\n ")]
    scores = model.predict(odd)
    assert scores.shape == (4,) and np.isfinite(scores).all()
    # A lone surrogate cannot be UTF-8: a clear error, not a crash.
    with pytest.raises(Exception) as err:
        model.predict([("\udc80", "d")])
    assert "surrogate" in str(err.value) or "utf-8" in str(err.value).lower()


def test_extras(models):
    model = models("bert-l2-h32")
    pairs = [("q", "a"), ("q", "b"), ("q", "c")]
    s = model.predict(pairs)
    assert [h["corpus_id"] for h in model.rank("q", ["a", "b", "c"], threshold=float(s[1]))] == \
        [i for i in np.argsort(-s, kind="stable") if s[i] >= s[1]]
    # A callable activation gets the logits.
    logits = model.predict(pairs, activation_fn="identity")
    doubled = model.predict(pairs, activation_fn=lambda x: 2 * x)
    assert np.array_equal(doubled, 2 * logits)
    # The progress bar does not change a score (the engine is batch-invariant).
    assert np.array_equal(model.predict(pairs * 200, show_progress_bar=True), np.tile(s, 200))
    assert model.num_labels == 1 and model.max_length == 48 and model.precision == "f32"
    assert crossenc.__version__ and "CrossEncoder(" in repr(model)


def test_pickle_loads_once_per_process(models):
    model = CrossEncoder(FIXTURE, threads=1)
    a = pickle.loads(pickle.dumps(model))
    b = pickle.loads(pickle.dumps(model))
    assert a is b, "a worker unpickling the same model twice loads it twice"
    assert np.array_equal(a.predict([("q", "d")]), model.predict([("q", "d")]))
    with pytest.raises(TypeError, match="callable activation_fn"):
        pickle.dumps(CrossEncoder(FIXTURE, activation_fn=lambda x: x))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
# Python 3.12+ warns that forking a threaded process may deadlock the child:
# what this test checks does not happen.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_after_use():
    model = CrossEncoder(FIXTURE, threads=2)
    want = model.predict([("q", "d")] * 50)
    pid = os.fork()
    if pid == 0:  # the child: the parent's compute threads do not exist here
        try:
            ok = np.array_equal(model.predict([("q", "d")] * 50), want)
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_plain_progress_without_tqdm(models, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: the plain line
    model = models("bert-l2-h32")
    model.predict([("q", "d")] * 300, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "crossenc: 256/300 pairs" in err and "300/300 pairs" in err, err


def test_no_torch_imported():
    import subprocess

    code = ("import sys, crossenc; m = crossenc.CrossEncoder(sys.argv[1]); m.predict(('q', 'd')); "
            "m.rank('q', ['a']); print(sorted(k for k in ('torch', 'transformers') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, FIXTURE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
