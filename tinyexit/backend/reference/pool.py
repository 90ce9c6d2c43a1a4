"""Pooling kernels in plain NumPy: the readable specification and the test oracle.

Semantics are PyTorch's ``avg_pool2d`` (``count_include_pad=True``, ``ceil_mode=False``) and
``max_pool2d`` (``dilation=1``, ``ceil_mode=False``) on NCHW arrays. Every output position
``(i, j)`` owns the window of rows ``i*sh - ph .. i*sh - ph + kh - 1`` and columns
``j*sw - pw .. j*sw - pw + kw - 1`` of the zero-padded (average) or ``-inf``-padded (max) input.
Because PyTorch forbids ``padding > kernel_size // 2``, every window holds at least one real
input element, so below we simply clip each window to the input.

The argument checks and the policy for out-of-range max-pooling indices live in
:mod:`tinyexit.backend.geometry`.
"""

from __future__ import annotations

import numpy as np

from tinyexit.backend.geometry import IntPair, check_index, check_nchw, check_pool_grad, pair, pool_geometry


def _windows(hw, ho_wo, k, s, p):
    """Yield ``(i, j, rows, cols)``: each output position and its window clipped to the input."""
    for i in range(ho_wo[0]):
        h0 = i * s[0] - p[0]
        rows = slice(max(h0, 0), min(h0 + k[0], hw[0]))
        for j in range(ho_wo[1]):
            w0 = j * s[1] - p[1]
            yield i, j, rows, slice(max(w0, 0), min(w0 + k[1], hw[1]))


def avg_pool2d(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` with ``count_include_pad=True``.

    Args:
        x: Input of shape (N, C, H, W), float32 or float64.
        kernel_size: Window size, an int or ``(kh, kw)``.
        stride: Window step, an int or ``(sh, sw)``; ``None`` means ``kernel_size``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        The pooled array of shape (N, C, Ho, Wo), same dtype as ``x``.
    """
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    y = np.empty(x.shape[:2] + out, dtype=x.dtype)
    for i, j, rows, cols in _windows(x.shape[2:], out, k, s, p):
        # Padded zeros add nothing to the sum but count in the divisor kh*kw.
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / (k[0] * k[1])
    return y


def avg_pool2d_adjoint(
    gy: np.ndarray, input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> np.ndarray:
    """Adjoint (transpose) of :func:`avg_pool2d` in its input: the gradient of the input.

    Args:
        gy: Array of the output's shape (N, C, Ho, Wo).
        input_hw: ``(H, W)`` of the pooled input.
        kernel_size: As in :func:`avg_pool2d`.
        stride: As in :func:`avg_pool2d`.
        padding: As in :func:`avg_pool2d`.

    Returns:
        ``gx`` of shape (N, C, H, W) with ``<avg_pool2d(x), gy> == <x, gx>`` for every ``x``.
    """
    check_nchw(gy, "gy")
    k, s, p, out = pool_geometry(input_hw, kernel_size, stride, padding)
    check_pool_grad(gy, out)
    gx = np.zeros(gy.shape[:2] + tuple(input_hw), dtype=gy.dtype)
    for i, j, rows, cols in _windows(input_hw, out, k, s, p):
        gx[:, :, rows, cols] += gy[:, :, i, j, None, None] / (k[0] * k[1])
    return gx


def max_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling with indices, as ``torch.nn.functional.max_pool2d(..., return_indices=True)``.

    Padding counts as ``-inf`` and is never chosen; among equal maxima the first in row-major
    order wins, and a NaN counts as the largest value.

    Args:
        x: Input of shape (N, C, H, W), float32 or float64.
        kernel_size: Window size, an int or ``(kh, kw)``.
        stride: Window step, an int or ``(sh, sw)``; ``None`` means ``kernel_size``.
        padding: ``-inf`` padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``(y, idx)``: the maxima (N, C, Ho, Wo) in ``x``'s dtype and their int64 flat indices
        ``h*W + w`` in the (unpadded) input plane.
    """
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    n, c, _, width = x.shape
    y = np.empty((n, c) + out, dtype=x.dtype)
    idx = np.empty((n, c) + out, dtype=np.int64)
    for i, j, rows, cols in _windows(x.shape[2:], out, k, s, p):
        window = x[:, :, rows, cols].reshape(n, c, -1)
        a = window.argmax(axis=2)  # first maximum (or first NaN) in row-major order
        ww = cols.stop - cols.start
        y[:, :, i, j] = np.take_along_axis(window, a[:, :, None], axis=2)[:, :, 0]
        idx[:, :, i, j] = (rows.start + a // ww) * width + cols.start + a % ww
    return y, idx


def max_pool2d_scatter(gy: np.ndarray, idx: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """Scatter-add ``gy`` to the argmax positions: the input-gradient of :func:`max_pool2d`.

    Args:
        gy: Array of shape (N, C, Ho, Wo).
        idx: Flat indices ``h*W + w`` of the same shape, as returned by :func:`max_pool2d`.
        input_hw: ``(H, W)`` of the pooled input.

    Returns:
        ``gx`` (N, C, H, W) with ``gx[n, c].flat[idx[n, c, i, j]] += gy[n, c, i, j]``.
    """
    check_nchw(gy, "gy")
    input_hw = pair(input_hw, "input_hw")
    check_index(idx, gy.shape, input_hw[0] * input_hw[1])
    n, c = gy.shape[:2]
    gx = np.zeros((n, c, input_hw[0] * input_hw[1]), dtype=gy.dtype)
    planes = np.arange(n * c).reshape(n, c, 1)
    np.add.at(gx.reshape(n * c, -1), (planes, idx.reshape(n, c, -1)), gy.reshape(n, c, -1))
    return gx.reshape((n, c) + tuple(input_hw))


def max_pool2d_gather(gx: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Gather ``gx`` at the argmax positions: the adjoint of :func:`max_pool2d_scatter`.

    Args:
        gx: Array of shape (N, C, H, W).
        idx: Flat indices ``h*W + w`` of shape (N, C, Ho, Wo).

    Returns:
        ``y`` (N, C, Ho, Wo) with ``y[n, c, i, j] = gx[n, c].flat[idx[n, c, i, j]]``.
    """
    check_nchw(gx, "gx")
    check_index(idx, gx.shape[:2] + idx.shape[2:], gx.shape[2] * gx.shape[3])
    n, c = gx.shape[:2]
    flat = gx.reshape(n, c, -1)
    return np.take_along_axis(flat, idx.reshape(n, c, -1), axis=2).reshape(idx.shape)
