"""crossenc: cross-encoder reranking on the CPU, without PyTorch.

A drop-in for ``sentence_transformers.CrossEncoder``: the same ``predict`` and
``rank`` calls, the same shapes and the same scores (PyTorch's within 1e-4 in
float32), from a Rust engine of a few MB. numpy is the only dependency.

    from crossenc import CrossEncoder          # was: from sentence_transformers import CrossEncoder
    model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
    scores = model.predict([("what is rust?", "Rust is a language."), ("what is rust?", "Iron oxide.")])
    hits = model.rank("what is rust?", ["Rust is a language.", "Iron oxide."], top_k=1)

Beyond sentence-transformers: ``precision="int8"`` or ``"bf16"`` (faster, rankings
kept), ``long_docs="max"`` (documents longer than the model reads are scored in
overlapping windows, best window wins), ``threads=N``, and ``rank(..., threshold=x)``.

A model is safe to share between threads (``predict`` releases the GIL) and
pickles by reference to its folder: a Ray actor, Spark task or Dask worker that
unpickles it loads the folder once per process and reuses it.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._crossenc import Model as _Model
from ._crossenc import __version__

__all__ = ["CrossEncoder", "__version__"]

# Pairs per call into the engine. Scores do not depend on how pairs are
# grouped (the engine is batch-invariant), so long inputs are cut into chunks:
# a progress bar moves, and Ctrl-C is honoured, between chunks. Large enough
# that the engine's own batching and pipelining are unaffected.
_CHUNK = 2048
_CHUNK_WITH_PROGRESS = 256

_NAMED_ACTIVATIONS = ("sigmoid", "identity", "softmax")


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _activation(fn: Any, what: str) -> Union[None, str, Callable]:
    """None, one of the named activations, or a callable applied to numpy logits.

    torch modules (torch.nn.Sigmoid(), Identity(), Softmax(dim=-1 or 1)) and the
    dotted names sentence-transformers saves ("torch.nn.modules.activation.Sigmoid")
    map to the engine's own activation, so no torch is needed to run them.
    """
    if fn is None:
        return None
    if isinstance(fn, str):
        name = fn.rsplit(".", 1)[-1].lower()
        if name in _NAMED_ACTIVATIONS:
            return name
        raise ValueError(
            f"{what}={fn!r} is not one of 'sigmoid', 'identity', 'softmax' (or a callable)"
        )
    cls = type(fn)
    if cls.__module__.startswith("torch.") and cls.__name__.lower() in _NAMED_ACTIVATIONS:
        if cls.__name__ == "Softmax" and getattr(fn, "dim", -1) not in (-1, 1, None):
            raise ValueError(f"{what}: Softmax(dim={fn.dim}) does not act over a pair's labels")
        return cls.__name__.lower()
    if callable(fn):
        return fn
    raise TypeError(f"{what} must be None, a name or a callable, not {cls.__name__}")


def _check_device(device: Any) -> None:
    if device is None or str(device) == "cpu":
        return
    raise ValueError(
        f"device={device!r}: crossenc computes on the CPU only; pass None or 'cpu'"
    )


def _is_singular(inputs: Any) -> bool:
    """sentence-transformers' rule: a list/tuple whose first item is not a list/tuple is one pair."""
    if isinstance(inputs, (list, tuple)):
        return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
        return inputs.size > 0 and inputs.ndim < 2
    return True


def _split_pairs(pairs: Sequence[Any]) -> Tuple[List[str], List[str]]:
    queries: List[str] = []
    documents: List[str] = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, np.ndarray):
            pair = pair.tolist()
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(
                f"sentences[{i}] is {_describe(pair)}: each input is a pair (query, document) of str"
            )
        q, d = pair
        if not isinstance(q, str) or not isinstance(d, str):
            raise TypeError(
                f"sentences[{i}] is ({type(q).__name__}, {type(d).__name__}): "
                "a pair (query, document) of str"
            )
        queries.append(q)
        documents.append(d)
    return queries, documents


