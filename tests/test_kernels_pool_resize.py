"""Pooling and bilinear-resize kernels: every backend against the NumPy reference, adjoint
identities, max-pool index rules, errors, and (where torch imports) PyTorch's values and gradients.

The ``gpu`` modules are written with the array-module idiom, so they run here on NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyexit.backend.cpu import pool as cpu_pool
from tinyexit.backend.cpu import resize as cpu_resize
from tinyexit.backend.gpu import pool as gpu_pool
from tinyexit.backend.gpu import resize as gpu_resize
from tinyexit.backend.reference import pool as ref_pool
from tinyexit.backend.reference import resize as ref_resize

POOL = {"reference": ref_pool, "cpu": cpu_pool, "gpu": gpu_pool}
RESIZE = {"reference": ref_resize, "cpu": cpu_resize, "gpu": gpu_resize}
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
# (kernel, stride, padding); padding 1 is allowed for kernel 2 and 3 (at most kernel // 2).
POOL_CASES = [(k, s, p) for k in (2, 3) for s in (1, 2) for p in (0, 1)]
# (input HW, output HW): x2 up, x2 down, identity, arbitrary, from and to a single pixel.
RESIZE_CASES = [
    ((6, 7), (12, 14)),
    ((8, 10), (4, 5)),
    ((5, 7), (5, 7)),
    ((5, 7), (8, 3)),
    ((1, 1), (3, 4)),
    ((4, 5), (1, 1)),
]
SHAPE = (2, 3, 7, 9)


def _data(shape, dtype, seed=0):
    """A non-contiguous (column-reversed) random array of ``shape``."""
    x = np.random.default_rng(seed).standard_normal(shape[:3] + (shape[3] + 1,)).astype(dtype)
    return x[..., :0:-1]


def _check_like(actual, expected):
    """Same shape and dtype as ``expected``, C-contiguous, values within the dtype's tolerance."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert actual.flags.c_contiguous
    np.testing.assert_allclose(actual, expected, **TOL[expected.dtype.type])


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "k{}s{}p{}".format(*c))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_pool_matches_reference(backend, dtype, case):
    mod, x = POOL[backend], _data(SHAPE, dtype)
    y_ref = ref_pool.avg_pool2d(x, *case)
    gy = _data(y_ref.shape, dtype, seed=1)
    _check_like(mod.avg_pool2d(x, *case), y_ref)
    gx_ref = ref_pool.avg_pool2d_adjoint(gy, SHAPE[2:], *case)
    _check_like(mod.avg_pool2d_adjoint(gy, SHAPE[2:], *case), gx_ref)
    m_ref, idx_ref = ref_pool.max_pool2d(x, *case)
    m, idx = mod.max_pool2d(x, *case)
    _check_like(m, m_ref)
    assert idx.dtype == np.int64 and idx.flags.c_contiguous and np.array_equal(idx, idx_ref)
    gx_ref = ref_pool.max_pool2d_scatter(gy, idx_ref, SHAPE[2:])
    _check_like(mod.max_pool2d_scatter(gy, idx, SHAPE[2:]), gx_ref)
    _check_like(mod.max_pool2d_gather(x, idx), ref_pool.max_pool2d_gather(x, idx_ref))


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "{}x{}to{}x{}".format(*c[0], *c[1]))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_resize_matches_reference(backend, dtype, case, align_corners):
    (hw, size), mod = case, RESIZE[backend]
    x = _data((2, 3) + hw, dtype)
    y_ref = ref_resize.interpolate_bilinear(x, size, align_corners)
    gy = _data(y_ref.shape, dtype, seed=1)
    _check_like(mod.interpolate_bilinear(x, size, align_corners), y_ref)
    _check_like(
        mod.interpolate_bilinear_adjoint(gy, hw, align_corners),
        ref_resize.interpolate_bilinear_adjoint(gy, hw, align_corners),
    )


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "k{}s{}p{}".format(*c))
@pytest.mark.parametrize("backend", list(POOL))
def test_pool_adjoint_identities(backend, case):
    mod, x = POOL[backend], _data(SHAPE, np.float64)
    y = mod.avg_pool2d(x, *case)
    g = _data(y.shape, np.float64, seed=1)
    gx = mod.avg_pool2d_adjoint(g, SHAPE[2:], *case)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-12)
    _, idx = mod.max_pool2d(x, *case)
    gx = _data(SHAPE, np.float64, seed=2)
    lhs = np.vdot(mod.max_pool2d_scatter(g, idx, SHAPE[2:]), gx)
    np.testing.assert_allclose(lhs, np.vdot(g, mod.max_pool2d_gather(gx, idx)), rtol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "{}x{}to{}x{}".format(*c[0], *c[1]))
@pytest.mark.parametrize("backend", list(RESIZE))
def test_resize_adjoint_identity(backend, case, align_corners):
    (hw, size), mod = case, RESIZE[backend]
    x = _data((2, 3) + hw, np.float64)
    y = mod.interpolate_bilinear(x, size, align_corners)
    g = _data(y.shape, np.float64, seed=1)
    gx = mod.interpolate_bilinear_adjoint(g, hw, align_corners)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-12)


