"""One table of ops drives the forward, first- and second-order checks of every autograd op.

Each row: name -> (function of the input Tensors, [(shape, low) per input], NumPy reference).
``low=None`` draws standard normal inputs; a number draws uniform (low, low + 1) (for log, sqrt, pow).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEVICES, rand

import tinyexit as te

F = te.nn.functional


def _log_softmax(a, axis):
    z = a - a.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _ce(a, t):
    return -_log_softmax(a, 1)[np.arange(len(t)), t]


T3 = np.array([0, 4, 2])
OPS = {
    "add_broadcast": (lambda a, b: a + b, [((3, 4), None), ((4,), None)], lambda a, b: a + b),
    "sub_broadcast": (lambda a, b: a - b, [((2, 1, 3), None), ((4, 1), None)], lambda a, b: a - b),
    "mul_broadcast": (lambda a, b: a * b, [((3, 1), None), ((1, 4), None)], lambda a, b: a * b),
    "div": (lambda a, b: a / b, [((3, 4), None), ((3, 4), 0.5)], lambda a, b: a / b),
    "scalar_arith": (
        lambda a: (2.0 - a) * 3 / (a + 4) - 1 / (a * a + 1),
        [((5,), None)],
        lambda a: (2.0 - a) * 3 / (a + 4) - 1 / (a * a + 1),
    ),
    "pow_scalar": (lambda a: a**3 + a**0.5, [((2, 3), 0.5)], lambda a: a**3 + a**0.5),
    "pow_tensor": (lambda a, b: a**b, [((2, 3), 0.5), ((2, 3), None)], lambda a, b: a**b),
    "rpow": (lambda a: 2.0**a, [((4,), None)], lambda a: 2.0**a),
    "neg": (lambda a: -a, [((3,), None)], lambda a: -a),
    "matmul": (lambda a, b: a @ b, [((3, 4), None), ((4, 2), None)], lambda a, b: a @ b),
    "matmul_batched": (lambda a, b: a @ b, [((2, 3, 4), None), ((4, 5), None)], lambda a, b: a @ b),
    "matmul_batched_both": (te.matmul, [((2, 1, 2, 3), None), ((3, 3, 2), None)], np.matmul),
    "matmul_vec": (lambda a, b: a @ b, [((4,), None), ((4, 3), None)], lambda a, b: a @ b),
    "matvec": (lambda a, b: a @ b, [((3, 4), None), ((4,), None)], lambda a, b: a @ b),
    "dot": (lambda a, b: a @ b, [((4,), None), ((4,), None)], lambda a, b: a @ b),
    "exp": (te.exp, [((3, 4), None)], np.exp),
    "log": (te.log, [((3, 4), 0.5)], np.log),
    "tanh": (te.tanh, [((3, 4), None)], np.tanh),
    "sigmoid": (te.sigmoid, [((3, 4), None)], lambda a: 1 / (1 + np.exp(-a))),
    "relu": (te.relu, [((3, 4), None)], lambda a: np.maximum(a, 0)),
    "relu_squared": (lambda a: a.relu() * a, [((3, 4), None)], lambda a: np.maximum(a, 0) * a),
    "abs": (lambda a: a.abs() * a, [((3, 4), None)], lambda a: np.abs(a) * a),
    "sqrt": (te.sqrt, [((3, 4), 0.5)], np.sqrt),
    "clamp": (lambda a: a.clamp(-0.5, 0.7) * a, [((3, 4), None)], lambda a: np.clip(a, -0.5, 0.7) * a),
    "clamp_min": (lambda a: te.clamp(a, min=0.1), [((3, 4), None)], lambda a: np.maximum(a, 0.1)),
    "where": (
        lambda a, b: te.where(a.data > 0, a * a, b),
        [((3, 4), None), ((4,), None)],
        lambda a, b: np.where(a > 0, a * a, b),
    ),
    "maximum": (
        lambda a, b: te.maximum(a, b) * a,
        [((3, 4), None), ((3, 4), None)],
        lambda a, b: np.maximum(a, b) * a,
    ),
    "minimum": (
        lambda a, b: te.minimum(a, b) * b,
        [((3, 4), None), ((4,), None)],
        lambda a, b: np.minimum(a, b) * b,
    ),
    "clamp_tensor_bounds": (
        lambda a, lo, hi: te.clamp(a, lo, hi) * a,
        [((3, 4), None), ((4,), None), ((3, 1), None)],
        lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi) * a,
    ),
    "max_binary": (
        lambda a, b: te.max(a, b) * b,
        [((3, 4), None), ((4,), None)],
        lambda a, b: np.maximum(a, b) * b,
    ),
    "sum_all": (lambda a: (a * a).sum(), [((3, 4), None)], lambda a: (a * a).sum()),
    "sum_dim": (lambda a: (a * a).sum(dim=1), [((3, 4, 2), None)], lambda a: (a * a).sum(1)),
    "sum_dims_keepdim": (
        lambda a: (a * a).sum(dim=(0, 2), keepdim=True),
        [((3, 4, 2), None)],
        lambda a: (a * a).sum((0, 2), keepdims=True),
    ),
    "mean_dim": (lambda a: (a * a).mean(-1), [((3, 4), None)], lambda a: (a * a).mean(-1)),
    "mean_keepdim": (
        lambda a: a.exp().mean(0, keepdim=True),
        [((3, 4), None)],
        lambda a: np.exp(a).mean(0, keepdims=True),
    ),
    "var": (lambda a: a.var(1), [((3, 5), None)], lambda a: a.var(1, ddof=1)),
    "var_biased_keepdim": (
        lambda a: a.var((0, 2), keepdim=True, unbiased=False),
        [((3, 2, 4), None)],
        lambda a: a.var((0, 2), keepdims=True),
    ),
    "var_correction": (
        lambda a: a.var(0, correction=2, keepdim=True),
        [((4, 3), None)],
        lambda a: a.var(0, ddof=2, keepdims=True),
    ),
    "max_all": (lambda a: (a * a).max(), [((3, 4), None)], lambda a: (a * a).max()),
    "max_dim": (lambda a: (a * a).max(dim=1).values, [((3, 4), None)], lambda a: (a * a).max(1)),
    "min_dim_keepdim": (
        lambda a: (a * a).min(0, keepdim=True)[0],
        [((3, 4), None)],
        lambda a: (a * a).min(0, keepdims=True),
    ),
    "amax": (lambda a: te.amax(a * a, dim=(0, 1)), [((3, 4, 2), None)], lambda a: (a * a).max((0, 1))),
    "reshape": (lambda a: (a * a).reshape(-1, 2), [((3, 4), None)], lambda a: (a * a).reshape(-1, 2)),
    "flatten": (lambda a: (a * a).flatten(1), [((2, 3, 2), None)], lambda a: (a * a).reshape(2, -1)),
    "transpose": (lambda a: (a * a).transpose(0, 2), [((2, 3, 4), None)], lambda a: (a * a).swapaxes(0, 2)),
    "permute": (
        lambda a: (a * a).permute(2, 0, 1),
        [((2, 3, 4), None)],
        lambda a: (a * a).transpose(2, 0, 1),
    ),
    "squeeze_unsqueeze": (lambda a: (a * a).unsqueeze(1).squeeze(), [((3, 4), None)], lambda a: a * a),
    "getitem_basic": (lambda a: (a * a)[1:, ::2], [((3, 5), None)], lambda a: (a * a)[1:, ::2]),
    "getitem_int": (lambda a: (a * a)[1, :, -1], [((3, 4, 2), None)], lambda a: (a * a)[1, :, -1]),
    "getitem_int_array_repeats": (
        lambda a: (a * a)[np.array([0, 2, 0, 0])],
        [((3, 4), None)],
        lambda a: (a * a)[[0, 2, 0, 0]],
    ),
    "getitem_pairs": (
        lambda a: (a * a)[np.arange(3), np.array([1, 0, 1])],
        [((3, 2), None)],
        lambda a: (a * a)[np.arange(3), [1, 0, 1]],
    ),
    "getitem_bool": (
        lambda a: (a * a)[np.array([True, False, True])],
        [((3, 2), None)],
        lambda a: (a * a)[[0, 2]],
    ),
    "cat": (
        lambda a, b: te.cat([a * b[:1], b, a], dim=0),
        [((2, 3), None), ((4, 3), None)],
        lambda a, b: np.concatenate([a * b[:1], b, a], 0),
    ),
    "cat_dim1": (
        lambda a, b: te.cat([a, b * a], dim=1) ** 2,
        [((2, 3), None), ((2, 3), None)],
        lambda a, b: np.concatenate([a, b * a], 1) ** 2,
    ),
    "stack": (
        lambda a, b: te.stack([a, a * b, b], dim=1) ** 2,
        [((2, 3), None), ((2, 3), None)],
        lambda a, b: np.stack([a, a * b, b], 1) ** 2,
    ),
    "broadcast_to": (
        lambda a: te.broadcast_to(a, (2, 3, 4)) ** 2,
        [((3, 1), None)],
        lambda a: np.broadcast_to(a, (2, 3, 4)) ** 2,
    ),
    "softmax": (lambda a: te.softmax(a, dim=1), [((3, 5), None)], lambda a: np.exp(_log_softmax(a, 1))),
    "softmax_dim0": (
        lambda a: te.softmax(a, dim=0) * a,
        [((3, 5), None)],
        lambda a: np.exp(_log_softmax(a, 0)) * a,
    ),
    "log_softmax": (lambda a: te.log_softmax(a, dim=-1), [((3, 5), None)], lambda a: _log_softmax(a, -1)),
    "cross_entropy_mean": (lambda a: F.cross_entropy(a, T3), [((3, 5), None)], lambda a: _ce(a, T3).mean()),
    "cross_entropy_sum": (
        lambda a: F.cross_entropy(a, np.array([1, 1]), reduction="sum"),
        [((2, 3), None)],
        lambda a: _ce(a, np.array([1, 1])).sum(),
    ),
    "cross_entropy_none": (
        lambda a: F.cross_entropy(a, te.tensor([1, 0, 2]), reduction="none"),
        [((3, 3), None)],
        lambda a: _ce(a, np.array([1, 0, 2])),
    ),
    "reused_node": (
        lambda a: (lambda h: h * h.exp() + h)(a.tanh() * a),
        [((3, 2), None)],
        lambda a: (lambda h: h * np.exp(h) + h)(np.tanh(a) * a),
    ),
    "diamond": (
        lambda a, b: (lambda s: s * (s + 1))(a @ b.T),
        [((2, 3), None), ((2, 3), None)],
        lambda a, b: (lambda s: s * (s + 1))(a @ b.T),
    ),
}


def _inputs(specs, device="cpu", requires_grad=True):
    return [
        rand(*shape, low=low, device=device, seed=i, requires_grad=requires_grad)
        for i, (shape, low) in enumerate(specs)
    ]


@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_matches_numpy(name):
    fn, specs, reference = OPS[name]
    inputs = _inputs(specs, requires_grad=False)
    expected = reference(*[t.numpy() for t in inputs])
    np.testing.assert_allclose(fn(*inputs).numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name, device):
    fn, specs, _ = OPS[name]
    assert te.gradcheck(fn, _inputs(specs, device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_gradgradcheck(name, device):
    fn, specs, _ = OPS[name]
    assert te.gradgradcheck(fn, _inputs(specs, device))


def test_float32_stays_float32():
    x = te.randn(3, 4, requires_grad=True)
    y = (x * 2.5 + 1).exp().sum(1).mean() / 3.0
    assert y.dtype == np.float32
    (g,) = te.grad(y, x)
    assert g.dtype == np.float32
