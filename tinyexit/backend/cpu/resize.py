"""Bilinear resizing for NumPy arrays, compiled with Numba.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.resize`. The source
rows and columns with their weights are computed once per call
(:func:`tinyexit.backend.geometry.source_index`, as in the reference). Bilinear interpolation is
separable, so each plane is resized along its columns into a scratch plane and then along its
rows, in the reference's order of operations (``y = l0 * (m0*x00 + m1*x01) + l1 * (m0*x10 +
m1*x11)``); the second pass runs over contiguous rows and vectorises, which beats four gathers
per output pixel. The kernels are serial on purpose, as the pooling ones (see ``cpu/pool.py``).
"""

from __future__ import annotations

import numpy as np

from tinyexit.backend.geometry import IntPair, check_nchw, check_size, source_index

from .jit import njit


@njit(cache=True)
def _resize(x, y, h0, h1, lh0, lh1, w0, w1, lw0, lw1):  # pragma: no cover
    planes, height, _ = x.shape
    t = np.empty((height, y.shape[2]), dtype=y.dtype)  # one scratch plane
    for p in range(planes):
        for h in range(height):  # columns first: t = x @ A_w^T
            for j in range(y.shape[2]):
                t[h, j] = lw0[j] * x[p, h, w0[j]] + lw1[j] * x[p, h, w1[j]]
        for i in range(y.shape[1]):  # then rows, contiguous runs: y = A_h @ t
            a0, a1, l0, l1 = h0[i], h1[i], lh0[i], lh1[i]
            for j in range(y.shape[2]):
                y[p, i, j] = l0 * t[a0, j] + l1 * t[a1, j]


@njit(cache=True)
def _resize_adjoint(gy, gx, h0, h1, lh0, lh1, w0, w1, lw0, lw1):  # pragma: no cover
    planes, ho, wo = gy.shape
    t = np.empty((gx.shape[1], wo), dtype=gx.dtype)
    for p in range(planes):
        t[:] = 0
        for i in range(ho):  # rows first: t = A_h^T @ gy
            a0, a1, l0, l1 = h0[i], h1[i], lh0[i], lh1[i]
            for j in range(wo):
                t[a0, j] += l0 * gy[p, i, j]
                t[a1, j] += l1 * gy[p, i, j]
        for h in range(gx.shape[1]):  # then columns: gx = t @ A_w
            for j in range(wo):
                gx[p, h, w0[j]] += lw0[j] * t[h, j]
                gx[p, h, w1[j]] += lw1[j] * t[h, j]


def _coordinates(in_hw: tuple[int, int], out_hw: tuple[int, int], align_corners: bool, dtype):
    """Source rows and columns and both weights in ``dtype``: ``h0, h1, lh0, lh1, w0, ..., lw1``."""
    coords = []
    for n_in, n_out in zip(in_hw, out_hw):
        i0, i1, lam = source_index(n_in, n_out, align_corners)
        lam = lam.astype(dtype)
        coords += [i0, i1, 1 - lam, lam]
    return tuple(coords)


def interpolate_bilinear(x: np.ndarray, size: IntPair, align_corners: bool) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear`, compiled with Numba."""
    check_nchw(x)
    n, c, h, w = x.shape
    out = check_size(size)
    coords = _coordinates(check_size((h, w), "input size"), out, align_corners, x.dtype)
    y = np.empty((n * c,) + out, dtype=x.dtype)
    _resize(np.ascontiguousarray(x).reshape(n * c, h, w), y, *coords)
    return y.reshape((n, c) + out)


def interpolate_bilinear_adjoint(gy: np.ndarray, input_hw: IntPair, align_corners: bool) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear_adjoint`, compiled with Numba."""
    check_nchw(gy, "gy")
    n, c, ho, wo = gy.shape
    hw = check_size(input_hw, "input_hw")
    coords = _coordinates(hw, check_size((ho, wo), "gy size"), align_corners, gy.dtype)
    gx = np.zeros((n * c,) + hw, dtype=gy.dtype)
    _resize_adjoint(np.ascontiguousarray(gy).reshape(n * c, ho, wo), gx, *coords)
    return gx.reshape((n, c) + hw)
