"""Batch normalisation kernels for the CPU: per channel, read twice and write once.

NumPy needs a pass and a temporary array for every step of the formula (mean, centre, square,
mean, scale, shift: nine passes over the activations, more in the backward). These kernels see
the input as (N, C, L) and take each channel's statistics in two reading passes (the mean, then
the centred sum of squares, which stays accurate when the mean is large against the spread) and
write the output in a third. The sums run in float64 and may be reordered (``reassoc``), which
lets LLVM vectorise them.
"""

from __future__ import annotations

import numpy as np

from .jit import njit


@njit(cache=True, fastmath={"reassoc"})
def _statistics(x, mean, var):  # pragma: no cover - compiled
    n, channels, length = x.shape
    count = n * length
    for c in range(channels):
        total = 0.0
        for i in range(n):
            row = x[i, c]
            for j in range(length):
                total += row[j]
        mu = total / count
        total = 0.0
        for i in range(n):
            row = x[i, c]
            for j in range(length):
                d = row[j] - mu
                total += d * d
        mean[c] = mu
        var[c] = total / count


@njit(cache=True)
def _normalise(x, mean, scale, shift, y):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            row, out = x[i, c], y[i, c]
            mu, a, b = mean[c], scale[c], shift[c]
            for j in range(row.size):
                out[j] = (row[j] - mu) * a + b


@njit(cache=True, fastmath={"reassoc"})
def _gradient_sums(x, gy, mean, sum_gy, sum_gy_centred):  # pragma: no cover - compiled
    for c in range(x.shape[1]):
        total, total_centred = 0.0, 0.0
        for i in range(x.shape[0]):
            row, grow = x[i, c], gy[i, c]
            mu = mean[c]
            for j in range(row.size):
                total += grow[j]
                total_centred += grow[j] * (row[j] - mu)
        sum_gy[c] = total
        sum_gy_centred[c] = total_centred


@njit(cache=True)
def _input_gradient(x, gy, mean, a, offset, slope, gx):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            row, grow, out = x[i, c], gy[i, c], gx[i, c]
            mu, ac, oc, sc = mean[c], a[c], offset[c], slope[c]
            for j in range(row.size):
                out[j] = ac * grow[j] - oc - (row[j] - mu) * sc


def _as_ncl(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` (N, C, ...) as a contiguous (N, C, L) array of ``dtype``."""
    return np.ascontiguousarray(x, dtype).reshape(x.shape[0], x.shape[1], -1)


def batch_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm`."""
    x3 = _as_ncl(x, x.dtype)
    c = x3.shape[1]
    mean, var = np.empty(c), np.empty(c)
    _statistics(x3, mean, var)
    scale = w / np.sqrt(var + eps)
    y = np.empty(x3.shape, x.dtype)
    _normalise(x3, mean.astype(x.dtype), scale.astype(x.dtype), b.astype(x.dtype), y)
    return y.reshape(x.shape), mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_grad(x: np.ndarray, w: np.ndarray, gy: np.ndarray, mean: np.ndarray, s: np.ndarray):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm_grad`."""
    x3, g3 = _as_ncl(x, x.dtype), _as_ncl(gy, x.dtype)
    c, n = x3.shape[1], x3.size // x3.shape[1]
    gb, gy_centred = np.empty(c), np.empty(c)
    _gradient_sums(x3, g3, mean.astype(np.float64), gb, gy_centred)
    s64 = s.astype(np.float64)
    gw = gy_centred * s64  # Σ gy·x̂
    a = w * s64
    # gx = a·(gy − gb/n − x̂·gw/n) = a·gy − a·gb/n − (x − μ)·(a·s·gw/n)
    gx = np.empty(x3.shape, x.dtype)
    offset, slope = (a * gb / n).astype(x.dtype), (a * s64 * gw / n).astype(x.dtype)
    _input_gradient(x3, g3, mean.astype(x.dtype), a.astype(x.dtype), offset, slope, gx)
    return gx.reshape(x.shape), gw.astype(x.dtype), gb.astype(x.dtype)
