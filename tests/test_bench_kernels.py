"""bench/kernels.py: our calls and PyTorch's alternate one by one, so that load from elsewhere
slows both alike."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
kernels = importlib.import_module("kernels")


def test_calls_alternate_and_each_is_timed_by_the_clock():
    calls, ticks = [], iter(range(100))
    fns = {"ours": lambda: calls.append("ours"), "torch": lambda: calls.append("torch")}
    times = kernels.alternate_calls(fns, 3, clock=lambda: next(ticks) / 1000)
    assert calls == ["ours", "torch"] + ["ours", "torch"] * 3  # one warm-up each, then in turn
    assert {name: [round(t, 9) for t in ts] for name, ts in times.items()} == {
        "ours": [1.0] * 3,
        "torch": [1.0] * 3,
    }
