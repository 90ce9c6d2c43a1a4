"""Batch normalisation kernels for the CPU: per channel, read twice and write once.

NumPy needs a pass and a temporary array for every step of the formula (mean, centre, square,
mean, scale, shift: nine passes over the activations, more in the backward). These kernels see
the input as (N, C, L) and take each channel's statistics in two reading passes (the mean, then
the centred sums, which stay accurate when the mean is large against the spread: the corrected
two-pass algorithm) and write the output in a third. The sums run in float64 and may be
reordered (``reassoc``), which lets LLVM vectorise them.
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
        shift = squares = 0.0
        for i in range(n):
            row = x[i, c]
            for j in range(length):
                d = row[j] - mu
                shift += d
                squares += d * d
        # the corrected two-pass formulas: Σd is 0 but for the rounding of μ, and taking it out
        # makes a constant channel's variance exactly 0 even at large magnitudes (an inf in the
        # channel makes Σd NaN: the mean stays inf, as NumPy's)
        mean[c] = mu + shift / count if np.isfinite(shift) else mu
        v = squares - shift * shift / count
        var[c] = 0.0 if v < 0 else v / count  # NaN stays NaN


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


@njit(cache=True, fastmath={"reassoc"})
def _second_order_sums(x, gy, ggx, mean, sums):  # pragma: no cover - compiled
    """Per channel: sums[c] = (Σ gy, Σ gy·(x − μ), Σ ggx, Σ ggx·(x − μ), Σ ggx·gy)."""
    for c in range(x.shape[1]):
        s_g = s_gc = s_h = s_hc = s_hg = 0.0
        mu = mean[c]
        for i in range(x.shape[0]):
            row, grow, hrow = x[i, c], gy[i, c], ggx[i, c]
            for j in range(row.size):
                d = row[j] - mu
                s_g += grow[j]
                s_gc += grow[j] * d
                s_h += hrow[j]
                s_hc += hrow[j] * d
                s_hg += hrow[j] * grow[j]
        sums[c, 0], sums[c, 1], sums[c, 2], sums[c, 3], sums[c, 4] = s_g, s_gc, s_h, s_hc, s_hg


@njit(cache=True)
def _second_order_write(x, gy, ggx, mean, k, g_x, g_gy):  # pragma: no cover - compiled
    """g_x = k0·ggx + k1·gy + k2 + k3·(x − μ) and g_gy = k4·ggx + k5 + k6·(x − μ), per channel."""
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            row, grow, hrow, out_x, out_gy = x[i, c], gy[i, c], ggx[i, c], g_x[i, c], g_gy[i, c]
            mu = mean[c]
            k0, k1, k2, k3, k4, k5, k6 = k[c, 0], k[c, 1], k[c, 2], k[c, 3], k[c, 4], k[c, 5], k[c, 6]
            for j in range(row.size):
                d = row[j] - mu
                out_x[j] = k0 * hrow[j] + k1 * grow[j] + k2 + k3 * d
                out_gy[j] = k4 * hrow[j] + k5 + k6 * d


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


def batch_norm_grad_grad(
    x: np.ndarray,
    w: np.ndarray,
    gy: np.ndarray,
    ggx: np.ndarray,
    ggw: np.ndarray,
    ggb: np.ndarray,
    mean: np.ndarray,
    s: np.ndarray,
):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm_grad_grad`.

    Every channel mean of the formula is a combination of five sums taken in one pass, so both
    outputs are written in a single pass, each entry a combination of ggx, gy and x − μ with
    per-channel coefficients. With g = ⟨gy⟩, gx̂ = ⟨gy·x̂⟩, h = ⟨ggx⟩, hx̂ = ⟨ggx·x̂⟩ and
    E = ⟨ggx·P(gy)⟩ = ⟨ggx·gy⟩ − g·h − gx̂·hx̂: g_w = n·s·E; u = α·ggx + β·gy with α = −a·gx̂,
    β = ggw − a·hx̂, so ⟨u⟩ = α·h + β·g and ⟨u·x̂⟩ = α·hx̂ + β·gx̂; then
    g_x = s·(u − ⟨u⟩) − (x − μ)·s²·(⟨u·x̂⟩ + a·E) and g_gy = a·ggx + (ggb − a·h) + (x − μ)·s·(ggw − a·hx̂).
    """
    x3, g3, h3 = _as_ncl(x, x.dtype), _as_ncl(gy, x.dtype), _as_ncl(ggx, x.dtype)
    c, n = x3.shape[1], x3.size // x3.shape[1]
    sums = np.empty((c, 5))
    _second_order_sums(x3, g3, h3, mean.astype(np.float64), sums)
    s = s.astype(np.float64)
    a = w * s
    g, gxh, h, hxh = sums[:, 0] / n, sums[:, 1] * s / n, sums[:, 2] / n, sums[:, 3] * s / n
    e = sums[:, 4] / n - g * h - gxh * hxh
    alpha, beta = -a * gxh, ggw - a * hxh
    k = np.stack(
        [
            s * alpha,
            s * beta,
            -s * (alpha * h + beta * g),
            -s * s * (alpha * hxh + beta * gxh + a * e),
            a,
            ggb - a * h,
            s * (ggw - a * hxh),
        ],
        axis=1,
    ).astype(x.dtype)
    g_x, g_gy = np.empty(x3.shape, x.dtype), np.empty(x3.shape, x.dtype)
    _second_order_write(x3, g3, h3, mean.astype(x.dtype), k, g_x, g_gy)
    return g_x.reshape(x.shape), (n * s * e).astype(x.dtype), g_gy.reshape(x.shape)
