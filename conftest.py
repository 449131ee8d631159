"""Test settings for the unit tests and for the notebooks run through nbval.

nbval starts the notebook kernels from this process, so the environment set here reaches them:
the smoke profile, the offline stand-ins (CI has no internet) and throw-away checkpoint and
results folders, so that a test run never resumes or overwrites a real run.
"""

import os
import tempfile

import pytest

_scratch = tempfile.mkdtemp(prefix="nbh-tests-")
os.environ.setdefault("NBH_PROFILE", "smoke")
os.environ.setdefault("NBH_DATA_POLICY", "standin")
os.environ.setdefault("NBH_PROGRESS", "text")
os.environ.setdefault("NBH_CHECKPOINT_DIR", os.path.join(_scratch, "checkpoints"))
os.environ.setdefault("NBH_RESULTS_DIR", os.path.join(_scratch, "results"))
os.environ.setdefault("NBH_CACHE_DIR", os.path.join(_scratch, "cache"))
os.environ.setdefault("NBH_RUNS_DIR", os.path.join(_scratch, "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _fresh_standin_banners(monkeypatch):
    """Each test sees the full stand-in banner, whatever ran before it."""
    from nbhelpers.data import core

    monkeypatch.setattr(core, "_announced", set())
    monkeypatch.setattr(core, "_offline", None)  # one test's "offline" decision must not leak
