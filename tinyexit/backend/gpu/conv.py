"""2-D convolution kernels for the GPU: im2col plus one cuBLAS matmul, in the array-module idiom.

The code only uses operations that NumPy and CuPy share (``xp = array_module(x)``), so it runs
on CuPy arrays on a GPU and, unchanged, on NumPy arrays on a CPU-only machine, where the tests
check it against the reference. CuPy is imported only through :mod:`tinyexit.backend`.

The column matrix is channels-first, ``cols[(c, p, q), (n, i, j)]``, built by ``kh * kw``
strided slice copies (one kernel launch each)::

    forward      Y   (O, N*Ho*Wo) = w (O, C*kh*kw) @ cols
    input grad   dcols            = w.T @ gy_cnhw (O, N*Ho*Wo)   then col2im (kh*kw slice adds)
    weight grad  gw  (O, C*kh*kw) = gy_cnhw @ cols.T
"""

from __future__ import annotations

from tinyexit.backend import array_module
from tinyexit.backend.geometry import IntPair, check_conv_grad, conv_geometry, window


def _im2col(x, kernel_hw, out_hw, stride, padding):
    """Return ``cols`` of shape ``(C*kh*kw, N*Ho*Wo)`` with rows ``(c, p, q)``."""
    xp = array_module(x)
    (n, c), (kh, kw), (ph, pw) = x.shape[:2], kernel_hw, padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.empty((c, kh, kw, n) + tuple(out_hw), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            # cols[c, p, q, n, i, j] = xpad[n, c, i*sh + p, j*sw + q]
            cols[:, p, q] = window(xpad, p, q, out_hw, stride).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, -1)


def _to_cnhw(a):
    """Return ``a`` (N, O, H, W) as a C-contiguous ``(O, N*H*W)`` matrix."""
    xp = array_module(a)
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(a.shape[1], -1)


def _col2im(dcols, input_shape, kernel_hw, out_hw, stride, padding):
    """Sum the columns ``dcols`` ``(C*kh*kw, N*Ho*Wo)`` back onto an input-shaped array (adjoint of im2col)."""
    xp = array_module(dcols)
    (n, c, h, wd), (kh, kw), (ph, pw) = input_shape, kernel_hw, padding
    dcols = dcols.reshape((c, kh, kw, n) + tuple(out_hw))
    gxpad = xp.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            # gxpad[n, c, i*sh + p, j*sw + q] += dcols[c, p, q, n, i, j]
            window(gxpad, p, q, out_hw, stride)[...] += dcols[:, p, q].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(gxpad[:, :, ph : ph + h, pw : pw + wd])


def conv2d(x, w, stride: IntPair, padding: IntPair, *, im2col=_im2col):
    """As :func:`tinyexit.backend.reference.conv.conv2d`, for CuPy (or NumPy) arrays.

    ``im2col`` builds the column matrix (the CUDA C kernel of :mod:`.raw_conv` passes its own).
    """
    xp = array_module(x)
    s, p, out_hw = conv_geometry(x.shape, w.shape, stride, padding)
    dtype = xp.result_type(x, w)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    cols = im2col(x, w.shape[2:], out_hw, s, p)
    y = xp.matmul(w.reshape(w.shape[0], -1), cols)  # (O, N*Ho*Wo)
    y = y.reshape((w.shape[0], x.shape[0]) + out_hw)
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3))


def conv2d_input_grad(gy, w, input_hw: tuple[int, int], stride: IntPair, padding: IntPair, *, col2im=_col2im):
    """As :func:`tinyexit.backend.reference.conv.conv2d_input_grad`, for CuPy arrays."""
    xp = array_module(gy)
    (h, wd), (n, o), (_, c, kh, kw) = input_hw, gy.shape[:2], w.shape
    s, p, out_hw = conv_geometry((n, c, h, wd), w.shape, stride, padding)
    check_conv_grad(gy.shape, (n, o) + out_hw)
    dtype = xp.result_type(gy, w)
    gy, w = gy.astype(dtype, copy=False), w.astype(dtype, copy=False)
    dcols = xp.matmul(w.reshape(o, -1).T, _to_cnhw(gy))  # (C*kh*kw, N*Ho*Wo)
    return col2im(dcols, (n, c, h, wd), (kh, kw), out_hw, s, p)


def conv2d_weight_grad(
    x, gy, kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair, *, im2col=_im2col
):
    """As :func:`tinyexit.backend.reference.conv.conv2d_weight_grad`, for CuPy arrays."""
    xp = array_module(x)
    (kh, kw), (n, c), o = kernel_hw, x.shape[:2], gy.shape[1]
    s, p, out_hw = conv_geometry(x.shape, (o, c, kh, kw), stride, padding)
    check_conv_grad(gy.shape, (n, o) + out_hw)
    dtype = xp.result_type(x, gy)
    x, gy = x.astype(dtype, copy=False), gy.astype(dtype, copy=False)
    cols = im2col(x, (kh, kw), out_hw, s, p)
    # gw (O, C*kh*kw) = gy_cnhw @ cols.T, computed as (cols @ gy_cnhw.T).T: NumPy's matmul does not
    # hand a transposed long right operand to BLAS, and this order is as fast for cuBLAS.
    gw = xp.matmul(cols, _to_cnhw(gy).T).T
    return xp.ascontiguousarray(gw.reshape(o, c, kh, kw))
