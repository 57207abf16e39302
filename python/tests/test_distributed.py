"""python/examples/dask_rerank.py on a local process pool (Dask's "processes"
scheduler, 2 workers, the model pickled to them by reference): every score
identical to a plain predict in this process. 10,000 pairs on the small
fixture model, and 1,000 on the real-weight cross-encoder (~10 s of compute)."""

import importlib.util
import time

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, FIXTURES, ROOT, load_json, real_ce_dir

dd = pytest.importorskip("dask.dataframe", reason="pip install 'dask[dataframe]'")


def load_example():
    path = ROOT / "python" / "examples" / "dask_rerank.py"
    spec = importlib.util.spec_from_file_location("dask_rerank", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_name,count", [("bert-l2-h32", 10_000), ("real-ce", 1_000)])
def test_dask_map_partitions_equals_plain_predict(model_name, count):
    from crossenc import CrossEncoder

    example = load_example()
    corpus = load_json(DATA / "precision" / "corpus.json")
    # Held-out queries x documents, cut to their first words.
    queries = corpus["queries"]
    docs = [" ".join(d.split()[:24]) for d in corpus["documents"]]
    pairs = [(q, d) for d in docs for q in queries][:count]
    assert len(pairs) == count
    path = str(real_ce_dir() if model_name == "real-ce" else FIXTURES / model_name)
    df = pd.DataFrame(pairs, columns=["query", "document"]).assign(id=np.arange(len(pairs)))

    model = CrossEncoder(path, threads=1)
    t = time.perf_counter()
    scored = example.rerank(dd.from_pandas(df, npartitions=8), model)
    got = scored.compute(scheduler="processes", num_workers=2)
    dask_s = time.perf_counter() - t
    assert list(got["id"]) == list(df["id"]), "rows reordered or lost"
    assert got["score"].dtype == np.float32

    t = time.perf_counter()
    plain = CrossEncoder(path, threads=2).predict(pairs)
    plain_s = time.perf_counter() - t
    print(f"{model_name}, {len(pairs)} pairs: dask 2 processes x 1 thread {dask_s:.1f} s, "
          f"plain predict 2 threads {plain_s:.1f} s")
    assert np.array_equal(got["score"].to_numpy(), plain), (
        f"max diff {np.abs(got['score'].to_numpy() - plain).max():.3e}")
