"""Pooling kernels for NumPy arrays, compiled with Numba.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.pool` (PyTorch's
``avg_pool2d`` with ``count_include_pad=True`` and ``max_pool2d``, ``ceil_mode=False``). Each
kernel works on the (N*C, H, W) planes of a C-contiguous input, one after another. The kernels
are serial on purpose: a ``parallel=True`` kernel that runs right after an OpenBLAS matmul waits
for BLAS's spinning threads (see ``cpu/conv.py`` and ``docs/benchmarks.md``). Each output
sums (or compares) its window in row-major order, as the reference and PyTorch do, so the
results agree bit for bit with the reference.
"""

from __future__ import annotations

import numpy as np

from tinyexit.backend.geometry import IntPair, check_index, check_nchw, check_pool_grad, pair, pool_geometry

from .jit import njit

# The kernels index the flat input plane with unsigned indices: every index here is non-negative,
# and an unsigned one spares Numba its negative-index wraparound.


@njit(cache=True)
def _avg_pool(x, y, height, width, kh, kw, sh, sw, ph, pw, div):  # pragma: no cover
    for p in range(y.shape[0]):
        for i in range(y.shape[1]):
            h0 = i * sh - ph
            for j in range(y.shape[2]):
                w0 = j * sw - pw
                acc = div - div  # a zero of the array dtype
                for h in range(max(h0, 0), min(h0 + kh, height)):
                    row = (p * height + h) * width
                    for w in range(max(w0, 0), min(w0 + kw, width)):
                        acc += x[np.uint64(row + w)]
                y[p, i, j] = acc / div


@njit(cache=True)
def _avg_pool_adjoint(gy, gx, height, width, kh, kw, sh, sw, ph, pw, div):  # pragma: no cover
    for p in range(gy.shape[0]):
        for i in range(gy.shape[1]):
            h0 = i * sh - ph
            for j in range(gy.shape[2]):
                w0 = j * sw - pw
                g = gy[p, i, j] / div
                for h in range(max(h0, 0), min(h0 + kh, height)):
                    row = (p * height + h) * width
                    for w in range(max(w0, 0), min(w0 + kw, width)):
                        gx[np.uint64(row + w)] += g


@njit(cache=True)
def _max_pool(x, y, idx, height, width, kh, kw, sh, sw, ph, pw):  # pragma: no cover
    for p in range(y.shape[0]):
        for i in range(y.shape[1]):
            h0 = i * sh - ph
            hs, he = max(h0, 0), min(h0 + kh, height)
            for j in range(y.shape[2]):
                w0 = j * sw - pw
                ws, we = max(w0, 0), min(w0 + kw, width)
                arg = hs * width + ws
                best = x[np.uint64(p * height * width + arg)]
                for h in range(hs, he):
                    row = (p * height + h) * width
                    for w in range(ws, we):
                        v = x[np.uint64(row + w)]
                        # Strictly greater: the first maximum wins; the first NaN beats numbers.
                        if v > best or (v != v and best == best):
                            best, arg = v, h * width + w
                y[p, i, j] = best
                idx[p, i, j] = arg


@njit(cache=True)
def _scatter(gy, idx, gx):  # pragma: no cover
    for p in range(gy.shape[0]):
        for k in range(gy.shape[1]):
            gx[p, idx[p, k]] += gy[p, k]


@njit(cache=True)
def _gather(gx, idx, y):  # pragma: no cover
    for p in range(y.shape[0]):
        for k in range(y.shape[1]):
            y[p, k] = gx[p, idx[p, k]]


def _planes(x: np.ndarray) -> np.ndarray:
    """Return the C-contiguous (N*C, H, W) view (or copy) of an NCHW array."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x).reshape(n * c, h, w)


def _flat(x: np.ndarray) -> np.ndarray:
    """Return the C-contiguous 1-d view (or copy) of an array."""
    return np.ascontiguousarray(x).reshape(-1)


def _rows(x: np.ndarray, dtype=None) -> np.ndarray:
    """Return the C-contiguous (N*C, H*W) view (or copy) of an NCHW array, cast to ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype).reshape(x.shape[0] * x.shape[1], -1)


def avg_pool2d(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d`, compiled with Numba."""
    check_nchw(x)
    (kh, kw), (sh, sw), (ph, pw), out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    y = np.empty((x.shape[0] * x.shape[1],) + out, dtype=x.dtype)
    _avg_pool(_flat(x), y, x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw, x.dtype.type(kh * kw))
    return y.reshape(x.shape[:2] + out)


def avg_pool2d_adjoint(
    gy: np.ndarray, input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d_adjoint`, compiled with Numba."""
    check_nchw(gy, "gy")
    (kh, kw), (sh, sw), (ph, pw), out = pool_geometry(input_hw, kernel_size, stride, padding)
    check_pool_grad(gy, out)
    h, w = input_hw
    gx = np.zeros(gy.shape[:2] + (h, w), dtype=gy.dtype)
    div = gy.dtype.type(kh * kw)
    _avg_pool_adjoint(_planes(gy), gx.reshape(-1), h, w, kh, kw, sh, sw, ph, pw, div)
    return gx


def max_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`tinyexit.backend.reference.pool.max_pool2d`, compiled with Numba."""
    check_nchw(x)
    (kh, kw), (sh, sw), (ph, pw), out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    shape = (x.shape[0] * x.shape[1],) + out
    y, idx = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    _max_pool(_flat(x), y, idx, x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw)
    return y.reshape(x.shape[:2] + out), idx.reshape(x.shape[:2] + out)


def max_pool2d_scatter(gy: np.ndarray, idx: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_scatter`, compiled with Numba."""
    check_nchw(gy, "gy")
    h, w = pair(input_hw, "input_hw")
    check_index(idx, gy.shape, h * w)
    gx = np.zeros((gy.shape[0] * gy.shape[1], h * w), dtype=gy.dtype)
    _scatter(_rows(gy), _rows(idx, np.int64), gx)
    return gx.reshape(gy.shape[:2] + (h, w))


def max_pool2d_gather(gx: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_gather`, compiled with Numba."""
    check_nchw(gx, "gx")
    check_index(idx, gx.shape[:2] + idx.shape[2:], gx.shape[2] * gx.shape[3])
    y = np.empty((gx.shape[0] * gx.shape[1], idx.shape[2] * idx.shape[3]), dtype=gx.dtype)
    _gather(_rows(gx), _rows(idx, np.int64), y)
    return y.reshape(idx.shape)
