"""The PyTorch mirror of bench/train_step.py is the same model and the same algorithm (float64).

Skipped without PyTorch; the library itself never imports it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO

import tinyexit as te
from tinyexit import l2w, models, optim
from tinyexit.training import BaselineTrainer

torch = pytest.importorskip("torch")
sys.path.insert(0, str(REPO / "bench"))
import torch_mirror as tm  # noqa: E402

ARCHS = ["msdnet4_tiny", "ranet4_tiny"]


def _pair(arch: str):
    te.manual_seed(0)
    model = models.create(arch, num_classes=5).double()
    mirror = tm.create(arch, num_classes=5).double()
    tm.load_from(mirror, model)
    return model, mirror


def _batch(n: int = 8):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3, 32, 32)), rng.integers(0, 5, n)


@pytest.mark.parametrize("arch", ARCHS)
def test_same_parameter_names_counts_and_forward(arch):
    model, mirror = _pair(arch)
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in mirror.named_parameters()
    ]
    x, _ = _batch()
    for z, zt in zip(model(te.tensor(x)), mirror(torch.from_numpy(x))):
        np.testing.assert_allclose(zt.detach().numpy(), z.numpy(), rtol=1e-10, atol=1e-10)


def _assert_same_parameters(model, mirror):
    theirs = dict(mirror.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            theirs[name].detach().numpy(), p.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
        )


def test_baseline_steps_agree():
    model, mirror = _pair("msdnet4_tiny")
    ours = BaselineTrainer(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4))
    theirs = tm.BaselineStep(
        mirror, torch.optim.SGD(mirror.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    )
    x, y = _batch()
    for _ in range(2):
        assert ours.step(x, y)["loss"] == pytest.approx(theirs.step(torch.from_numpy(x), torch.from_numpy(y)))
    _assert_same_parameters(model, mirror)


@pytest.mark.parametrize("arch", ARCHS)
def test_l2w_steps_agree(arch):
    """Two L2W steps (four half-steps: pseudo-update with momentum, meta loss, WPN and real updates)."""
    model, mirror = _pair(arch)
    wpn = l2w.WeightPredictionNet(model.num_exits, hidden=16).double()
    twpn = tm.WeightPredictionNet(wpn.num_exits, hidden=16).double()
    tm.load_from(twpn, wpn)
    ours = l2w.L2WTrainer(
        model,
        wpn,
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
        optim.Adam(wpn.parameters(), lr=1e-2, weight_decay=1e-4),
    )
    theirs = tm.L2WStep(
        mirror,
        twpn,
        torch.optim.SGD(mirror.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
        torch.optim.Adam(twpn.parameters(), lr=1e-2, weight_decay=1e-4),
    )
    x, y = _batch()
    for _ in range(2):
        assert ours.step(x, y)["loss"] == pytest.approx(theirs.step(torch.from_numpy(x), torch.from_numpy(y)))
    _assert_same_parameters(model, mirror)
    _assert_same_parameters(wpn, twpn)
