"""Batch normalisation for CuPy arrays, written with the array-module idiom (whole-array reductions).

Same functions, signatures and results as :mod:`tinyexit.backend.reference.normalization`; the
reductions run over the batch and spatial axes in place, without moving the channel axis first.
"""

from __future__ import annotations

from tinyexit.backend import array_module


def _axes(x) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _column(v, x):
    """A per-channel vector (C,) shaped (1, C, 1, ...) to broadcast against ``x``."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _statistics(x):
    """Mean and biased variance per channel, (C,) each, by the corrected two-pass algorithm (see
    the reference's ``_statistics``)."""
    xp = array_module(x)
    mean = x.mean(axis=_axes(x))
    shift = (x - _column(mean, x)).mean(axis=_axes(x))
    mean = xp.where(xp.isfinite(shift), mean + shift, mean)
    return mean, xp.square(x - _column(mean, x)).mean(axis=_axes(x))


def batch_norm(x, w, b, eps: float):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm`, for CuPy arrays."""
    xp = array_module(x)
    mean, var = _statistics(x)
    y = x - _column(mean, x)
    y *= _column((w / xp.sqrt(var + eps)).astype(x.dtype), x)
    y += _column(b.astype(x.dtype), x)
    return y, mean, var


def batch_norm_grad(x, w, gy, mean, s):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm_grad`, for CuPy arrays."""
    n = x.size // x.shape[1]
    gb = gy.sum(axis=_axes(x))
    xhat = (x - _column(mean, x)) * _column(s, x)
    gw = (gy * xhat).sum(axis=_axes(x))
    a = w * s
    gx = xhat * _column((gw * (-a / n)).astype(x.dtype), x)  # gx = a·(gy − gb/n − x̂·gw/n)
    gx += gy * _column(a.astype(x.dtype), x)
    gx -= _column((gb * (a / n)).astype(x.dtype), x)
    return gx, gw, gb


def batch_norm_grad_grad(x, w, gy, ggx, ggw, ggb, mean, s):
    """As :func:`tinyexit.backend.reference.normalization.batch_norm_grad_grad`, for CuPy arrays."""

    def avg(u):
        return u.mean(axis=_axes(x), keepdims=True)

    s = _column(s, x)
    xh = (x - _column(mean, x)) * s
    a = _column(w, x) * s

    def project(u):
        return u - avg(u) - xh * avg(u * xh)

    p_gy = project(gy)
    g_gy = _column(ggb, x) + _column(ggw, x) * xh + a * project(ggx)
    g_w = (ggx * p_gy * s).sum(axis=_axes(x))
    u = -a * (ggx * avg(gy * xh) + gy * avg(ggx * xh)) + _column(ggw, x) * gy
    g_x = s * project(u) - s * xh * avg(ggx * a * p_gy)
    return g_x.astype(x.dtype, copy=False), g_w.astype(x.dtype), g_gy.astype(x.dtype, copy=False)
