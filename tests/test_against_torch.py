"""Values, gradients and second derivatives of the network ops against PyTorch (float64).

Skipped cleanly when PyTorch is not installed; the library itself never imports it.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinyexit as te

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = te.nn.functional

T3 = np.array([2, 0, 1, 2])

# name -> (tinyexit function, torch function, input shapes)
PAIRS = {
    "conv2d_s1_p1": (
        lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        lambda x, w, b: TF.conv2d(x, w, b, 1, 1),
        [(2, 3, 6, 5), (4, 3, 3, 3), (4,)],
    ),
    "conv2d_s2_p0": (
        lambda x, w: F.conv2d(x, w, stride=2),
        lambda x, w: TF.conv2d(x, w, stride=2),
        [(2, 3, 7, 6), (2, 3, 3, 3)],
    ),
    "conv2d_1x1": (lambda x, w: F.conv2d(x, w), lambda x, w: TF.conv2d(x, w), [(2, 4, 3, 3), (5, 4, 1, 1)]),
    "batch_norm": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
        lambda x, w, b: TF.batch_norm(x, None, None, w, b, True),
        [(4, 3, 3, 2), (3,), (3,)],
    ),
    "avg_pool": (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1), [(2, 2, 7, 6)]),
    "max_pool": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1), [(2, 2, 7, 6)]),
    "interp_up": (
        lambda x: F.interpolate(x, (9, 7), align_corners=True),
        lambda x: TF.interpolate(x, (9, 7), mode="bilinear", align_corners=True),
        [(2, 2, 4, 3)],
    ),
    "interp_down_no_align": (
        lambda x: F.interpolate(x, (3, 2), align_corners=False),
        lambda x: TF.interpolate(x, (3, 2), mode="bilinear", align_corners=False),
        [(1, 2, 6, 5)],
    ),
    "linear": (F.linear, TF.linear, [(3, 5), (4, 5), (4,)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1), [(4, 3)]),
    "cross_entropy": (
        lambda x: F.cross_entropy(x, T3, reduction="none"),
        lambda x: TF.cross_entropy(x, torch.from_numpy(T3), reduction="none"),
        [(4, 3)],
    ),
    "var_tanh": (lambda x: x.var(1) * x.tanh().mean(1), lambda x: x.var(1) * x.tanh().mean(1), [(3, 5)]),
}


def _nonlinear(y_te, y_t):
    """Square the outputs so that second derivatives of the bilinear/linear ops are not trivially zero."""
    return y_te * y_te, y_t * y_t


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_values_gradients_and_second_derivatives_match_pytorch(name):
    fn, tfn, shapes = PAIRS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [te.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = _nonlinear(fn(*xs), tfn(*ts))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(y.shape)
    g = te.grad(y, xs, grad_outputs=te.tensor(v), create_graph=True)
    gt = torch.autograd.grad(yt, ts, grad_outputs=torch.tensor(v), create_graph=True)
    for a, b in zip(g, gt):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    us = [rng.standard_normal(s) for s in shapes]
    s_te = sum((gi * te.tensor(u)).sum() for gi, u in zip(g, us))
    s_t = sum((gi * torch.tensor(u)).sum() for gi, u in zip(gt, us))
    h = te.grad(s_te, xs, allow_unused=True)
    ht = torch.autograd.grad(s_t, ts, allow_unused=True)
    for a, b in zip(h, ht):
        a = np.zeros(1) if a is None else a.numpy()
        b = np.zeros(1) if b is None else b.numpy()
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
