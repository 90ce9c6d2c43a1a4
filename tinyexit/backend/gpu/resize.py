"""Bilinear resizing for CuPy arrays, written with the array-module idiom.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.resize`. Bilinear
interpolation is separable: per (n, c) plane ``y = A_h @ x @ A_w^T`` with the small
interpolation matrices ``A_h`` (Ho x H) and ``A_w`` (Wo x W), two non-zeros per row; its adjoint
is ``gx = A_h^T @ gy @ A_w``. Both are two matrix products (cuBLAS on the GPU). The code runs
unchanged on NumPy arrays, which is how it is tested on machines without a GPU; CuPy is never
imported here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyexit.backend import array_module
from tinyexit.backend.geometry import IntPair, check_nchw, check_size, source_index


@lru_cache(maxsize=128)
def interpolation_matrix(n_in: int, n_out: int, align_corners: bool) -> np.ndarray:
    """Matrix ``A`` (n_out x n_in, float64, read-only) of a 1-d linear resize: ``v_out = A @ v``.

    Args:
        n_in: Input length.
        n_out: Output length.
        align_corners: PyTorch's ``align_corners``.

    Returns:
        The NumPy matrix; row ``k`` holds ``1 - lam`` at ``i0[k]`` and ``lam`` at ``i1[k]``.
    """
    i0, i1, lam = source_index(n_in, n_out, align_corners)
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(a, (rows, i0), 1 - lam)  # add, not assign: i0 == i1 at the clamped last row
    np.add.at(a, (rows, i1), lam)
    a.flags.writeable = False
    return a


def _separable(x, a_h, a_w):
    """Return ``a_h @ x[p] @ a_w.T`` for every plane ``p`` of the NCHW array ``x``.

    The cheaper order of the two products is chosen; the product with ``a_w`` is one 2-d GEMM
    over all rows of all planes.
    """
    xp = array_module(x)
    n, c, h, w = x.shape
    ho, wo = a_h.shape[0], a_w.shape[0]
    t = xp.ascontiguousarray(x).reshape(n * c, h, w)
    if ho * w * (h + wo) <= h * wo * (w + ho):  # rows first: fewer multiply-adds
        t = xp.matmul(a_h, t)
        y = (t.reshape(-1, w) @ a_w.T).reshape(n, c, ho, wo)
    else:
        t = (t.reshape(-1, w) @ a_w.T).reshape(n * c, h, wo)
        y = xp.matmul(a_h, t).reshape(n, c, ho, wo)
    return y


def _matrices(xp, dtype, in_hw: tuple[int, int], out_hw: tuple[int, int], align_corners: bool):
    """``A_h`` and ``A_w`` as arrays of ``xp`` in ``dtype``."""
    a_h = interpolation_matrix(in_hw[0], out_hw[0], bool(align_corners))
    a_w = interpolation_matrix(in_hw[1], out_hw[1], bool(align_corners))
    return xp.asarray(a_h, dtype=dtype), xp.asarray(a_w, dtype=dtype)


def interpolate_bilinear(x, size: IntPair, align_corners: bool):
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear`, for CuPy arrays."""
    check_nchw(x)
    in_hw = check_size(x.shape[2:], "input size")
    a_h, a_w = _matrices(array_module(x), x.dtype, in_hw, check_size(size), align_corners)
    return _separable(x, a_h, a_w)


def interpolate_bilinear_adjoint(gy, input_hw: IntPair, align_corners: bool):
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear_adjoint`, for CuPy arrays."""
    check_nchw(gy, "gy")
    out_hw = check_size(gy.shape[2:], "gy size")
    in_hw = check_size(input_hw, "input_hw")
    a_h, a_w = _matrices(array_module(gy), gy.dtype, in_hw, out_hw, align_corners)
    return _separable(gy, a_h.T, a_w.T)
