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
    mean = rows.mean(axis=1)
    var = np.square(rows - mean[:, None]).mean(axis=1)
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
