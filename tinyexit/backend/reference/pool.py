"""Pooling kernels in plain NumPy: the readable specification and the test oracle.

Semantics are PyTorch's ``avg_pool2d`` (``count_include_pad=True``, ``ceil_mode=False``) and
``max_pool2d`` (``dilation=1``, ``ceil_mode=False``) on NCHW arrays. Every output position
``(i, j)`` owns the window of rows ``i*sh - ph .. i*sh - ph + kh - 1`` and columns
``j*sw - pw .. j*sw - pw + kw - 1`` of the zero-padded (average) or ``-inf``-padded (max) input.
Because PyTorch forbids ``padding > kernel_size // 2``, every window holds at least one real
input element, so below we simply clip each window to the input.

The argument checks (:func:`pool_geometry`, :func:`check_input`, :func:`check_idx`, ...) are
shared by the ``cpu`` and ``gpu`` backends, so that all three raise the same errors.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

IntPair = int | tuple[int, int]


def as_pair(value: IntPair, name: str) -> tuple[int, int]:
    """Return ``value`` as a pair of Python ints (an int ``v`` becomes ``(v, v)``)."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_input(x, name: str = "input") -> None:
    """Raise unless ``x`` is a 4-d (N, C, H, W) float32 or float64 array."""
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-d (N, C, H, W) array, got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")


def pool_geometry(
    input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Check pooling arguments as PyTorch does and compute the output size.

    Args:
        input_hw: Height and width ``(H, W)`` of the unpadded input.
        kernel_size: Window size, an int or ``(kh, kw)``.
        stride: Window step, an int or ``(sh, sw)``; ``None`` means ``kernel_size``.
        padding: Implicit padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``((kh, kw), (sh, sw), (ph, pw), (Ho, Wo))`` with ``Ho = (H + 2*ph - kh) // sh + 1``.

    Raises:
        ValueError: On non-positive kernel or stride, negative padding, padding larger than
            half the kernel, or an output smaller than 1x1.
    """
    k = as_pair(kernel_size, "kernel_size")
    s = k if stride is None else as_pair(stride, "stride")
    p = as_pair(padding, "padding")
    hw = as_pair(tuple(input_hw), "input_hw")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(
            f"kernel_size and stride must be positive and padding non-negative, got "
            f"kernel_size={k}, stride={s}, padding={p}"
        )
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"padding should be at most half of kernel size, got padding={p}, kernel_size={k}"
        )
    out = tuple((n + 2 * pad - kk) // st + 1 for n, kk, st, pad in zip(hw, k, s, p))
    if min(hw) < 1 or min(out) < 1:
        raise ValueError(
            f"input of size {hw} is too small for kernel_size={k}, stride={s}, padding={p}: "
            f"the output size would be {out}"
        )
    return k, s, p, out


def _windows(hw, ho_wo, k, s, p):
    """Yield ``(i, j, rows, cols)``: each output position and its window clipped to the input."""
    for i in range(ho_wo[0]):
        h0 = i * s[0] - p[0]
        rows = slice(max(h0, 0), min(h0 + k[0], hw[0]))
        for j in range(ho_wo[1]):
            w0 = j * s[1] - p[1]
            yield i, j, rows, slice(max(w0, 0), min(w0 + k[1], hw[1]))


def avg_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` with ``count_include_pad=True``.

    Args:
        x: Input of shape (N, C, H, W), float32 or float64.
        kernel_size: Window size, an int or ``(kh, kw)``.
        stride: Window step, an int or ``(sh, sw)``; ``None`` means ``kernel_size``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        The pooled array of shape (N, C, Ho, Wo), same dtype as ``x``.
    """
    check_input(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    y = np.empty(x.shape[:2] + out, dtype=x.dtype)
    for i, j, rows, cols in _windows(x.shape[2:], out, k, s, p):
        # Padded zeros add nothing to the sum but count in the divisor kh*kw.
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / (k[0] * k[1])
    return y


def avg_pool2d_adjoint(
    gy: np.ndarray,
    input_hw: tuple[int, int],
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
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
    check_input(gy, "gy")
    k, s, p, out = pool_geometry(input_hw, kernel_size, stride, padding)
    check_output_shape(gy, out)
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
    check_input(x)
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
    check_input(gy, "gy")
    input_hw = as_pair(tuple(input_hw), "input_hw")
    check_idx(idx, gy.shape, input_hw[0] * input_hw[1])
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
    check_input(gx, "gx")
    check_idx(idx, gx.shape[:2] + idx.shape[2:], gx.shape[2] * gx.shape[3])
    n, c = gx.shape[:2]
    flat = gx.reshape(n, c, -1)
    return np.take_along_axis(flat, idx.reshape(n, c, -1), axis=2).reshape(idx.shape)


def check_output_shape(gy, out: tuple[int, int]) -> None:
    """Raise unless ``gy`` has the spatial size ``out`` that the pooling produces."""
    if tuple(gy.shape[2:]) != tuple(out):
        raise ValueError(
            f"gy has spatial size {tuple(gy.shape[2:])} but the pooling gives {tuple(out)}"
        )


def check_idx(idx, shape, plane_size: int | None = None) -> None:
    """Raise unless ``idx`` is an integer array of ``shape``, in ``[0, plane_size)`` if given."""
    if idx.dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array, got {idx.dtype}")
    if idx.ndim != 4 or tuple(idx.shape) != tuple(shape):
        raise ValueError(f"idx has shape {tuple(idx.shape)}, expected {tuple(shape)}")
    if plane_size is not None and idx.size and not (0 <= idx.min() and idx.max() < plane_size):
        raise ValueError(f"idx must lie in [0, {plane_size}), the flat input-plane positions")
