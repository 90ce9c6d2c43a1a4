"""Window geometry shared by the backends: the pair helper, output sizes, the argument checks as
every backend and ``nn.functional`` raise them, the strided window view, and the max-pooling
index policy (the ``gpu`` modules run here on NumPy arrays)."""

from __future__ import annotations

import numpy as np
import pytest

import tinyexit as te
import tinyexit.nn.functional as F
from tinyexit.backend import geometry
from tinyexit.backend.cpu import conv as cpu_conv
from tinyexit.backend.cpu import pool as cpu_pool
from tinyexit.backend.gpu import conv as gpu_conv
from tinyexit.backend.gpu import pool as gpu_pool
from tinyexit.backend.reference import conv as ref_conv
from tinyexit.backend.reference import pool as ref_pool

POOL = {"reference": ref_pool, "cpu": cpu_pool, "gpu": gpu_pool}
CONV = {"reference": ref_conv, "cpu": cpu_conv, "gpu": gpu_conv}


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, (3, 3)),
        (np.int64(3), (3, 3)),
        (np.int32(2), (2, 2)),
        (np.uint8(1), (1, 1)),
        ((2, 5), (2, 5)),
        ([0, 4], (0, 4)),
        (np.array([2, 3]), (2, 3)),
        ((np.int64(1), 2), (1, 2)),
    ],
)
def test_pair_accepts_python_and_numpy_integers(value, expected):
    got = geometry.pair(value, "stride")
    assert got == expected and all(type(v) is int for v in got)


@pytest.mark.parametrize(
    "value", [True, np.bool_(True), (1, False), 2.0, (2, 2.5), np.float64(1), None, "ab"]
)
def test_pair_refuses_non_integers(value):
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints"):
        geometry.pair(value, "kernel_size")


def test_pair_refuses_wrong_lengths_and_values_below_the_minimum():
    with pytest.raises(ValueError, match=r"size must be an int or a pair of ints, got \(2, 3, 4\)"):
        geometry.pair((2, 3, 4), "size")
    with pytest.raises(ValueError, match=r"padding must be non-negative, got -1"):
        geometry.pair(-1, "padding")
    with pytest.raises(ValueError, match=r"stride must be positive, got \(1, 0\)"):
        geometry.pair((1, 0), "stride", minimum=1)
    assert geometry.pair(0, "padding") == (0, 0)


@pytest.mark.parametrize(
    "input_hw, kernel, stride, padding, expected",
    [
        ((32, 32), (3, 3), (1, 1), (1, 1), (32, 32)),
        ((32, 32), (3, 3), (2, 2), (1, 1), (16, 16)),
        ((8, 8), (3, 3), (2, 2), (0, 0), (3, 3)),  # the last row and column touch no window
        ((7, 9), (3, 2), (2, 1), (1, 0), (4, 8)),
        ((3, 3), (3, 3), (1, 1), (0, 0), (1, 1)),
        ((5, 5), (2, 2), (2, 2), (0, 0), (2, 2)),
    ],
)
def test_output_size_is_what_every_kernel_produces(input_hw, kernel, stride, padding, expected):
    assert geometry.output_size(input_hw, kernel, stride, padding) == expected
    x = np.zeros((1, 2) + input_hw)
    for conv in CONV.values():
        assert conv.conv2d(x, np.zeros((3, 2) + kernel), stride, padding).shape == (1, 3) + expected
    if padding[0] <= kernel[0] // 2 and padding[1] <= kernel[1] // 2:
        for pool in POOL.values():
            assert pool.avg_pool2d(x, kernel, stride, padding).shape == (1, 2) + expected
            assert pool.max_pool2d(x, kernel, stride, padding)[0].shape == (1, 2) + expected


def test_geometry_of_conv_and_pool():
    assert geometry.conv_geometry((2, 3, 7, 9), (4, 3, 3, 2), (2, 1), 1) == ((2, 1), (1, 1), (4, 10))
    assert geometry.pool_geometry((7, 9), 3, None, 1) == ((3, 3), (3, 3), (1, 1), (3, 3))
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        geometry.pool_geometry((4, 4), 0, 1, 0)
    with pytest.raises(ValueError, match="at least 1x1"):
        geometry.check_size((3, 0))


