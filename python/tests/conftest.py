"""Shared paths and helpers for the crossenc Python tests.

Run: pytest python/tests   (after `pip install ./python`; CI: .ci/run)

Reference data come from PyTorch, never from crossenc: the fixtures'
reference.json (tools/make_fixtures*.py), tests/data/long_docs.json
(tools/make_long_reference.py) and tests/data/python/st_api.json
(tools/record_st_api.py: what sentence-transformers' CrossEncoder returns).
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "fixtures"

# The Rust tests' tolerance (tests/parity.rs): kernels sum in another order than
# PyTorch, a few ulps per reduction (~1e-6 here); a real bug moves values by 1e-2.
TOL = 1e-4


def cache_dir() -> Path:
    return Path(os.environ.get("CROSSENC_CACHE_DIR") or Path.home() / ".cache" / "crossenc")


def real_ce_dir() -> Path:
    """The cross-encoder tools/make_bench_model.py makes from the real all-MiniLM-L6-v2
    weights; skips (saying so on stderr) when absent, fails when CI requires it."""
    path = cache_dir() / "all-MiniLM-L6-v2-ce"
    if not (path / "model.safetensors").is_file():
        msg = (f"real weights missing at {path}: run tools/fetch_real_weights.sh and "
               "python3 tools/make_bench_model.py")
        if os.environ.get("CROSSENC_REQUIRE_REAL_WEIGHTS") == "1":
            pytest.fail(msg + " (CROSSENC_REQUIRE_REAL_WEIGHTS=1)")
        print(f"SKIPPED: {msg}", file=sys.stderr)
        pytest.skip(msg)
    return path


def load_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def models():
    """CrossEncoders by name, loaded once per session (2 threads: CI's cores)."""
    from crossenc import CrossEncoder

    cache = {}

    def get(name: str, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            path = real_ce_dir() if name == "real-ce" else FIXTURES / name
            cache[key] = CrossEncoder(str(path), threads=2, **kwargs)
        return cache[key]

    return get


def pytest_sessionfinish(session, exitstatus):
    """CI (CROSSENC_PYTEST_NO_SKIPS=1) fails on any skipped test: nothing is skipped unseen."""
    if os.environ.get("CROSSENC_PYTEST_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == 0:
        print(f"\n{len(skipped)} test(s) skipped, and CROSSENC_PYTEST_NO_SKIPS=1 allows none",
              file=sys.stderr)
        session.exitstatus = 1