def _describe(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"a {type(x).__name__}"


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class _Progress:
    """tqdm when it is installed, else one line on stderr redrawn in place."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="Pairs", unit="pair")
        except ImportError:
            self.bar = None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            sys.stderr.write(f"\rcrossenc: {self.done}/{self.total} pairs")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")


# Models unpickled in this process, by their constructor arguments: a Dask or
# Spark worker that receives the same pickled model with every task loads it once.
_unpickled: Dict[Tuple, "CrossEncoder"] = {}
_unpickled_lock = threading.Lock()


def _unpickle(kwargs: Dict[str, Any]) -> "CrossEncoder":
    key = tuple(sorted(kwargs.items()))
    with _unpickled_lock:
        model = _unpickled.get(key)
        if model is None:
            model = _unpickled[key] = CrossEncoder(**kwargs)
        return model


class CrossEncoder:
    """A cross-encoder reranker: scores (query, document) pairs.

    Args:
        model_name_or_path: a model folder (config.json, model.safetensors,
            tokenizer.json, as ``save_pretrained`` writes them) or a Hugging Face
            hub id, fetched into (or read from, with HF_HUB_OFFLINE=1) the hub cache.
        max_length: tokens a pair is cut to (default: the tokenizer's and the
            model's limit).
        device: None or "cpu"; anything else is refused.
        trust_remote_code: accepted for compatibility; crossenc never runs code
            from a model repository.
        revision: branch, tag or commit of a hub model.
        activation_fn: the score activation: None (the model's own: sigmoid for
            one label, identity for more), "sigmoid", "identity", "softmax", a
            torch activation module, or a callable on a numpy [n, labels] array
            of logits.
        precision: "f32" (PyTorch's scores within 1e-4), "bf16" or "int8"
            (faster; rankings kept, scores within ~1e-2).
        threads: threads to compute on (default: every core this process may
            use). In a Dask, Spark or Ray worker that runs several tasks at
            once, give each worker its share.
        long_docs: "first" (cut to max_length, as sentence-transformers),
            "max" or "mean" (documents longer than max_length are scored in
            overlapping windows; the best or mean window logit).
        window_stride: with long_docs "max"/"mean", document tokens between
            window starts (default half a window).
    """

    def __init__(
        self,
        model_name_or_path: str,
        max_length: Optional[int] = None,
        device: Optional[str] = None,
        trust_remote_code: bool = False,
        revision: Optional[str] = None,
        activation_fn: Optional[Callable] = None,
        precision: str = "f32",
        threads: Optional[int] = None,
        long_docs: str = "first",
        window_stride: Optional[int] = None,
    ) -> None:
        _check_device(device)
        if not isinstance(model_name_or_path, (str, os.PathLike)):
            raise TypeError(
                f"model_name_or_path must be a str or path, not {type(model_name_or_path).__name__}"
            )
        activation = _activation(activation_fn, "activation_fn")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads={threads!r}: pass a positive int, or None for all cores")
        self._kwargs: Dict[str, Any] = dict(
            model_name_or_path=os.fspath(model_name_or_path),
            max_length=max_length,
            revision=revision,
            precision=precision,
            threads=threads,
            long_docs=long_docs,
            window_stride=window_stride,
        )
        if activation is None or isinstance(activation, str):
            self._kwargs["activation_fn"] = activation
        self._activation = activation
        self._lock = threading.Lock()
        self._model = self._load()
        self._pid = os.getpid()

    def _load(self) -> _Model:
        k = self._kwargs
        # An own thread pool per model, always: it is created in this process,
        # so a forked child never waits on threads that were not forked.
        return _Model(
            k["model_name_or_path"],
            max_length=k["max_length"],
            precision=k["precision"],
            threads=k["threads"] or _default_threads(),
            activation=self._activation if isinstance(self._activation, str) else None,
            long_docs=k["long_docs"],
            window_stride=k["window_stride"],
            revision=k["revision"],
        )

    @property
    def _native(self) -> _Model:
        # After fork(), the engine's worker threads exist only in the parent:
        # a child that inherited this object loads the model again, once.
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._model = self._load()
                    self._pid = os.getpid()
        return self._model

    def __reduce__(self):
        if callable(self._activation):
            raise TypeError(
                "a CrossEncoder with a callable activation_fn cannot be pickled; "
                "pass activation_fn as 'sigmoid', 'identity' or 'softmax'"
            )
        return (_unpickle, (dict(self._kwargs),))

    def __dask_tokenize__(self):
        # Dask names tasks by their arguments: a model is its constructor's.
        return ("crossenc.CrossEncoder", tuple(sorted(self._kwargs.items())))

    def __repr__(self) -> str:
        m = self._model
        return (
            f"CrossEncoder({str(m.path)!r}, max_length={m.max_length}, precision={m.precision!r}, "
            f"num_labels={m.num_labels}, threads={m.threads}, kernels={m.kernel_path!r})"
        )

    @property
    def num_labels(self) -> int:
        """Logits per pair."""
        return self._model.num_labels

    @property
    def max_length(self) -> int:
        """Tokens a pair (or window) is cut to, special tokens included."""
        return self._model.max_length

    @property
    def labels(self) -> List[str]:
        """Label names (the config's id2label), in logit order."""
        return self._model.labels

    @property
    def precision(self) -> str:
        """"f32", "bf16" or "int8"."""
        return self._model.precision

    @property
    def kernel_path(self) -> str:
        """The kernels in use, e.g. "avx512 (int8: avx512-vnni, attention: bf16)"."""
        return self._model.kernel_path

    @property
    def threads(self) -> int:
        """Threads the model computes on."""
        return self._model.threads

    @property
    def long_docs(self) -> str:
        """"first", "max" or "mean"."""
        return self._model.long_docs

    @property
    def path(self) -> str:
        """The model folder (a hub id resolved to its snapshot in the cache)."""
        return str(self._model.path)

    @property
    def activation_fn(self) -> Union[str, Callable]:
        """The default score activation: a name, or the callable given."""
        return self._activation if self._activation is not None else self._model.activation

    def predict(
        self,
        sentences: Any,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[Callable] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> Any:
        """Scores (query, document) pairs, as sentence-transformers' ``predict``.

        Args:
            sentences: one pair, or a list of pairs (lists or tuples of two str).
            batch_size: accepted for compatibility (must be positive); the engine
                batches by tokens, and scores do not depend on batching.
            show_progress_bar: a progress bar on stderr (tqdm if installed).
            activation_fn: overrides the model's activation for this call (see
                the class docs).
            apply_softmax: with several labels, a softmax over each pair's scores.
            convert_to_numpy: a numpy array (default); False gives a list of
                numpy values.
            convert_to_tensor: a torch tensor (needs torch installed).

        Returns:
            float32 numpy array of shape (n,) for one label, (n, num_labels)
            otherwise; for a single pair, its score (a numpy float32) or its
            scores (shape (num_labels,)).
        """
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        singular = _is_singular(sentences)
        if singular:
            pairs = [sentences.tolist() if isinstance(sentences, np.ndarray) else sentences]
        elif isinstance(sentences, np.ndarray):
            pairs = sentences.tolist()
        else:
            pairs = list(sentences)
        queries, documents = _split_pairs(pairs)
        activation = _activation(activation_fn, "activation_fn")
        if activation is None:
            activation = self._activation
        scores = self._scores(queries, documents, activation, bool(show_progress_bar))
        if self.num_labels == 1:
            scores = scores.reshape(-1)
        elif apply_softmax and len(scores):
            scores = _softmax(scores)
        if not len(scores):
            scores = np.array([], dtype=np.float32)
        if convert_to_tensor:
            try:
                import torch
            except ImportError:
                raise ImportError(
                    "convert_to_tensor=True needs torch, which crossenc does not install; "
                    "use the numpy array (the default)"
                ) from None
            scores = torch.from_numpy(scores)
        elif not convert_to_numpy:
            scores = list(scores)
        if singular:
            scores = scores[0]
        return scores

    def _scores(
        self,
        queries: List[str],
        documents: List[str],
        activation: Union[None, str, Callable],
        progress: bool,
    ) -> np.ndarray:
        """float32 [n, labels]: the engine's scores after `activation`."""
        model = self._native
        labels = model.num_labels
        n = len(queries)
        # A callable gets the logits; a name is applied by the engine.
        named = "identity" if callable(activation) else activation
        out = np.empty((n, labels), dtype=np.float32)
        chunk = _CHUNK_WITH_PROGRESS if progress else _CHUNK
        bar = _Progress(n) if progress else None
        try:
            for start in range(0, n, chunk):
                end = min(start + chunk, n)
                raw = model.predict(queries[start:end], documents[start:end], named)
                out[start:end] = np.frombuffer(raw, dtype=np.float32).reshape(end - start, labels)
                if bar is not None:
                    bar.update(end - start)
        finally:
            if bar is not None:
                bar.close()
        if callable(activation):
            out = np.asarray(activation(out), dtype=np.float32).reshape(n, labels)
        return out

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: Optional[int] = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[Callable] = None,
        threshold: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Documents ranked by their score for ``query``, best first, as
        sentence-transformers' ``rank``.

        Returns a list of ``{"corpus_id": int, "score": float}`` (plus ``"text"``
        with ``return_documents``); equal scores keep input order; at most
        ``top_k``; with ``threshold``, only documents scoring at least that.
        """
        if self.num_labels != 1:
            raise ValueError(
                "CrossEncoder.rank() only works for models with num_labels=1. "
                "Consider using CrossEncoder.predict() with input pairs instead."
            )
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        if isinstance(documents, str):
            raise TypeError("documents must be a list of str, not one str")
        documents = list(documents)
        scores = self.predict(
            [(query, d) for d in documents],
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            activation_fn=activation_fn,
        )
        results = []
        for i, score in enumerate(scores.tolist()):
            if threshold is not None and not score >= threshold:
                continue
            hit: Dict[str, Any] = {"corpus_id": i, "score": score}
            if return_documents:
                hit["text"] = documents[i]
            results.append(hit)
        results = sorted(results, key=lambda x: x["score"], reverse=True)
        return results[:top_k]
