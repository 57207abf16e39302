"""Bulk reranking with Dask: score (query, document) pairs partition by partition.

    python python/examples/dask_rerank.py MODEL PAIRS.jsonl [--workers 2] [--top-k 3]

MODEL is a model folder or hub id; PAIRS.jsonl has one {"query": ..., "document": ...}
per line. Runs on a local process pool (one model per worker process, loaded once);
pointed at a cluster, the same `rerank` runs there (see the repository README, "Python"):

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")   # then .compute() uses the cluster

The model travels to the workers as a reference to its folder (or hub id), not
as weights: each worker process loads it once, the first time a task needs it,
so the folder must be readable on every worker (a shared path, or a hub id that
each worker resolves through its own cache).
"""

import argparse
import json
import sys

import dask.dataframe as dd
import numpy as np
import pandas as pd

from crossenc import CrossEncoder


def score_partition(df: pd.DataFrame, model: CrossEncoder) -> pd.DataFrame:
    """One partition's pairs with a float32 "score" column."""
    pairs = list(zip(df["query"], df["document"]))
    return df.assign(score=model.predict(pairs) if pairs else np.array([], dtype=np.float32))


def rerank(pairs: dd.DataFrame, model: CrossEncoder) -> dd.DataFrame:
    """`pairs` (columns "query", "document", any others kept) with their scores."""
    meta = pairs._meta.assign(score=np.array([], dtype=np.float32))
    return pairs.map_partitions(score_partition, model, meta=meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("pairs", help="JSON Lines of {\"query\", \"document\"}")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=3, help="documents kept per query")
    a = ap.parse_args()

    df = pd.read_json(a.pairs, lines=True)
    ddf = dd.from_pandas(df, npartitions=a.partitions)
    # One thread per worker process: the processes share the cores.
    model = CrossEncoder(a.model, threads=1)
    scored = rerank(ddf, model).compute(scheduler="processes", num_workers=a.workers)
    best = (scored.sort_values(["query", "score"], ascending=[True, False], kind="stable")
            .groupby("query", sort=False).head(a.top_k))
    for row in best.itertuples():
        json.dump({"query": row.query, "document": row.document, "score": float(row.score)},
                  sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
