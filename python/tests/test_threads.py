"""One model shared by Python threads: every concurrent score equals the
sequential one, and predict releases the GIL while it computes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from conftest import FIXTURES, load_json


def pairs():
    ref = load_json(FIXTURES / "bert-l2-h32" / "reference.json")
    return [(p["query"], p["document"]) for p in ref["pairs"]]


def test_threads_share_one_model(models):
    model = models("bert-l2-h32")
    base = pairs()
    # Each call a different slice and order, so batches differ between calls.
    jobs = [base[i % len(base):] + base[: i % len(base)] for i in range(40)]
    want = [model.predict(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(model.predict, jobs))
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), f"call {i} differs under 4 threads"
    ranks = [model.rank(base[0][0], [d for _, d in j]) for j in jobs[:8]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda j: model.rank(base[0][0], [d for _, d in j]), jobs[:8])) == ranks


def test_predict_releases_the_gil(models):
    model = models("bert-l2-h32")
    # Enough work for ~0.5 s or more on 2 cores; a ticker thread counts while it runs.
    work = pairs() * 600
    ticks = 0
    stop = threading.Event()

    def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    start_ticks = ticks
    t0 = time.perf_counter()
    model.predict(work)
    seconds = time.perf_counter() - t0
    during = ticks - start_ticks
    stop.set()
    t.join()
    print(f"predict of {len(work)} pairs: {seconds:.2f} s, ticker ran {during} times meanwhile")
    # Holding the GIL for the call would leave the ticker at ~0 (one switch
    # interval at most); released, it ticks every ~1 ms.
    assert during >= max(10, seconds * 100), (during, seconds)
