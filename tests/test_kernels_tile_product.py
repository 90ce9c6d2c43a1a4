"""The register-tiled matrix product of the CPU convolutions and the vector values it is built from."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyexit.backend.cpu import simd
from tinyexit.backend.cpu.products import _tile_product, whole_spans
from tinyexit.backend.cpu.simd import REGISTER_BYTES

DTYPES = [np.float32, np.float64]


def _lanes(dtype) -> int:
    return REGISTER_BYTES // np.dtype(dtype).itemsize


def _operands(m, k, n, dtype, seed=0, gather=False, packed=False):
    """``a`` (m x k) and ``b`` (k x n) as flat arrays with row and column offsets, padded as
    :func:`_tile_product` needs: ``c`` rows up to a multiple of 6, columns to one of the lanes.

    With ``gather``, ``a``'s rows are read from scattered starts of a larger array and its
    columns at a stride of 3, as the channels-last convolution reads windows of an image. With
    ``packed``, ``b`` is stored as ``k x 2w`` panels of two registers' columns one after the
    other, as the channels-last forward packs its weight; else row-major.
    """
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    rows, cols = -(-m // 6) * 6, -(-n // _lanes(dtype)) * _lanes(dtype)
    if gather:
        starts = rng.permutation(m + 2)[:m] * (3 * k)
        flat_a = np.zeros((m + 2) * 3 * k + 3 * k, dtype)
        for r in range(m):
            flat_a[starts[r] : starts[r] + 3 * k : 3] = a[r]
        a_rows, a_cols = np.concatenate([starts, np.zeros(rows - m, np.int64)]), np.arange(k) * 3
    else:
        flat_a = np.concatenate([a.reshape(-1), np.zeros(k, dtype)])
        a_rows, a_cols = np.minimum(np.arange(rows), m) * k, np.arange(k)
    panel = 2 * _lanes(dtype)
    if packed:
        panels = -(-n // panel)
        wide = np.zeros((k, panels * panel), dtype)
        wide[:, :n] = b
        flat_b = wide.reshape(k, panels, panel).transpose(1, 0, 2).reshape(-1)
        b_rows, b_panel = np.arange(k) * panel, k * panel
    else:
        flat_b = np.concatenate([b.reshape(-1), np.zeros(cols, dtype)])
        b_rows, b_panel = np.arange(k) * n, panel
    spans = whole_spans(rows, k)
    args = (flat_a, a_rows.astype(np.int64), a_cols.astype(np.uint64), flat_b, b_rows, b_panel, spans)
    return a, b, args, (rows, cols)


# (m, k, n): full 6-row tiles and leftover rows, tiles two registers wide, one wide, and both;
# k = 1 and k = 0 (an empty sum)
SHAPES = [
    (6, 5, 32),
    (7, 3, 16),
    (12, 40, 48),
    (1, 1, 1),
    (13, 17, 70),
    (5, 0, 20),
    (96, 864, 64),
    (64, 96, 40),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("gather", [False, True], ids=["contiguous", "gathered"])
@pytest.mark.parametrize("packed", [False, True], ids=["row-major", "packed"])
def test_tile_product_matches_numpy(shape, dtype, gather, packed):
    m, k, n = shape
    a, b, args, (rows, cols) = _operands(m, k, n, dtype, gather=gather, packed=packed)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5 * max(1, k))
    c = np.full((rows, cols), np.nan, dtype)  # overwritten, never read
    _tile_product(*args, c, False)
    np.testing.assert_allclose(c[:m, :n], expected, **tol)
    start = np.random.default_rng(1).standard_normal((rows, cols)).astype(dtype)
    c = start.copy()
    _tile_product(*args, c, True)
    np.testing.assert_allclose(c[:m, :n], start[:m, :n] + expected, **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("packed", [False, True], ids=["row-major", "packed"])
def test_tile_product_sums_each_tile_over_its_own_span(dtype, packed):
    # tile t of 6 rows sums over k in [spans[t, 0], spans[t, 1]) only: spans that start and end
    # anywhere, an empty one (its rows are 0, or stay as they were when accumulating) and a full one
    m, k, n = 30, 23, 40
    a, b, args, (rows, cols) = _operands(m, k, n, dtype, packed=packed)
    spans = np.array([[3, 17], [0, 23], [9, 9], [22, 23], [0, 1]], np.int64)
    expected = np.zeros((m, n))
    for t, (k0, k1) in enumerate(spans):
        expected[6 * t : 6 * t + 6] = a[6 * t : 6 * t + 6, k0:k1].astype(np.float64) @ b[k0:k1].astype(
            np.float64
        )
    tol = 1e-12 if dtype == np.float64 else 1e-4
    c = np.full((rows, cols), np.nan, dtype)
    _tile_product(*args[:-1], spans, c, False)
    np.testing.assert_allclose(c[:m, :n], expected, rtol=tol, atol=tol)
    start = np.ones((rows, cols), dtype)
    c = start.copy()
    _tile_product(*args[:-1], spans, c, True)
    np.testing.assert_allclose(c[:m, :n], 1 + expected, rtol=tol, atol=tol)


def test_tile_product_rounds_once_per_multiply_add():
    # (1 + 2^-12)^2 - 1 = 2^-11 + 2^-24 exactly; a float32 product rounded before the add loses the
    # 2^-24 (a tie, to even), a fused multiply-add keeps it
    lanes = _lanes(np.float32)
    x = np.float32(1 + 2.0**-12)
    args = (
        np.full(2, x),
        np.zeros(6, np.int64),
        np.zeros(1, np.uint64),
        np.full(2 * lanes, x),
        np.zeros(1, np.int64),
        2 * lanes,
        whole_spans(6, 1),
    )
    c = np.full((6, lanes), -1, np.float32)
    _tile_product(*args, c, True)
    assert np.all(c == np.float32(2.0**-11 + 2.0**-24))
    assert np.float32(x * x) - np.float32(1) == np.float32(2.0**-11)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 14),
    k=st.integers(0, 12),
    n=st.integers(1, 50),
    value=st.sampled_from([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e-30]),
    where=st.integers(0, 10_000),
)
def test_tile_product_propagates_extreme_values_as_numpy(m, k, n, value, where):
    a, b, args, (rows, cols) = _operands(m, k, n, np.float64, seed=where)
    if k:
        a[where % m, where % k] = value
        args[0][: m * k] = a.reshape(-1)
    c = np.empty((rows, cols))
    _tile_product(*args, c, False)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = np.einsum("ik,kj->ij", a, b) if k else np.zeros((m, n))
    np.testing.assert_allclose(c[:m, :n], expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_register_width_follows_the_cpu():
    assert REGISTER_BYTES in (16, 32, 64)
    assert _lanes(np.float32) * 4 == _lanes(np.float64) * 8 == REGISTER_BYTES
    from numba import njit

    @njit
    def lanes_of(x):
        return simd.lanes(x)

    assert lanes_of(np.zeros(1, np.float32)) == _lanes(np.float32)
    assert lanes_of(np.zeros(1, np.float64)) == _lanes(np.float64)


NARROW_REGISTERS = """
import numpy as np
from tinyexit.backend.cpu import conv, simd
from tinyexit.backend.reference import conv as ref
assert simd.REGISTER_BYTES == {width}, simd.REGISTER_BYTES
rng = np.random.default_rng(0)
for dtype, tol in ((np.float32, 1e-4), (np.float64, 1e-10)):
    for (n, c, h, o, k, s, p) in ((2, 9, 7, 13, 3, 1, 1), (2, 9, 8, 5, 3, 2, 1), (1, 3, 10, 20, 3, 1, 1)):
        x, w = rng.standard_normal((n, c, h, h)).astype(dtype), rng.standard_normal((o, c, k, k)).astype(dtype)
        y = ref.conv2d(x, w, s, p)
        gy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_allclose(conv.conv2d(x, w, s, p), y, rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(
            conv.conv2d_weight_grad(x, gy, (k, k), s, p), ref.conv2d_weight_grad(x, gy, (k, k), s, p),
            rtol=tol, atol=tol * 10,
        )
print("ok")
"""


@pytest.mark.parametrize(
    "cpu, features, width",
    [("haswell", "+avx,+avx2,+fma", 32), ("generic", "", 16)],
    ids=["avx2", "portable"],
)
def test_convolutions_on_narrower_registers(tmp_path, cpu, features, width):
    # the register width follows the CPU Numba compiles for: build for AVX2 and for a portable
    # target in a fresh process (their own kernel cache) and check both layouts of the forward
    # and the weight gradient, float32 and float64, against the reference
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", NARROW_REGISTERS.format(width=width)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(1,), (3, 864, 32), (5, 7), (2, 96, 32)], ids=str)
def test_packed_weight_starts_on_a_cache_line(shape, dtype):
    from tinyexit.backend.cpu.conv import _aligned_empty

    a = _aligned_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
    assert a.ctypes.data % 64 == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(8, 8), (16, 24), (13, 21), (64, 96), (3, 5), (0, 4), (9, 0)], ids=str)
def test_transpose_rows_in_8x8_register_blocks_matches_numpy(shape, dtype):
    # dst[j, i] = src[rows[i], j]: blocks of 8x8 in registers (simd.transpose_block) and the
    # edges one value at a time; rows in any order, src and dst with padded rows, dst narrower
    # than src's rows (the forward transposes only the first O columns of its product)
    from tinyexit.backend.cpu.layouts import _transpose, _transpose_rows

    rng = np.random.default_rng(0)
    count, cols = shape
    src = rng.standard_normal((count, cols + 5)).astype(dtype)[:, : cols + 3]
    rows = rng.permutation(count)
    dst = np.full((cols + 2, count + 7), np.nan, dtype)[:cols, :count]
    _transpose_rows(src, rows, dst)
    np.testing.assert_array_equal(dst, src[rows, :cols].T)
    whole = np.full((cols + 3, count), np.nan, dtype)
    _transpose(src, whole)
    np.testing.assert_array_equal(whole, src.T)
