"""Checks of the multi-exit and L2W exercises (notebooks 04-07); the library itself is the oracle."""

from __future__ import annotations

import numpy as np

import tinyexit as te
from tinyexit.evaluate import budgeted
from tinyexit.l2w import allocate as library_allocate

from .base import expect, expect_close


def _probs(rng: np.random.Generator, k: int, n: int, classes: int = 10) -> np.ndarray:
    logits = 2 * rng.standard_normal((k, n, classes))
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return e / e.sum(axis=2, keepdims=True)


def _not_the_library(answer, library_function) -> None:
    expect(
        answer is not library_function,
        f"this is the library's {library_function.__name__}; "
        "check the function you wrote in the exercise cell",
    )


def check_assign_exits(assign_exits) -> None:
    """``assign_exits(probs, thresholds)`` gives each sample the first exit confident enough, else the last."""
    _not_the_library(assign_exits, budgeted.assign_exits)
    rng = np.random.default_rng(5)
    for k, n in [(2, 30), (4, 200), (5, 7)]:
        probs = _probs(rng, k, n)
        thresholds = np.append(np.sort(rng.uniform(0.3, 0.9, k - 1))[::-1], -np.inf)
        thresholds[0] = np.inf if k > 2 else thresholds[0]  # an exit that takes nobody
        want = budgeted.assign_exits(probs, thresholds)
        got = np.asarray(assign_exits(probs, thresholds))
        expect(got.shape == want.shape, f"{k} exits, {n} samples: shape {got.shape}, expected {want.shape}")
        wrong = np.flatnonzero(got != want)
        expect(
            wrong.size == 0,
            f"{k} exits, {n} samples: {wrong.size} samples at the wrong exit, e.g. sample "
            f"{wrong[:1].tolist()} got exit {got[wrong[:1]].tolist()}, expected {want[wrong[:1]].tolist()}",
        )


def check_find_thresholds(find_thresholds) -> None:
    """``find_thresholds(val_probs, shares)`` equals the library's threshold walk."""
    _not_the_library(find_thresholds, budgeted.find_thresholds)
    rng = np.random.default_rng(6)
    for k, n, q in [(3, 100, 0.5), (4, 257, 1.0), (5, 60, 1.8), (4, 10, 0.1)]:
        probs = _probs(rng, k, n)
        shares = budgeted.exit_shares(q, k)
        expect_close(
            find_thresholds(probs, shares),
            budgeted.find_thresholds(probs, shares),
            f"thresholds for {k} exits, {n} samples, q = {q}",
            rtol=0,
            atol=0,
        )


def check_allocate(allocate) -> None:
    """``allocate(confidences, q)`` gives each exit the same meta samples as the library's allocation."""
    _not_the_library(allocate, library_allocate)
    rng = np.random.default_rng(7)
    for k, n, q in [(2, 16, 0.75), (4, 64, 0.75), (4, 50, 2.0), (5, 33, 0.3)]:
        conf = rng.uniform(0.1, 1.0, (k, n))
        got, want = allocate(conf, q), library_allocate(conf, q)
        expect(len(got) == k, f"{k} exits: returned {len(got)} subsets")
        for j, (g, w) in enumerate(zip(got, want)):
            expect(
                sorted(np.asarray(g).tolist()) == sorted(w.tolist()),
                f"{k} exits, {n} meta samples, q = {q}: exit {j} got samples {sorted(np.asarray(g).tolist())}, "
                f"expected {sorted(w.tolist())}",
            )


