"""Copies between the layouts of the CPU convolution kernels (:mod:`.conv`): transposes, the
zero-padded image channels-first and channels-last, im2col and its adjoint col2im, and the
offsets at which the products read the padded image.
"""

from __future__ import annotations

import numpy as np

from . import simd
from .jit import njit
from .products import _add, _copy


@njit(cache=True)
def _transpose(src, dst):
    """Write ``dst[j, i] = src[i, j]`` (see :func:`_transpose_rows`)."""
    _transpose_rows(src, np.arange(src.shape[0]), dst)


@njit(cache=True)
def _transpose_rows(src, rows, dst):
    """Write ``dst[j, i] = src[rows[i], j]`` for ``j`` below ``dst.shape[0]``: a transpose that
    reads the rows of ``src`` in the order ``rows`` (the channels-last forward's product holds its
    pixels in the order of its tiles, :mod:`.tile_plan`), by 8x8 blocks in vector registers
    (:func:`.simd.transpose_block`) and one value at a time along the edges. Both arrays need
    contiguous rows. The blocks go along 8 rows of ``dst`` at a time: taken across its rows
    instead, long rows (4 KiB in the 32x32 layers) were written 32 bytes at a time far apart, and
    a 16-to-64-channel 32x32 forward took 9.9 ms on two threads against 12.9 ms on one (now 6.3)."""
    count, cols, b = rows.size, dst.shape[0], simd.TRANSPOSE_BLOCK
    rb, cb = count - count % b, cols - cols % b
    for j in range(0, cb, b):
        for i in range(0, rb, b):
            simd.transpose_block(src, rows, i, j, dst)
    for j in range(cb, cols):
        for i in range(rb):
            dst[j, i] = src[rows[i], j]
    for i in range(rb, count):
        for j in range(cols):
            dst[j, i] = src[rows[i], j]


@njit(cache=True)
def _shifts(c_, kh, kw, hp, wp, offsets):
    """``offsets[(c*kh + p)*kw + q] = (c*hp + p)*wp + q``: where the column row of ``(c, p, q)``
    starts in the flat padded image (see :func:`.conv._forward_shifted`)."""
    for c in range(c_):
        for p in range(kh):
            for q in range(kw):
                offsets[(c * kh + p) * kw + q] = (c * hp + p) * wp + q


@njit(cache=True)
def _pad_flat(x, n, ph, pw, xs):
    """Copy ``x[n]`` into the flat padded image ``xs`` (``xpad[c, i, j]`` at ``(c*Hp + i)*Wp + j``),
    whose border must be 0."""
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    for c in range(c_):
        for i in range(h):
            start = (c * hp + i + ph) * wp + pw
            _copy(xs[start : start + w], x[n, c, i])


@njit(cache=True)
def _pad_last(x, n, ph, pw, tmp, xp):
    """Copy ``x[n]`` channels-last into the flat padded image ``xp`` (``xpad[i, j, c]`` at
    ``(i*Wp + j)*C + c``), whose border must be 0, through the ``(H*W, C)`` scratch ``tmp``."""
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    wp = w + 2 * pw
    _transpose(x[n].reshape(c_, h * w), tmp)
    for i in range(h):
        start = ((i + ph) * wp + pw) * c_
        _copy(xp[start : start + w * c_], tmp[i * w : (i + 1) * w].reshape(-1))


@njit(cache=True)
def _im2col_last(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, tmp, cols):
    """Fill ``cols[i*wo + j, (p*kw + q)*C + c] = xpad[n, c, i*sh+p, j*sw+q]`` (channels-last).

    ``xp`` is a flat ``Hp*Wp*C`` scratch whose border must be 0, ``tmp`` an ``(H*W, C)`` one;
    the columns of ``cols`` from ``kh*kw*C`` on are left as they are. Whatever the stride, the
    ``kw*C`` values of one kernel row are contiguous in ``xp``, so each kernel row is one copy.
    """
    c_, wp = x.shape[1], x.shape[3] + 2 * pw
    run = kw * c_
    _pad_last(x, n, ph, pw, tmp, xp)
    for i in range(ho):
        for j in range(wo):
            row = cols[i * wo + j]
            for p in range(kh):
                src, dst = ((i * sh + p) * wp + j * sw) * c_, p * run
                _copy(row[dst : dst + run], xp[src : src + run])


@njit(cache=True)
def _col2im_last(dcols, n, kh, kw, sh, sw, ph, pw, ho, wo, acc, tmp, gx):
    """Scatter-add channels-last ``dcols`` into ``gx[n]`` (the adjoint of :func:`_im2col_last`);
    ``acc`` is a flat ``Hp*Wp*C`` scratch, ``tmp`` an ``(H*W, C)`` one."""
    c_, h, w = gx.shape[1], gx.shape[2], gx.shape[3]
    wp = w + 2 * pw
    run = kw * c_
    acc[:] = 0
    for i in range(ho):
        for j in range(wo):
            row = dcols[i * wo + j]
            for p in range(kh):
                dst, src = ((i * sh + p) * wp + j * sw) * c_, p * run
                _add(acc[dst : dst + run], row[src : src + run])
    # crop the padding and go back to channels-first
    for i in range(h):
        start = ((i + ph) * wp + pw) * c_
        _copy(tmp[i * w : (i + 1) * w].reshape(-1), acc[start : start + w * c_])
    _transpose(tmp, gx[n].reshape(c_, h * w))


@njit(cache=True)
def _im2col_first(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, cols):
    """Fill ``cols[(c*kh + p)*kw + q, i*wo + j] = xpad[n, c, i*sh+p, j*sw+q]`` (channels-first).

    ``xp`` is a ``(C, Hp, Wp)`` scratch whose border must be 0; rows of ``cols`` from
    ``C*kh*kw`` on are left as they are.
    """
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    for c in range(c_):
        for i in range(h):
            _copy(xp[c, i + ph, pw : pw + w], x[n, c, i])
    for c in range(c_):
        for p in range(kh):
            for q in range(kw):
                row = cols[(c * kh + p) * kw + q]
                for i in range(ho):
                    src = xp[c, i * sh + p]
                    if sw == 1:
                        _copy(row[i * wo : (i + 1) * wo], src[q : q + wo])
                    else:
                        for j in range(wo):
                            row[i * wo + j] = src[j * sw + q]
