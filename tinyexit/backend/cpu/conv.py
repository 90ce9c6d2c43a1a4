"""2-D convolution kernels for the CPU: Numba data movement around OpenBLAS matrix products.

Every kernel is an im2col convolution in a channels-last layout. For a chunk of samples, the
input is copied into a zero-padded ``(Hp, Wp, C)`` scratch per sample and unfolded into a
column matrix ``cols[m, (p, q, c)]`` with one row per output pixel ``m = (n, i, j)``. For
stride 1 the ``kw * C`` values of one kernel row are contiguous in the padded scratch, so each
row of ``cols`` is ``kh`` contiguous copies. The products are NumPy matmuls (OpenBLAS, both
cores), with ``wk = w`` as an ``(O, K)`` matrix of columns ``(p, q, c)``::

    forward      y       = wk @ cols.T
    input grad   dcols   = gy.T @ wk     then col2im (the adjoint scatter-add) into NCHW
    weight grad  gw      = gy @ cols

On large maps (``BATCHED_MIN_PIXELS`` output pixels per sample or more) these are per-sample
matmuls that read and write NCHW directly. On small maps one matmul per chunk is faster, with
``gy`` and ``y`` converted from and to ``(pixel, channel)`` rows by tiled transposes. Work goes
in chunks of samples whose columns take about ``CHUNK_BYTES``, so the columns stay in the
last-level cache and the scratch memory is bounded. A 1x1 convolution with stride 1 and no
padding skips im2col: it is a batched matmul.

Design notes (measured on the 2-core development machine, float32, batch 64):

- The Numba kernels are serial on purpose. OpenBLAS worker threads spin for a while after each
  matmul; a ``parallel=True`` kernel that runs right after one waits for a free core and took
  8 ms (two scheduler ticks) instead of 0.3 ms. The matmuls, which dominate, use both cores.
- Copies go through 1-D slices (``d = a[i:j]; for u: d[u] = s[u]``): LLVM vectorises those
  loops; the same loop on computed flat indices ran ten times slower.
- Channels-last columns copy runs of ``kw * C`` values; channels-first columns copy runs of one
  output row (8 values on 8x8 maps) and were 3-20x slower to build on the deep layers.
- Per-sample matmuls instead of transposes saved 15-20% on the 32x32 layers and cost 5-15% on
  the 8x8 ones, hence the threshold.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tinyexit.backend.reference.conv import (
    IntPair,
    check_conv_shapes,
    check_grad_shape,
    pair,
)

CHUNK_BYTES = 8 << 20
"""Target size of the column matrix of one chunk of samples (8 MiB fits in L3)."""

BATCHED_MIN_PIXELS = 256
"""From this many output pixels per sample on, per-sample matmuls read and write NCHW directly
(no transposes); below it one matmul per chunk plus transposes is faster."""

_TILE = 32


@njit(cache=True)
def _transpose(src, dst):
    """Write ``dst[j, i] = src[i, j]`` in tiles; the inner loop runs along the longer axis."""
    rows, cols = src.shape
    for i0 in range(0, rows, _TILE):
        i1 = min(rows, i0 + _TILE)
        for j0 in range(0, cols, _TILE):
            j1 = min(cols, j0 + _TILE)
            if rows >= cols:
                for j in range(j0, j1):
                    for i in range(i0, i1):
                        dst[j, i] = src[i, j]
            else:
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        dst[j, i] = src[i, j]


@njit(cache=True)
def _copy(dst, src):
    """``dst[:] = src`` for 1-D runs, as a loop that LLVM vectorises."""
    for u in range(dst.shape[0]):
        dst[u] = src[u]


@njit(cache=True)
def _add(dst, src):
    """``dst[:] += src`` for 1-D runs, as a loop that LLVM vectorises."""
    for u in range(dst.shape[0]):
        dst[u] += src[u]


@njit(cache=True)
def _im2col(x, n0, n1, kh, kw, sh, sw, ph, pw, ho, wo, xp, tmp, cols):
    """Fill ``cols[((n-n0)*ho + i)*wo + j, (p*kw + q)*C + c] = xpad[n, c, i*sh+p, j*sw+q]``.

    ``xp`` is a flat scratch of ``Hp*Wp*C`` values, ``tmp`` an ``(H*W, C)`` scratch.
    """
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    wp = w + 2 * pw
    run = kw * c_
    flat = cols.reshape(-1)
    xp[:] = 0  # the border stays 0, the interior is overwritten for each sample
    for n in range(n0, n1):
        # channels-last, zero-padded copy of sample n
        _transpose(x[n].reshape(c_, h * w), tmp)
        for i in range(h):
            start = ((i + ph) * wp + pw) * c_
            _copy(xp[start:start + w * c_], tmp[i * w:(i + 1) * w].reshape(-1))
        for i in range(ho):
            for j in range(wo):
                dst = (((n - n0) * ho + i) * wo + j) * kh * run
                for p in range(kh):
                    src = ((i * sh + p) * wp + j * sw) * c_
                    if sw == 1:  # the kw*C values of kernel row p are contiguous
                        _copy(flat[dst:dst + run], xp[src:src + run])
                    else:
                        for q in range(kw):
                            d, s = dst + q * c_, src + q * c_
                            _copy(flat[d:d + c_], xp[s:s + c_])
                    dst += run


@njit(cache=True)
def _col2im(dcols, n0, kh, kw, sh, sw, ph, pw, ho, wo, acc, tmp, gx):
    """Scatter-add ``dcols`` (rows of samples ``n0, n0+1, ...``) into ``gx`` (the adjoint of
    :func:`_im2col`); ``acc`` is a flat ``Hp*Wp*C`` scratch, ``tmp`` an ``(H*W, C)`` one."""
    c_, h, w = gx.shape[1], gx.shape[2], gx.shape[3]
    wp = w + 2 * pw
    run = kw * c_
    flat = dcols.reshape(-1)
    for b in range(dcols.shape[0] // (ho * wo)):
        acc[:] = 0
        for i in range(ho):
            for j in range(wo):
                src = ((b * ho + i) * wo + j) * kh * run
                for p in range(kh):
                    dst = ((i * sh + p) * wp + j * sw) * c_
                    if sw == 1:
                        _add(acc[dst:dst + run], flat[src:src + run])
                    else:
                        for q in range(kw):
                            d, s = dst + q * c_, src + q * c_
                            _add(acc[d:d + c_], flat[s:s + c_])
                    src += run
        # crop the padding and go back to NCHW
        for i in range(h):
            start = ((i + ph) * wp + pw) * c_
            _copy(tmp[i * w:(i + 1) * w].reshape(-1), acc[start:start + w * c_])
        _transpose(tmp, gx[n0 + b].reshape(c_, h * w))


@njit(cache=True)
def _rows_to_nchw(rows, n0, out):
    """``out[n0 + b, o, l] = rows[b*L + l, o]`` for ``out`` of shape ``(N, O, L)``."""
    length = out.shape[2]
    for b in range(rows.shape[0] // length):
        _transpose(rows[b * length:(b + 1) * length], out[n0 + b])


@njit(cache=True)
def _nchw_to_rows(a, n0, n1, rows):
    """``rows[(n-n0)*L + l, o] = a[n, o, l]`` for ``a`` of shape ``(N, O, L)``."""
    length = a.shape[2]
    for n in range(n0, n1):
        _transpose(a[n], rows[(n - n0) * length:(n - n0 + 1) * length])


def _is_pointwise(kernel_hw, stride, padding) -> bool:
    """True for a 1x1 kernel with stride 1 and no padding (a plain matmul)."""
    return tuple(kernel_hw) == (1, 1) and stride == (1, 1) and padding == (0, 0)


def _chunk(n: int, rows_per_sample: int, k: int, itemsize: int) -> int:
    """Samples per chunk so that the chunk's columns take about ``CHUNK_BYTES``."""
    return max(1, min(n, CHUNK_BYTES // max(1, rows_per_sample * k * itemsize)))


def _im2col_args(x_shape, kernel_hw, stride, padding, out_hw, dtype, nb):
    """Kernel geometry and scratch buffers shared by :func:`_im2col` and :func:`_col2im`."""
    (_, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel_hw, stride, padding
    xp = np.empty((h + 2 * ph) * (w + 2 * pw) * c, dtype)
    tmp = np.empty((h * w, c), dtype)
    cols = np.empty((nb * out_hw[0] * out_hw[1], kh * kw * c), dtype)
    return (kh, kw, sh, sw, ph, pw) + tuple(out_hw), xp, tmp, cols


def conv2d(x: np.ndarray, w: np.ndarray, stride: IntPair, padding: IntPair) -> np.ndarray:
    """2-D convolution (cross-correlation, as in PyTorch) without bias or groups.

    Args:
        x: Input, ``(N, C, H, W)``.
        w: Weight, ``(O, C, kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``y`` of shape ``(N, O, Ho, Wo)``, C-contiguous, in the dtype of ``x`` and ``w``.
    """
    ho, wo = check_conv_shapes(x.shape, w.shape, stride, padding)
    s, pd = pair(stride), pair(padding)
    dtype = np.result_type(x, w)
    x, w = np.ascontiguousarray(x, dtype), np.ascontiguousarray(w, dtype)
    (n, c, h, wd), (o, _, kh, kw) = x.shape, w.shape
    if _is_pointwise((kh, kw), s, pd):
        return np.matmul(w.reshape(o, c), x.reshape(n, c, h * wd)).reshape(n, o, ho, wo)
    length, k = ho * wo, kh * kw * c
    nb = _chunk(n, length, k, x.itemsize)
    geom, xp, tmp, cols = _im2col_args(x.shape, (kh, kw), s, pd, (ho, wo), dtype, nb)
    wk = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(o, k)  # columns (p, q, c)
    rows = np.empty((nb * length, o) if length < BATCHED_MIN_PIXELS else (0, o), dtype)
    y = np.empty((n, o, length), dtype)
    for n0 in range(0, n, nb):
        n1 = min(n, n0 + nb)
        m = (n1 - n0) * length
        _im2col(x, n0, n1, *geom, xp, tmp, cols)
        if length >= BATCHED_MIN_PIXELS:  # y[n] = wk @ cols_n.T
            cols3 = cols[:m].reshape(n1 - n0, length, k)
            np.matmul(wk, cols3.transpose(0, 2, 1), out=y[n0:n1])
        else:  # y_rows = cols @ wk.T
            np.matmul(cols[:m], wk.T, out=rows[:m])
            _rows_to_nchw(rows[:m], n0, y)
    return y.reshape(n, o, ho, wo)


def conv2d_input_grad(
    gy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its input (a transposed convolution).

    Args:
        gy: Gradient of the output, ``(N, O, Ho, Wo)``.
        w: Weight, ``(O, C, kh, kw)``.
        input_hw: The input size ``(H, W)``; rows and columns no window touches get 0.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``gx`` of shape ``(N, C, H, W)``, C-contiguous.
    """
    (h, wd), s, pd = input_hw, pair(stride), pair(padding)
    (n, o), (_, c, kh, kw) = gy.shape[:2], w.shape
    ho, wo = check_conv_shapes((n, c, h, wd), w.shape, stride, padding)
    check_grad_shape(gy.shape, (n, o, ho, wo))
    dtype = np.result_type(gy, w)
    gy, w = np.ascontiguousarray(gy, dtype), np.ascontiguousarray(w, dtype)
    if _is_pointwise((kh, kw), s, pd):
        return np.matmul(w.reshape(o, c).T, gy.reshape(n, o, ho * wo)).reshape(n, c, h, wd)
    length, k = ho * wo, kh * kw * c
    nb = _chunk(n, length, k, gy.itemsize)
    geom, acc, tmp, dcols = _im2col_args((n, c, h, wd), (kh, kw), s, pd, (ho, wo), dtype, nb)
    wk = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(o, k)  # columns (p, q, c)
    rows = np.empty((nb * length, o) if length < BATCHED_MIN_PIXELS else (0, o), dtype)
    gx = np.empty((n, c, h, wd), dtype)
    g3 = gy.reshape(n, o, length)
    for n0 in range(0, n, nb):
        n1 = min(n, n0 + nb)
        m = (n1 - n0) * length
        if length >= BATCHED_MIN_PIXELS:  # dcols_n = gy[n].T @ wk
            dcols3 = dcols[:m].reshape(n1 - n0, length, k)
            np.matmul(g3[n0:n1].transpose(0, 2, 1), wk, out=dcols3)
        else:  # dcols = gy_rows @ wk
            _nchw_to_rows(g3, n0, n1, rows)
            np.matmul(rows[:m], wk, out=dcols[:m])
        _col2im(dcols[:m], n0, *geom, acc, tmp, gx)
    return gx


def conv2d_weight_grad(
    x: np.ndarray, gy: np.ndarray, kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its weight.

    Args:
        x: Input, ``(N, C, H, W)``.
        gy: Gradient of the output, ``(N, O, Ho, Wo)``.
        kernel_hw: The kernel size ``(kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``gw`` of shape ``(O, C, kh, kw)``, C-contiguous.
    """
    (kh, kw), s, pd = kernel_hw, pair(stride), pair(padding)
    (n, c), o = x.shape[:2], gy.shape[1]
    ho, wo = check_conv_shapes(x.shape, (o, c, kh, kw), stride, padding)
    check_grad_shape(gy.shape, (n, o, ho, wo))
    dtype = np.result_type(x, gy)
    x, gy = np.ascontiguousarray(x, dtype), np.ascontiguousarray(gy, dtype)
    length, k = ho * wo, kh * kw * c
    if _is_pointwise((kh, kw), s, pd):
        x3, g3 = x.reshape(n, c, length), gy.reshape(n, o, length)
        return np.matmul(g3, x3.transpose(0, 2, 1)).sum(axis=0).reshape(o, c, 1, 1)
    nb = _chunk(n, length, k, x.itemsize)
    geom, xp, tmp, cols = _im2col_args(x.shape, (kh, kw), s, pd, (ho, wo), dtype, nb)
    rows = np.empty((nb * length, o) if length < BATCHED_MIN_PIXELS else (0, o), dtype)
    gwk, part = np.zeros((o, k), dtype), np.empty((o, k), dtype)
    g3 = gy.reshape(n, o, length)
    for n0 in range(0, n, nb):
        n1 = min(n, n0 + nb)
        m = (n1 - n0) * length
        _im2col(x, n0, n1, *geom, xp, tmp, cols)
        if length >= BATCHED_MIN_PIXELS:  # gw += sum_n gy[n] @ cols_n
            gwk += np.matmul(g3[n0:n1], cols[:m].reshape(n1 - n0, length, k)).sum(axis=0)
        else:  # gw += gy_rows.T @ cols
            _nchw_to_rows(g3, n0, n1, rows)
            np.matmul(rows[:m].T, cols[:m], out=part)
            gwk += part
    return np.ascontiguousarray(gwk.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
