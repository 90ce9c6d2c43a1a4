"""bench/ab_conv.py: the other checkout's package loads beside ours under its own name."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
ab_conv = importlib.import_module("ab_conv")


def test_variant_copy_imports_itself_not_this_checkout(tmp_path, monkeypatch):
    ab_conv.copy_variant(ROOT, tmp_path)
    copied = list((tmp_path / ab_conv.NAME).rglob("*.py"))
    assert len(copied) == len(list((ROOT / "tinyexit").rglob("*.py")))
    for path in copied:
        text = path.read_text()
        assert "from tinyexit." not in text and "import tinyexit\n" not in text, path
    monkeypatch.syspath_prepend(str(tmp_path))
    variant = importlib.import_module(f"{ab_conv.NAME}.backend.cpu.conv")
    from tinyexit.backend.cpu import conv

    assert variant.__file__.startswith(str(tmp_path)) and variant is not conv
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 8, 6, 6)), rng.standard_normal((4, 8, 3, 3))
    np.testing.assert_allclose(variant.conv2d(x, w, 1, 1), conv.conv2d(x, w, 1, 1), rtol=1e-12)


def test_variant_without_a_package_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="has no tinyexit package"):
        ab_conv.copy_variant(tmp_path, tmp_path / "out")