def test_window_is_the_strided_view():
    a = np.arange(2 * 3 * 7 * 9).reshape(2, 3, 7, 9)
    v = geometry.window(a, 1, 2, (3, 4), (2, 2))
    assert np.shares_memory(v, a)
    for i in range(3):
        for j in range(4):
            np.testing.assert_array_equal(v[:, :, i, j], a[:, :, 1 + 2 * i, 2 + 2 * j])


@pytest.mark.parametrize("backend", list(POOL))
def test_every_backend_takes_numpy_integers_and_refuses_bools(backend):
    pool, conv, x = POOL[backend], CONV[backend], np.ones((1, 1, 4, 4))
    np.testing.assert_allclose(
        pool.avg_pool2d(x, np.int64(2), np.int64(2), np.int64(0)), np.ones((1, 1, 2, 2))
    )
    np.testing.assert_allclose(
        conv.conv2d(x, np.ones((1, 1, 3, 3)), np.int64(1), np.int64(1))[0, 0, 1, 1], 9.0
    )
    with pytest.raises(TypeError, match="kernel_size"):
        pool.max_pool2d(x, True, 1, 0)
    with pytest.raises(TypeError, match="stride"):
        conv.conv2d(x, np.ones((1, 1, 3, 3)), 1.0, 1)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        conv.conv2d(x, np.ones((1, 1, 3, 3)), 1, -1)


@pytest.mark.parametrize("backend", list(POOL))
def test_pooling_index_policy(backend):
    # Every backend checks a given idx before reading or writing: integer dtype, the expected
    # shape, every entry in [0, H*W); nothing wraps around or is clipped.
    mod, gy, gx = POOL[backend], np.ones((1, 2, 2, 2)), np.arange(32.0).reshape(1, 2, 4, 4)
    idx = np.array([0, 5, 10, 15], dtype=np.int64).reshape(1, 1, 2, 2).repeat(2, axis=1)
    for dtype in (np.int32, np.uint16):  # any integer dtype is taken
        np.testing.assert_array_equal(
            mod.max_pool2d_gather(gx, idx.astype(dtype))[0, 1].ravel(), [16.0, 21.0, 26.0, 31.0]
        )
    for bad in (16, -1, -16):
        wrong = idx.copy()
        wrong[0, 1, 1, 1] = bad
        with pytest.raises(ValueError, match=r"idx must lie in \[0, 16\)"):
            mod.max_pool2d_scatter(gy, wrong, (4, 4))
        with pytest.raises(ValueError, match=r"idx must lie in \[0, 16\)"):
            mod.max_pool2d_gather(gx, wrong)
    with pytest.raises(TypeError, match="integer array"):
        mod.max_pool2d_scatter(gy, idx.astype(np.float64), (4, 4))
    with pytest.raises(ValueError, match="idx has shape"):
        mod.max_pool2d_gather(gx, idx[:, :1])


def test_functional_takes_numpy_integers_and_reports_the_kernels_errors():
    x = te.ones(1, 2, 6, 6)
    assert F.conv2d(x, te.ones(3, 2, 3, 3), stride=np.int64(2), padding=np.int64(1)).shape == (1, 3, 3, 3)
    assert F.avg_pool2d(x, np.int64(2)).shape == (1, 2, 3, 3)
    assert F.interpolate(x, size=np.int64(4)).shape == (1, 2, 4, 4)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints"):
        F.max_pool2d(x, 2.0)
    with pytest.raises(ValueError, match="stride must be positive"):
        F.conv2d(x, te.ones(3, 2, 3, 3), stride=0)
    with pytest.raises(ValueError, match="size must be at least 1x1"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match="conv2d: bias has shape"):
        F.conv2d(x, te.ones(3, 2, 3, 3), te.ones(2))
    with pytest.raises(TypeError, match="kernel_size"):
        te.nn.Conv2d(2, 3, kernel_size=True)
