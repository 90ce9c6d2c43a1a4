"""First- and second-order checks of the network ops on every kernel backend and device.

One table drives them: name -> (function, input specs). Each op runs on the NumPy reference
kernels, the Numba kernels (cpu) and, where a GPU is present, the CuPy kernels (cuda).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEVICES, rand

import tinyexit as te

F = te.nn.functional


def _conv(stride, padding, k, bias=True):
    if bias:
        return (
            lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding),
            [((2, 2, 5, 6), None), ((3, 2, k, k), None), ((3,), None)],
        )
    return (
        lambda x, w: F.conv2d(x, w, stride=stride, padding=padding),
        [((2, 2, 5, 6), None), ((3, 2, k, k), None)],
    )


def _conv_table():
    table = {}
    for k in (1, 3):
        for s in (1, 2):
            for p in (0, 1):
                table[f"conv2d_k{k}_s{s}_p{p}"] = _conv(s, p, k, bias=(s == 1))
    return table


def _bn_weight_grad(x, w):
    """d/dw of a batch-norm loss, as a function of (x, w): only gw of the fused gradient op is used."""
    with te.enable_grad():
        return te.grad(
            (F.batch_norm(x, None, None, w, None, training=True) ** 2).sum(), w, create_graph=True
        )[0]


def _bn_all_grads(x, w, b):
    """All three first-order gradients of a batch-norm loss, as a function of (x, w, b): their
    derivative is the fused second-order op with every output gradient present, and their second
    derivative that op's own backward (a third derivative of batch norm)."""
    with te.enable_grad():
        y = F.batch_norm(x, None, None, w, b, training=True)
        gx, gw, gb = te.grad((y**3 + y * x).sum(), [x, w, b], create_graph=True)
    return gx * x + gw.sum() + (gb * gb).sum()


def _bn_input_grad(x):
    """d/dx of a batch-norm loss on (N, C) input without affine parameters (no ggw, no ggb)."""
    with te.enable_grad():
        return te.grad((F.batch_norm(x, None, None, training=True) ** 3).sum(), x, create_graph=True)[0]


NN_OPS = {
    **_conv_table(),
    "conv2d_k2_odd": _conv(2, 1, 2),
    "batch_norm_train": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [((3, 2, 3, 2), None), ((2,), 0.5), ((2,), None)],
    ),
    "batch_norm_train_2d": (lambda x: F.batch_norm(x, None, None, training=True) ** 2, [((4, 3), None)]),
    "batch_norm_weight_grad": (_bn_weight_grad, [((3, 2, 2, 2), None), ((2,), 0.5)]),
    "batch_norm_all_grads": (_bn_all_grads, [((3, 2, 2, 2), None), ((2,), 0.5), ((2,), None)]),
    "batch_norm_input_grad_2d": (_bn_input_grad, [((5, 3), None)]),
    "batch_norm_eval": (
        lambda x, m, v, w: F.batch_norm(x, m, v, w, None, training=False),
        [((2, 2, 3, 3), None), ((2,), None), ((2,), 0.5), ((2,), None)],
    ),
    "avg_pool_k2": (lambda x: F.avg_pool2d(x, 2) ** 2, [((2, 2, 5, 6), None)]),
    "avg_pool_k3_s1_p1": (lambda x: F.avg_pool2d(x, 3, 1, 1) * x, [((1, 2, 5, 4), None)]),
    "avg_pool_k3_s2_p1": (lambda x: F.avg_pool2d(x, 3, 2, 1) ** 2, [((2, 1, 7, 5), None)]),
    "max_pool_k2": (lambda x: F.max_pool2d(x, 2) ** 2, [((2, 2, 5, 6), None)]),
    "max_pool_k3_s2_p1": (lambda x: F.max_pool2d(x, 3, 2, 1) ** 2, [((2, 1, 7, 5), None)]),
    "max_pool_k3_s1_p1": (lambda x: F.max_pool2d(x, 3, 1, 1) * x, [((1, 2, 4, 5), None)]),
    "interp_up2": (lambda x: F.interpolate(x, (8, 10)) ** 2, [((1, 2, 4, 5), None)]),
    "interp_down2": (lambda x: F.interpolate(x, (3, 4)) ** 2, [((2, 1, 6, 8), None)]),
    "interp_identity": (lambda x: F.interpolate(x, (4, 5)) * x, [((1, 2, 4, 5), None)]),
    "interp_arbitrary": (lambda x: F.interpolate(x, (8, 3)) ** 2, [((1, 2, 5, 7), None)]),
    "interp_no_align": (lambda x: F.interpolate(x, (7, 3), align_corners=False) ** 2, [((1, 2, 5, 4), None)]),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(), [((3, 4), None), ((2, 4), None), ((2,), None)]),
    "relu_4d": (lambda x: F.relu(x) * x, [((2, 2, 3, 3), None)]),
    "global_mean": (lambda x: (x * x).mean(dim=(2, 3)), [((2, 3, 3, 4), None)]),
    "cat_channels": (lambda a, b: F.cat([a, a * b], 1) ** 2, [((2, 2, 3, 3), None), ((2, 1, 3, 3), None)]),
    "conv_bn_relu_chain": (
        lambda x, w: F.relu(F.batch_norm(F.conv2d(x, w, padding=1), None, None, training=True)),
        [((2, 2, 4, 4), None), ((2, 2, 3, 3), None)],
    ),
}

BACKENDS = ["reference", "numba"]


