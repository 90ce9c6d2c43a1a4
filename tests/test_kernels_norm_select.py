"""Batch-norm and select kernels: every backend against the NumPy reference, on ordinary and
extreme values, and the reference's gradient against finite differences.

The ``gpu`` modules are written with the array-module idiom, so they run here on NumPy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyexit.backend.cpu import elementwise as cpu_elementwise
from tinyexit.backend.cpu import normalization as cpu_norm
from tinyexit.backend.gpu import elementwise as gpu_elementwise
from tinyexit.backend.gpu import normalization as gpu_norm
from tinyexit.backend.reference import elementwise as ref_elementwise
from tinyexit.backend.reference import normalization as ref_norm

NORM = {"cpu": cpu_norm, "gpu": gpu_norm}
SELECT = {"cpu": cpu_elementwise, "gpu": gpu_elementwise}
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}
SHAPES = [(5, 3), (4, 3, 6), (3, 4, 5, 7), (2, 1, 1, 1)]
EXTREMES = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e30, -1e30, 1e-30]


def _data(shape, dtype, seed=0, loc=0.0):
    """A non-contiguous (last axis reversed) random array of ``shape`` around ``loc``."""
    x = np.random.default_rng(seed).standard_normal(shape[:-1] + (shape[-1] + 1,)) + loc
    return x.astype(dtype)[..., :0:-1]


def _params(c, dtype, seed=2):
    rng = np.random.default_rng(seed)
    return (1 + 0.5 * rng.standard_normal(c)).astype(dtype), rng.standard_normal(c).astype(dtype)


def _check(actual, expected, tol):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, **tol)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_batch_norm_matches_reference(backend, dtype, shape):
    mod, x, (w, b) = NORM[backend], _data(shape, dtype), _params(shape[1], dtype)
    gy = _data(shape, dtype, seed=1)
    y_ref, mean_ref, var_ref = ref_norm.batch_norm(x, w, b, 1e-5)
    y, mean, var = mod.batch_norm(x, w, b, 1e-5)
    for actual, expected in ((y, y_ref), (mean, mean_ref), (var, var_ref)):
        _check(actual, expected, TOL[dtype])
    s = 1 / np.sqrt(var_ref + 1e-5)
    for actual, expected in zip(
        mod.batch_norm_grad(x, w, gy, mean_ref, s), ref_norm.batch_norm_grad(x, w, gy, mean_ref, s)
    ):
        _check(actual, expected, TOL[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_batch_norm_grad_grad_matches_reference(backend, dtype, shape):
    x, gy, ggx = (_data(shape, dtype, seed=i, loc=2.0 * (i == 0)) for i in range(3))
    (w, ggw), (_, ggb) = _params(shape[1], dtype), _params(shape[1], dtype, seed=3)
    # against the float64 reference on the same values: with two values per channel, float32
    # results are off by up to about 3e-4 of the largest output (s² amplifies the roundings)
    args = [a.astype(np.float64) for a in (x, w, gy, ggx, ggw, ggb)]
    _, mean, var = ref_norm.batch_norm(args[0], args[1], args[5], 1e-5)
    s = 1 / np.sqrt(var + 1e-5)
    expected = ref_norm.batch_norm_grad_grad(*args, mean, s)
    actual_all = NORM[backend].batch_norm_grad_grad(
        x, w, gy, ggx, ggw, ggb, mean.astype(dtype), s.astype(dtype)
    )
    for actual, want in zip(actual_all, expected):
        assert actual.dtype == dtype and actual.shape == want.shape
        scale = float(np.abs(want).max())
        atol = (1e-3 if dtype == np.float32 else 1e-11) * scale
        np.testing.assert_allclose(actual, want, rtol=TOL[dtype]["rtol"], atol=atol)


def test_batch_norm_reference_values_by_hand():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [7.0, 10.0]])  # channel 0: mean 4, var 5
    with np.errstate(divide="ignore", invalid="ignore"):
        y, mean, var = ref_norm.batch_norm(x, np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.0)
    np.testing.assert_allclose(mean, [4, 10])
    np.testing.assert_allclose(var, [5, 0])
    np.testing.assert_allclose(y[:, 0], 2 * (x[:, 0] - 4) / math.sqrt(5) + 1)
    assert np.isnan(y[:, 1]).all()  # a constant channel with eps = 0 divides 0 by 0


def test_batch_norm_grad_reference_is_the_derivative():
    """⟨gy, ∂y⟩ of the reference forward by central differences, in float64."""
    shape, h = (3, 2, 2, 2), 1e-6
    x, gy = _data(shape, np.float64), _data(shape, np.float64, seed=1)
    w, b = _params(2, np.float64)
    y, mean, var = ref_norm.batch_norm(x, w, b, 1e-5)
    gx, gw, gb = ref_norm.batch_norm_grad(x, w, gy, mean, 1 / np.sqrt(var + 1e-5))

    def loss(x_, w_, b_):
        return float((ref_norm.batch_norm(x_, w_, b_, 1e-5)[0] * gy).sum())

    for arg, grad in ((0, gx), (1, gw), (2, gb)):
        base = [x.copy(), w.copy(), b.copy()]
        numeric = np.zeros_like(base[arg])
        for i in np.ndindex(base[arg].shape):
            up, down = [a.copy() for a in base], [a.copy() for a in base]
            up[arg][i] += h
            down[arg][i] -= h
            numeric[i] = (loss(*up) - loss(*down)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_batch_norm_grad_grad_reference_is_the_derivative():
    """⟨(ggx, ggw, ggb), ∂(gx, gw, gb)⟩ of the reference first-order gradients by central
    differences in x, w and gy, in float64 (the statistics recomputed from x each time)."""
    shape, h = (3, 2, 2, 2), 1e-6
    x, gy, ggx = (_data(shape, np.float64, seed=i) for i in range(3))
    (w, ggw), (_, ggb) = _params(2, np.float64), _params(2, np.float64, seed=3)

    def pairing(x_, w_, gy_):
        _, mean, var = ref_norm.batch_norm(x_, w_, np.zeros_like(w_), 1e-5)
        gx, gw, gb = ref_norm.batch_norm_grad(x_, w_, gy_, mean, 1 / np.sqrt(var + 1e-5))
        return float((gx * ggx).sum() + (gw * ggw).sum() + (gb * ggb).sum())

    _, mean, var = ref_norm.batch_norm(x, w, np.zeros_like(w), 1e-5)
    g_x, g_w, g_gy = ref_norm.batch_norm_grad_grad(x, w, gy, ggx, ggw, ggb, mean, 1 / np.sqrt(var + 1e-5))
    for arg, analytic in ((0, g_x), (1, g_w), (2, g_gy)):
        base = [x, w, gy]
        numeric = np.zeros_like(base[arg])
        for i in np.ndindex(base[arg].shape):
            up, down = [a.copy() for a in base], [a.copy() for a in base]
            up[arg][i] += h
            down[arg][i] -= h
            numeric[i] = (pairing(*up) - pairing(*down)) / (2 * h)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_batch_norm_keeps_precision_far_from_zero(backend):
    """A mean of 1e4 and a spread of 1: the centred variance keeps float32 accurate."""
    x64 = _data((8, 3, 5, 5), np.float64, loc=1e4)
    w, b = _params(3, np.float64)
    y_exact = ref_norm.batch_norm(x64, w, b, 1e-5)[0]
    y = NORM[backend].batch_norm(x64.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 1e-5)[0]
    np.testing.assert_allclose(y, y_exact, atol=2e-3)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_batch_norm_nan_and_inf_stay_in_their_channel(backend):
    x, (w, b) = _data((4, 3, 2, 2), np.float32), _params(3, np.float32)
    x[1, 0, 1, 1], x[2, 2, 0, 0] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        y, mean, var = NORM[backend].batch_norm(x, w, b, 1e-5)
    assert np.isnan(y[:, 0]).all() and np.isnan(y[:, 2]).all() and np.isnan(mean[0]) and mean[2] == np.inf
    _check(y[:, 1], ref_norm.batch_norm(x[:, 1:2], w[1:2], b[1:2], 1e-5)[0][:, 0], TOL[np.float32])


def _close_with_extremes(actual, expected, scale=0.0):
    """Equal up to rounding relative to the largest finite magnitude of the result or ``scale``
    (the size of the terms behind it); NaN and inf where expected."""
    finite = np.abs(expected[np.isfinite(expected)])
    atol = 1e-9 * (1 + max(finite.max() if finite.size else 0, scale))
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=atol)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(2, 4), st.integers(1, 3), st.lists(st.integers(1, 4), max_size=2)).map(
        lambda t: (t[0], t[1], *t[2])
    ),
)
def test_batch_norm_kernels_agree_on_generated_values(data, shape):
    elements = st.one_of(st.floats(-10, 10), st.sampled_from(EXTREMES))
    x = data.draw(hnp.arrays(np.float64, shape, elements=elements))
    gy = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    w, b = _params(shape[1], np.float64)
    with np.errstate(all="ignore"):
        expected = ref_norm.batch_norm(x, w, b, 1e-5)
        s = 1 / np.sqrt(expected[2] + 1e-5)
        expected_grad = ref_norm.batch_norm_grad(x, w, gy, expected[1], s)
        for mod in NORM.values():
            # the mean's rounding is relative to the largest |x| of the sum, the variance's to its square
            biggest = float(np.abs(x[np.isfinite(x)]).max(initial=0))
            for actual, want, scale in zip(mod.batch_norm(x, w, b, 1e-5), expected, (0, biggest, biggest**2)):
                _close_with_extremes(actual, want, scale)
            for actual, want in zip(mod.batch_norm_grad(x, w, gy, expected[1], s), expected_grad):
                _close_with_extremes(actual, want)
            for actual, want in zip(
                mod.batch_norm_grad_grad(x, w, gy, gy[::-1], b, w, expected[1], s),
                ref_norm.batch_norm_grad_grad(x, w, gy, gy[::-1], b, w, expected[1], s),
            ):
                _close_with_extremes(actual, want)


@pytest.mark.parametrize("dtype", DTYPES + [np.int64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_select_matches_reference(backend, dtype):
    x = (_data((3, 4, 5), np.float64) * 10).astype(dtype)
    mask = _data((3, 4, 5), np.float64, seed=1) > 0
    expected = ref_elementwise.select(mask, x)
    actual = SELECT[backend].select(mask, x)
    assert actual.dtype == dtype and np.array_equal(actual, expected)
    assert np.array_equal(expected, np.where(mask, x, 0))


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_select_keeps_nan_and_inf_outside_the_mask_out(backend):
    x = np.array([np.nan, np.inf, -np.inf, 2.0, np.nan], np.float32)
    mask = np.array([False, False, False, True, True])
    out = SELECT[backend].select(mask, x)
    assert np.array_equal(out[:4], [0, 0, 0, 2]) and np.isnan(out[4]) and not np.signbit(out[:3]).any()


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_select_broadcasts_x_against_the_mask(backend):
    x = np.array([[1.0, -2.0, 3.0]])
    mask = np.array([[True, False, True], [False, True, True]])
    assert np.array_equal(SELECT[backend].select(mask, x), [[1, 0, 3], [0, -2, 3]])
    assert SELECT[backend].select(np.zeros((0, 3), bool), x).shape == (0, 3)
