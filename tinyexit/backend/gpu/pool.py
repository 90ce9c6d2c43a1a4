"""Pooling kernels for CuPy arrays, written with the array-module idiom.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.pool`. Nothing here
loops over pixels: a ``kh x kw`` pooling is ``kh*kw`` whole-array operations, one per window
offset ``(a, b)``, on the strided view ``xpad[:, :, a::sh, b::sw]`` of the padded input that
holds, for every output position, the element at that offset of its window. The code runs
unchanged on NumPy arrays, which is how it is tested on machines without a GPU; CuPy is never
imported here.
"""

from __future__ import annotations

from tinyexit.backend import array_module
from tinyexit.backend.geometry import (
    IntPair,
    check_index,
    check_nchw,
    check_pool_grad,
    pair,
    pool_geometry,
    window,
)


def _pad(xp, x, padding: tuple[int, int], value: float):
    """Pad the two spatial axes of ``x`` by ``padding`` with the constant ``value``."""
    if padding == (0, 0):
        return x
    widths = ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1]))
    return xp.pad(x, widths, mode="constant", constant_values=value)


def avg_pool2d(x, kernel_size: IntPair, stride: IntPair | None, padding: IntPair):
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d`, for CuPy arrays."""
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    xpad = _pad(array_module(x), x, p, 0)
    y = window(xpad, 0, 0, out, s).copy()
    for a in range(k[0]):
        for b in range(k[1]):
            if a or b:
                y += window(xpad, a, b, out, s)
    y /= k[0] * k[1]
    return y


def avg_pool2d_adjoint(
    gy, input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
):
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d_adjoint`, for CuPy arrays."""
    check_nchw(gy, "gy")
    k, s, p, out = pool_geometry(input_hw, kernel_size, stride, padding)
    check_pool_grad(gy, out)
    (h, w), xp = input_hw, array_module(gy)
    g = gy / (k[0] * k[1])
    gpad = xp.zeros(gy.shape[:2] + (h + 2 * p[0], w + 2 * p[1]), dtype=gy.dtype)
    for a in range(k[0]):
        for b in range(k[1]):
            view = window(gpad, a, b, out, s)
            view += g
    return xp.ascontiguousarray(gpad[:, :, p[0] : p[0] + h, p[1] : p[1] + w])


def max_pool2d(x, kernel_size: IntPair, stride: IntPair | None, padding: IntPair):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d`, for CuPy arrays."""
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    xp, width = array_module(x), x.shape[3]
    xpad = _pad(xp, x, p, float("-inf"))
    # Flat input index of each window's top-left corner (it may lie in the padding).
    rows = xp.arange(out[0], dtype=xp.int64)[:, None] * s[0] - p[0]
    cols = xp.arange(out[1], dtype=xp.int64) * s[1] - p[1]
    corner = rows * width + cols
    # Start from -inf at the first real element: an all -inf window points there, as in PyTorch.
    best = xp.full(x.shape[:2] + out, float("-inf"), dtype=x.dtype)
    idx = xp.empty(x.shape[:2] + out, dtype=xp.int64)
    idx[...] = xp.maximum(rows, 0) * width + xp.maximum(cols, 0)
    for a in range(k[0]):
        for b in range(k[1]):
            v = window(xpad, a, b, out, s)
            # v > best, or v is NaN; never once best is NaN. Strict, so the first maximum wins.
            better = ~(v <= best) & (best == best)
            xp.copyto(best, v, where=better)
            xp.copyto(idx, xp.broadcast_to(corner + (a * width + b), idx.shape), where=better)
    return best, idx


def max_pool2d_scatter(gy, idx, input_hw: tuple[int, int]):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_scatter`, for CuPy arrays."""
    check_nchw(gy, "gy")
    (h, w), xp = pair(input_hw, "input_hw"), array_module(gy)
    check_index(idx, gy.shape, h * w)
    gx = xp.zeros(gy.shape[:2] + (h, w), dtype=gy.dtype)
    xp.add.at(gx.reshape(-1), _global_index(xp, idx, h * w).reshape(-1), gy.reshape(-1))
    return gx


def max_pool2d_gather(gx, idx):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_gather`, for CuPy arrays."""
    check_nchw(gx, "gx")
    check_index(idx, gx.shape[:2] + idx.shape[2:], gx.shape[2] * gx.shape[3])
    xp = array_module(gx)
    flat = xp.ascontiguousarray(gx).reshape(-1)
    return flat[_global_index(xp, idx, gx.shape[2] * gx.shape[3])]


def _global_index(xp, idx, plane_size: int):
    """Turn per-plane flat indices (N, C, Ho, Wo) into indices of the whole flattened array."""
    n, c = idx.shape[:2]
    offsets = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * plane_size
    return offsets + idx