@pytest.fixture(params=BACKENDS)
def kernels_backend(request, monkeypatch):
    if request.param == "reference":
        monkeypatch.setenv("TINYEXIT_KERNELS", "reference")
    else:
        monkeypatch.delenv("TINYEXIT_KERNELS", raising=False)
    return request.param


def _inputs(specs, device):
    return [rand(*shape, low=low, device=device, seed=i) for i, (shape, low) in enumerate(specs)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(NN_OPS))
def test_gradcheck(name, device, kernels_backend):
    if device == "cuda" and kernels_backend == "reference":
        pytest.skip("the reference kernels are NumPy only")
    fn, specs = NN_OPS[name]
    assert te.gradcheck(fn, _inputs(specs, device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(NN_OPS))
def test_gradgradcheck(name, device, kernels_backend):
    if device == "cuda" and kernels_backend == "reference":
        pytest.skip("the reference kernels are NumPy only")
    fn, specs = NN_OPS[name]
    assert te.gradgradcheck(fn, _inputs(specs, device))


@pytest.mark.parametrize("name", sorted(NN_OPS))
def test_fast_kernels_match_reference_float32(name, monkeypatch):
    """Forward and first derivatives of the Numba path equal the NumPy reference in float32."""
    fn, specs = NN_OPS[name]

    def run():
        xs = [te.tensor(t.numpy().astype(np.float32), requires_grad=True) for t in _inputs(specs, "cpu")]
        y = fn(*xs)
        v = te.tensor(np.random.default_rng(5).standard_normal(y.shape).astype(np.float32))
        return [y.numpy()] + [g.numpy() for g in te.grad(y, xs, grad_outputs=v)]

    monkeypatch.setenv("TINYEXIT_KERNELS", "reference")
    expected = run()
    monkeypatch.delenv("TINYEXIT_KERNELS")
    got = run()
    for e, g in zip(expected, got):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))


def test_batch_norm_train_forward_and_gradients_match_numpy():
    x, w, b, gy = (
        rand(4, 3, 2, 5, requires_grad=True, seed=1),
        rand(3, low=0.5, seed=2),
        rand(3, seed=3),
        rand(4, 3, 2, 5, requires_grad=False, seed=4),
    )
    y = F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
    a, g = x.numpy(), gy.numpy()
    axes, n = (0, 2, 3), a.size // 3
    xh = (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(
        y.numpy(), xh * w.numpy()[:, None, None] + b.numpy()[:, None, None], rtol=1e-12
    )
    gx, gw, gb = te.grad(y, [x, w, b], grad_outputs=gy)
    s = 1 / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    expected_gx = (
        w.numpy()[:, None, None]
        * s
        / n
        * (n * g - g.sum(axes, keepdims=True) - xh * (g * xh).sum(axes, keepdims=True))
    )
    np.testing.assert_allclose(gx.numpy(), expected_gx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw.numpy(), (g * xh).sum(axes), rtol=1e-10)
    np.testing.assert_allclose(gb.numpy(), g.sum(axes), rtol=1e-10)


def test_batch_norm_without_channels_returns_an_empty_result():
    x = te.tensor(np.ones((4, 0, 3, 3), np.float32), requires_grad=True)
    for training in (True, False):
        y = F.batch_norm(x, te.zeros(0), te.ones(0), te.ones(0), te.zeros(0), training=training)
        assert y.shape == (4, 0, 3, 3) and y.dtype == np.float32
    assert te.grad(y.sum(), x)[0].shape == (4, 0, 3, 3)


def test_batch_norm_running_statistics_update_like_pytorch():
    x = rand(4, 3, 2, 2, requires_grad=False)
    rm, rv = te.zeros(3, dtype=np.float64), te.ones(3, dtype=np.float64)
    F.batch_norm(x, rm, rv, training=True, momentum=0.1)
    a = x.numpy()
    np.testing.assert_allclose(rm.numpy(), 0.1 * a.mean((0, 2, 3)))
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * a.var((0, 2, 3), ddof=1))
    y = F.batch_norm(x, rm, rv, training=False)
    expected = (a - rm.numpy()[None, :, None, None]) / np.sqrt(rv.numpy()[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y.numpy(), expected)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.conv2d(te.ones(1, 3, 5, 5), te.ones(4, 2, 3, 3)), ValueError, "3 channels"),
        (lambda: F.conv2d(te.ones(3, 5, 5), te.ones(4, 3, 3, 3)), ValueError, "4-D input"),
        (lambda: F.conv2d(te.ones(1, 3, 2, 2), te.ones(4, 3, 5, 5)), ValueError, "larger than the padded"),
        (lambda: F.conv2d(te.ones(1, 3, 5, 5), te.ones(4, 3, 3, 3, dtype=np.float64)), TypeError, "float64"),
        (lambda: F.conv2d(te.ones(1, 3, 5, 5), te.ones(4, 3, 3, 3), te.ones(3)), ValueError, "bias"),
        (lambda: F.linear(te.ones(2, 3), te.ones(4, 5)), ValueError, "does not match"),
        (lambda: F.batch_norm(te.ones(2, 3, 4, 4), te.zeros(4), te.ones(4)), ValueError, "running_mean"),
        (lambda: F.batch_norm(te.ones(1, 3), None, None, training=True), ValueError, "more than one value"),
        (lambda: F.interpolate(te.ones(1, 1, 4, 4), (2, 2), mode="nearest"), ValueError, "unknown mode"),
        (lambda: F.max_pool2d(te.ones(1, 1, 4, 4), 2, padding=2), ValueError, "padding"),
    ],
)
def test_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
