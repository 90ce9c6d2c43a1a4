"""Optimisers follow PyTorch's update rules step for step; state round-trips; the cosine schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyexit as te
from tinyexit import optim


def _loss(w):
    return (w * w * w).sum() + (w * 2).tanh().sum()


def _trajectory(make_opt, steps=5):
    w = te.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    opt = make_opt([w])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(w).backward()
        opt.step()
        out.append(w.numpy().copy())
    return np.array(out), opt, w


def _sgd_by_hand(lr, momentum, wd, nesterov, steps=5):
    w = np.linspace(-1, 1, 6).reshape(2, 3)
    buf, out = None, []
    for _ in range(steps):
        g = 3 * w**2 + 2 * (1 - np.tanh(2 * w) ** 2) + wd * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("momentum, wd, nesterov", [(0, 0, False), (0.9, 1e-4, False), (0.9, 0.1, True)])
def test_sgd_matches_the_update_rule(momentum, wd, nesterov):
    got, _, _ = _trajectory(
        lambda p: optim.SGD(p, lr=0.05, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    )
    np.testing.assert_allclose(got, _sgd_by_hand(0.05, momentum, wd, nesterov), rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours = {
        "sgd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
        "adam": lambda p: optim.Adam(p, lr=0.05, weight_decay=1e-2),
    }[name]
    theirs = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
        "adam": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=1e-2),
    }[name]
    got, _, _ = _trajectory(ours)
    w = torch.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    opt = theirs([w])
    expected = []
    for _ in range(5):
        opt.zero_grad()
        ((w**3).sum() + (w * 2).tanh().sum()).backward()
        opt.step()
        expected.append(w.detach().numpy().copy())
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-10, atol=1e-12)


def test_state_dict_resumes_the_same_run():
    full, _, _ = _trajectory(lambda p: optim.Adam(p, lr=0.05), steps=6)
    _, opt, w = _trajectory(lambda p: optim.Adam(p, lr=0.05), steps=3)
    saved, w_saved = opt.state_dict(), w.numpy().copy()
    w2 = te.tensor(w_saved, requires_grad=True)
    opt2 = optim.Adam([w2], lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.05
    for _ in range(3):
        opt2.zero_grad()
        _loss(w2).backward()
        opt2.step()
    np.testing.assert_allclose(w2.numpy(), full[-1], rtol=1e-12)


def test_cosine_schedule_per_iteration():
    w = te.zeros(1, requires_grad=True)
    sgd, adam = optim.SGD([w], lr=0.8), optim.Adam([w], lr=1e-4)
    sched = optim.CosineAnnealingLR([sgd, adam], T_max=10)
    lrs = []
    for _ in range(10):
        sched.step()
        lrs.append(sgd.param_groups[0]["lr"])
    np.testing.assert_allclose(
        lrs, [0.4 * (1 + math.cos(math.pi * t / 10)) for t in range(1, 11)], atol=1e-15
    )
    assert adam.param_groups[0]["lr"] == pytest.approx(0.0)
    state = sched.state_dict()
    other = optim.CosineAnnealingLR(optim.SGD([w], lr=0.8), T_max=10)
    other.load_state_dict({**state, "last_step": 5})
    assert other.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.4)


def test_bad_arguments():
    w = te.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="require grad"):
        optim.SGD([te.zeros(1)], lr=0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.Adam(p, lr=0.05, weight_decay=1e-2),
    ],
)
def test_virtual_step_equals_the_real_step(make):
    """The differentiable pseudo-update (Eq. 7) predicts exactly what step() then does, at every step."""
    w = te.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    opt = make([w])
    for _ in range(3):
        opt.zero_grad()
        _loss(w).backward()
        (predicted,) = opt.virtual_step([w], [w.grad])
        opt.step()
        np.testing.assert_allclose(predicted.numpy(), w.numpy(), rtol=1e-9, atol=1e-12)