def check_pseudo_update(pseudo_update) -> None:
    """``pseudo_update(params, grads, buffers, lr, momentum, weight_decay)`` is SGD's step, differentiable in grads."""
    rng = np.random.default_rng(8)
    params = [te.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 2), (4,)]]
    lr, momentum, weight_decay = 0.1, 0.9, 1e-3
    optimizer = te.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for p in params:  # one real step fills the momentum buffers
        p.grad = te.tensor(rng.standard_normal(p.shape))
    optimizer.step()
    buffers = [optimizer.state[p]["momentum_buffer"].copy() for p in params]
    grads = [te.tensor(rng.standard_normal(p.shape), requires_grad=True) for p in params]
    got = pseudo_update(params, grads, buffers, lr, momentum, weight_decay)
    want = optimizer.virtual_step(params, grads)
    expect(len(got) == len(params), f"returned {len(got)} tensors for {len(params)} parameters")
    for i, (g, w) in enumerate(zip(got, want)):
        expect_close(g, w.numpy(), f"θ̂ of parameter {i}")
    probe = [te.tensor(rng.standard_normal(p.shape)) for p in params]
    expect(
        all(isinstance(g, te.Tensor) and g.requires_grad for g in got),
        "θ̂ must be tensors that still depend on the gradients (build them with tinyexit ops, not NumPy)",
    )
    d_grads = te.grad(sum((g * u).sum() for g, u in zip(got, probe)), grads)
    for i, (d, u) in enumerate(zip(d_grads, probe)):
        expect_close(d, -lr * u.numpy(), f"d<θ̂, u>/d grad of parameter {i} (should be -lr·u)")


def check_paired_difference(paired_difference) -> None:
    """``paired_difference(a, b)`` returns the mean of a - b and its standard error (ddof = 1)."""
    rng = np.random.default_rng(9)
    for n in [3, 5, 12]:
        a, b = rng.normal(70, 2, n), rng.normal(69, 2, n)
        got = paired_difference(a, b)
        expect(len(got) == 2, "return (mean, standard error)")
        d = a - b
        expect_close(got[0], d.mean(), f"mean difference over {n} seeds")
        expect_close(got[1], d.std(ddof=1) / np.sqrt(n), f"standard error over {n} seeds (ddof = 1)")


class _TwoExitNet(te.nn.Module):
    """Two exits on Conv-BN-ReLU features, float64: small enough to check a half-step in a second."""

    def __init__(self):
        super().__init__()
        nn = te.nn
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64)
        self.bn1 = nn.BatchNorm2d(3, dtype=np.float64)
        self.conv2 = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False, dtype=np.float64)
        self.bn2 = nn.BatchNorm2d(4, dtype=np.float64)
        self.head1 = nn.Linear(3, 3, dtype=np.float64)
        self.head2 = nn.Linear(4, 3, dtype=np.float64)

    def forward(self, x):
        relu = te.nn.functional.relu
        h1 = relu(self.bn1(self.conv1(x)))
        h2 = relu(self.bn2(self.conv2(h1)))
        return [self.head1(h1.mean(dim=(2, 3))), self.head2(h2.mean(dim=(2, 3)))]


def _l2w_setup(seed: int):
    from tinyexit.l2w import WeightPredictionNet

    te.manual_seed(seed)
    model, wpn = _TwoExitNet(), WeightPredictionNet(2, hidden=6).double()
    optimizer = te.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    return model, wpn, optimizer, te.optim.Adam(wpn.parameters(), lr=1e-2)


def check_half_step(half_step) -> None:
    """Two calls of ``half_step`` (halves exchanged) change model, WPN and BN statistics as ``L2WTrainer.step``."""
    from tinyexit.l2w import L2WTrainer

    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((12, 2, 5, 5)), rng.integers(0, 3, 12)
    first, second = slice(0, 6), slice(6, 12)
    for q in (0.75, 0.5):
        mine, ref = _l2w_setup(3), _l2w_setup(3)
        L2WTrainer(*ref, q=q).step(x, y)
        half_step(*mine, te.tensor(x[first]), y[first], te.tensor(x[second]), y[second], q)
        half_step(*mine, te.tensor(x[second]), y[second], te.tensor(x[first]), y[first], q)
        for what, a, b in (("backbone", mine[0], ref[0]), ("WPN", mine[1], ref[1])):
            state, want = a.state_dict(), b.state_dict()
            for name in want:
                reference = want[name].numpy() if hasattr(want[name], "numpy") else want[name]
                expect_close(state[name], reference, f"q={q}: {what} {name} after two half-steps", rtol=1e-6)