@pytest.mark.parametrize("backend", list(POOL))
def test_max_pool_indices_and_ties(backend):
    mod = POOL[backend]
    x = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0], [-1.0, 5.0, 5.0]]).reshape(1, 1, 3, 3)
    y, idx = mod.max_pool2d(x, 2, 1, 0)
    np.testing.assert_array_equal(y[0, 0], [[3.0, 3.0], [5.0, 5.0]])
    np.testing.assert_array_equal(idx[0, 0], [[1, 1], [7, 7]])  # ties: the first in row-major order
    # Constant (and all -inf) planes: every window points at its first element inside the input,
    # never at the padding.
    for value in (0.0, -np.inf):
        _, idx = mod.max_pool2d(np.full((1, 2, 5, 6), value, dtype=np.float32), 3, 2, 1)
        rows = np.maximum(np.arange(3) * 2 - 1, 0)[:, None]
        cols = np.maximum(np.arange(3) * 2 - 1, 0)
        assert np.array_equal(idx, np.broadcast_to(rows * 6 + cols, idx.shape))
    # A NaN counts as the largest value, and the first NaN wins.
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    y, idx = mod.max_pool2d(x, 2, 2, 0)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1


@pytest.mark.parametrize("backend", list(POOL))
def test_float32_stays_float32(backend):
    x = _data(SHAPE, np.float32)
    pool, resize = POOL[backend], RESIZE[backend]
    y = pool.avg_pool2d(x, 2, None, 0)  # stride None means the kernel size, as in PyTorch
    assert y.shape == (2, 3, 3, 4)
    y, idx = pool.max_pool2d(x, 3, 2, 1)
    outs = [
        pool.avg_pool2d(x, 3, 2, 1),
        pool.avg_pool2d_adjoint(y, SHAPE[2:], 3, 2, 1),
        y,
        pool.max_pool2d_scatter(y, idx, SHAPE[2:]),
        pool.max_pool2d_gather(x, idx),
        resize.interpolate_bilinear(x, (4, 11), True),
        resize.interpolate_bilinear_adjoint(x, (3, 3), False),
    ]
    assert all(out.dtype == np.float32 for out in outs)


@pytest.mark.parametrize("backend", list(POOL))
def test_clear_errors(backend):
    pool, resize = POOL[backend], RESIZE[backend]
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="too small"):
        pool.avg_pool2d(x, 5, 1, 0)  # kernel larger than the input
    with pytest.raises(ValueError, match="too small"):
        pool.max_pool2d(np.zeros((1, 1, 1, 4)), 3, 1, 0)
    with pytest.raises(ValueError, match="at most half"):
        pool.max_pool2d(x, 3, 1, 2)
    with pytest.raises(ValueError, match="positive"):
        pool.avg_pool2d(x, 2, 0, 0)
    with pytest.raises(ValueError, match="4-d"):
        pool.avg_pool2d(x[0], 2, 2, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        pool.max_pool2d(x.astype(np.int32), 2, 2, 0)
    with pytest.raises(ValueError, match="spatial size"):
        pool.avg_pool2d_adjoint(np.zeros((1, 1, 3, 3)), (4, 4), 2, 2, 0)
    with pytest.raises(ValueError, match="idx has shape"):
        pool.max_pool2d_scatter(x[..., :2, :2], np.zeros((1, 1, 2, 3), dtype=np.int64), (4, 4))
    with pytest.raises(TypeError, match="integer"):
        pool.max_pool2d_gather(x, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="at least 1x1"):
        resize.interpolate_bilinear(x, (0, 3), True)
    with pytest.raises(ValueError, match="at least 1x1"):
        resize.interpolate_bilinear_adjoint(x, (2, 0), False)
    with pytest.raises(ValueError, match="pair of ints"):
        resize.interpolate_bilinear(x, (2, 3, 4), True)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "k{}s{}p{}".format(*c))
@pytest.mark.parametrize("backend", list(POOL))
def test_pool_matches_torch(backend, case):
    torch = pytest.importorskip("torch")
    mod, (k, s, p) = POOL[backend], case
    x = np.round(_data(SHAPE, np.float64) * 2)  # small integers: many ties
    gy = _data(ref_pool.avg_pool2d(x, *case).shape, np.float64, seed=1)
    for name in ("avg", "max"):
        t = torch.tensor(x, requires_grad=True)
        if name == "avg":
            ty = torch.nn.functional.avg_pool2d(t, k, s, p)
            y = mod.avg_pool2d(x, *case)
            gx = mod.avg_pool2d_adjoint(gy, SHAPE[2:], *case)
        else:
            ty, tidx = torch.nn.functional.max_pool2d(t, k, s, p, return_indices=True)
            y, idx = mod.max_pool2d(x, *case)
            np.testing.assert_array_equal(idx, tidx.numpy())
            gx = mod.max_pool2d_scatter(gy, idx, SHAPE[2:])
        ty.backward(torch.tensor(gy.copy()))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gx, t.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "{}x{}to{}x{}".format(*c[0], *c[1]))
@pytest.mark.parametrize("backend", list(RESIZE))
def test_resize_matches_torch(backend, case, align_corners):
    torch = pytest.importorskip("torch")
    (hw, size), mod = case, RESIZE[backend]
    x = _data((2, 3) + hw, np.float64)
    t = torch.tensor(x.copy(), requires_grad=True)
    ty = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=align_corners)
    gy = _data(tuple(ty.shape), np.float64, seed=1)
    ty.backward(torch.tensor(gy.copy()))
    y = mod.interpolate_bilinear(x, size, align_corners)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    gx = mod.interpolate_bilinear_adjoint(gy, hw, align_corners)
    np.testing.assert_allclose(gx, t.grad.numpy(), rtol=1e-12, atol=1e-14)
