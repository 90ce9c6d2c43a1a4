"""Shared test helpers: float64 random tensors and the device list (cuda skipped cleanly)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tinyexit as te
from tinyexit.backend import cupy_available

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA GPU")],
    ),
]


def rand(*shape, low=None, device="cpu", seed=None, requires_grad=True):
    """A float64 random tensor; ``low`` shifts it to lie in (low, low + 1) for log/sqrt/pow."""
    rng = np.random.default_rng(seed if seed is not None else abs(hash(shape)) % 2**32)
    a = rng.uniform(low, low + 1, shape) if low is not None else rng.standard_normal(shape)
    return te.tensor(a, requires_grad=requires_grad, dtype=np.float64, device=device)


@pytest.fixture(autouse=True)
def _seed():
    te.manual_seed(0)
    yield


os.environ.setdefault("NUMBA_NUM_THREADS", "2")
# Scripts the tests start (bench/, docs/make_api.py) import this checkout's tinyexit, not an installed one.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
