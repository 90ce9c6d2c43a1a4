"""Batch normalisation with batch statistics, written out per channel: the specification.

For an input ``x`` of shape (N, C, ...) the statistics of channel c are taken over the
``n = x.size // C`` values of that channel (batch and spatial axes), with the biased variance:

    μ = ⟨x⟩,  σ² = ⟨(x − μ)²⟩,  s = (σ² + eps)^(-1/2),  x̂ = (x − μ)·s,  y = w·x̂ + b

and, for an output gradient gy, gb = Σ gy, gw = Σ gy·x̂ and gx = w·s·(gy − gb/n − x̂·gw/n).
"""

from __future__ import annotations

import numpy as np


def _per_channel(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, ...) as (C, n): the values of each channel in one row."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


def _like(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo :func:`_per_channel`: rows (C, n) back to an (N, C, ...) array of ``shape``."""
    return np.ascontiguousarray(np.moveaxis(rows.reshape((shape[1], shape[0]) + shape[2:]), 0, 1))


def _statistics(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance of each row, by the corrected two-pass algorithm: the mean of the
    deviations from a first mean is 0 but for that mean's rounding, and adding it back makes a
    constant row's variance exactly 0 even at magnitudes where the first mean is inexact."""
    mean = rows.mean(axis=1)
    with np.errstate(invalid="ignore"):
        shift = (rows - mean[:, None]).mean(axis=1)
    mean = np.where(np.isfinite(shift), mean + shift, mean)  # an inf keeps the mean inf
    return mean, np.square(rows - mean[:, None]).mean(axis=1)


def batch_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float):
    """Normalise each channel of ``x`` with its batch statistics.

    Args:
        x: input of shape (N, C, ...).
        w: scale per channel, shape (C,).
        b: shift per channel, shape (C,).
        eps: added to the variance.

    Returns:
        ``(y, mean, var)``: y of the shape of x, and the mean and biased variance per channel (C,).
    """
    rows = _per_channel(x)
    mean, var = _statistics(rows)
    s = 1 / np.sqrt(var + eps)
    y = (rows - mean[:, None]) * (w * s)[:, None] + b[:, None]
    return _like(y.astype(x.dtype, copy=False), x.shape), mean, var


def batch_norm_grad(x: np.ndarray, w: np.ndarray, gy: np.ndarray, mean: np.ndarray, s: np.ndarray):
    """The gradients of :func:`batch_norm` for the output gradient ``gy``.

    Args:
        x: the forward input (N, C, ...).
        w: scale per channel (C,).
        gy: gradient of the output, shape of x.
        mean: the forward's mean per channel (C,).
        s: the forward's 1 / sqrt(var + eps) per channel (C,).

    Returns:
        ``(gx, gw, gb)``: gx of the shape of x, gw and gb of shape (C,).
    """
    rows, grows = _per_channel(x), _per_channel(gy)
    n = rows.shape[1]
    xhat = (rows - mean[:, None]) * s[:, None]
    gb = grows.sum(axis=1)
    gw = (grows * xhat).sum(axis=1)
    gx = (w * s)[:, None] * (grows - gb[:, None] / n - xhat * gw[:, None] / n)
    return _like(gx.astype(x.dtype, copy=False), x.shape), gw, gb


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
    """The vector-Jacobian product of :func:`batch_norm_grad` (x, w, gy) -> (gx, gw, gb).

    With ⟨u⟩ a channel's mean, x̂ = (x − μ)·s from the forward's ``mean`` and ``s`` (C,), a = w·s and the projection
    P(u) = u − ⟨u⟩ − x̂·⟨u·x̂⟩ (so that gx = a·P(gy)), the gradients for the output gradients
    ``ggx`` (shape of x), ``ggw`` and ``ggb`` (C,) are

        g_gy = ggb + ggw·x̂ + a·P(ggx)
        g_w  = Σ ggx·P(gy)·s
        g_x  = s·P(u) − s·x̂·⟨ggx·a·P(gy)⟩,   u = −a·(ggx·⟨gy·x̂⟩ + gy·⟨ggx·x̂⟩) + ggw·gy

    Returns:
        ``(g_x, g_w, g_gy)``: g_x and g_gy of the shape of x, g_w of shape (C,).
    """
    rows, grows, hrows = _per_channel(x), _per_channel(gy), _per_channel(ggx)

    def avg(u: np.ndarray) -> np.ndarray:
        return u.mean(axis=1, keepdims=True)

    s = s[:, None]
    xh = (rows - mean[:, None]) * s
    a = w[:, None] * s

    def project(u: np.ndarray) -> np.ndarray:
        return u - avg(u) - xh * avg(u * xh)

    p_gy = project(grows)
    g_gy = ggb[:, None] + ggw[:, None] * xh + a * project(hrows)
    g_w = (hrows * p_gy * s).sum(axis=1)
    u = -a * (hrows * avg(grows * xh) + grows * avg(hrows * xh)) + ggw[:, None] * grows
    g_x = s * project(u) - s * xh * avg(hrows * a * p_gy)
    return (
        _like(g_x.astype(x.dtype, copy=False), x.shape),
        g_w.astype(x.dtype),
        _like(g_gy.astype(x.dtype, copy=False), x.shape),
    )
