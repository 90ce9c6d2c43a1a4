"""2-D convolution kernels for the CPU: Numba matrix products on im2col columns, image by image.

Each image is unfolded into a column matrix in one of two layouts, and multiplied by the weight
``w`` seen as an ``(O, K)`` matrix (``K = C*kh*kw``) with a Numba matrix product that LLVM
vectorises along one of the two matrix dimensions:

- **channels-last** (``cols[pixel, (p, q, c)]``, rows padded with zeros to a multiple of
  ``VEC``): the forward output ``y[o, pixel]`` is a dot product along ``K`` (:func:`_dot`),
  the weight gradient adds rows of ``cols`` (:func:`_axpy`, vectorised along ``K``), and the
  input gradient adds rows of ``w`` into ``dcols[pixel, :]`` before the scatter-add col2im.
- **channels-first** (``cols[(c, p, q), pixel]``): the forward output adds rows of ``cols``
  (:func:`_axpy`, vectorised along the pixels) and the weight gradient is a dot product along
  the pixels. A 1x1 convolution with stride 1 and no padding skips im2col: ``cols`` is the
  image itself.

:func:`use_columns_first` picks the layout that vectorises along the longer dimension. With
stride 1 the input gradient is itself a convolution, of ``gy`` by the flipped and transposed
weight, so it goes through the forward kernels; other strides use channels-last columns and
col2im. The images of the batch are split between ``numba.get_num_threads()`` threads
(``prange``), each with its own scratch; the weight gradient sums one partial result per thread.
Small calls and the first calls of each kernel run in the calling thread (:func:`_threads`).

Why it is written this way (the measurements are in ``docs/benchmarks.md``):

- The products are Numba loops, not NumPy's ``@``: Numba compiles for the host CPU (AVX-512
  where there is one), which beats the OpenBLAS sgemm kernel that ``OPENBLAS_CORETYPE=Haswell``
  selects on these small products. :func:`_dot` keeps a 4x4 block of sums in registers
  (``reassoc`` lets LLVM reorder them); :func:`_axpy` makes each load and store of the output
  serve 16 fused multiply-adds.
- Loops run over 1-D slices indexed from 0 (``d = a[i:j]; for u: d[u] = s[u]``), the form LLVM
  vectorises reliably; loops from a variable start or over computed flat indices are far slower.
- Threads are ``prange``: Numba's OpenMP threads spin briefly instead of sleeping, so a call does
  not pay to wake them. A parallel kernel that runs while OpenBLAS's threads still spin after a
  multithreaded matmul waits for a core; keep the small matmuls of a step off OpenBLAS's threads.
- Each driver is a serial ``_images`` kernel and a thin ``prange`` wrapper around it; compiling
  the wrapper costs about as much again, so calls start serial and the wrapper compiles only
  for kernels a program keeps calling (:func:`_threads`), which keeps the first call quick.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from tinyexit.backend.geometry import IntPair, check_conv_grad, conv_geometry

from .jit import njit

VEC = 16
"""Channels-last rows are padded with zeros to a multiple of this many values (one AVX-512
register of float32), so that the dot products need no scalar tail."""

K_BLOCK = 1024
"""Channels-last products go through the columns in blocks of this many (a multiple of ``VEC``),
so that the rows a block reuses stay in the level-1 cache."""

PARALLEL_MACS = 1 << 22
"""Calls with fewer multiply-adds than this run in the calling thread (see :func:`_threads`)."""

_FASTMATH = {"contract", "reassoc"}


SERIAL_CALLS = 4
"""Calls of a kernel (per dtype) that run serially before its parallel wrapper is compiled."""

_CALLS: dict = {}
"""Calls so far of each (parallel wrapper, dtype), counted up to ``SERIAL_CALLS``."""


def use_columns_first(k: int, pixels: int) -> bool:
    """Pick the column layout: channels-first when an image has at least as many output pixels
    as the weight has columns ``k``, so that the products vectorise along the longer one."""
    return pixels >= k


@njit(cache=True)
def _transpose(src, dst):
    """Write ``dst[j, i] = src[i, j]``, 8 rows of ``src`` per pass: each pass reads 8 rows
    along their length and writes 8 adjacent values into each row of ``dst``."""
    rows, cols = src.shape
    r8 = rows - rows % 8
    for i in range(0, r8, 8):
        s0, s1, s2, s3 = src[i], src[i + 1], src[i + 2], src[i + 3]
        s4, s5, s6, s7 = src[i + 4], src[i + 5], src[i + 6], src[i + 7]
        for j in range(cols):
            d = dst[j]
            d[i], d[i + 1], d[i + 2], d[i + 3] = s0[j], s1[j], s2[j], s3[j]
            d[i + 4], d[i + 5], d[i + 6], d[i + 7] = s4[j], s5[j], s6[j], s7[j]
    for i in range(r8, rows):
        for j in range(cols):
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


@njit(cache=True, fastmath=_FASTMATH)
def _dot(a, bt, c, k0, k1, accumulate):
    """``c (+)= a[:, k0:k1] @ bt[:, k0:k1].T``, each entry a dot product along rows of a, bt.

    Blocks of 4 rows of ``a`` by 4 rows of ``bt`` keep their 16 sums in registers; the rows must
    be contiguous. Rows left over when ``c``'s sides are not multiples of 4 take one sum each.
    """
    m, n = c.shape
    m4, n4 = m - m % 4, n - n % 4
    zero = c.dtype.type(0)
    for j in range(0, n4, 4):
        b0, b1, b2, b3 = bt[j, k0:k1], bt[j + 1, k0:k1], bt[j + 2, k0:k1], bt[j + 3, k0:k1]
        for i in range(0, m4, 4):
            a0, a1, a2, a3 = a[i, k0:k1], a[i + 1, k0:k1], a[i + 2, k0:k1], a[i + 3, k0:k1]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for k in range(k1 - k0):
                x0, x1, x2, x3 = b0[k], b1[k], b2[k], b3[k]
                y0, y1, y2, y3 = a0[k], a1[k], a2[k], a3[k]
                s00 += y0 * x0
                s01 += y0 * x1
                s02 += y0 * x2
                s03 += y0 * x3
                s10 += y1 * x0
                s11 += y1 * x1
                s12 += y1 * x2
                s13 += y1 * x3
                s20 += y2 * x0
                s21 += y2 * x1
                s22 += y2 * x2
                s23 += y2 * x3
                s30 += y3 * x0
                s31 += y3 * x1
                s32 += y3 * x2
                s33 += y3 * x3
            if accumulate:
                s00 += c[i, j]
                s01 += c[i, j + 1]
                s02 += c[i, j + 2]
                s03 += c[i, j + 3]
                s10 += c[i + 1, j]
                s11 += c[i + 1, j + 1]
                s12 += c[i + 1, j + 2]
                s13 += c[i + 1, j + 3]
                s20 += c[i + 2, j]
                s21 += c[i + 2, j + 1]
                s22 += c[i + 2, j + 2]
                s23 += c[i + 2, j + 3]
                s30 += c[i + 3, j]
                s31 += c[i + 3, j + 1]
                s32 += c[i + 3, j + 2]
                s33 += c[i + 3, j + 3]
            c[i, j], c[i, j + 1], c[i, j + 2], c[i, j + 3] = s00, s01, s02, s03
            c[i + 1, j], c[i + 1, j + 1], c[i + 1, j + 2], c[i + 1, j + 3] = s10, s11, s12, s13
            c[i + 2, j], c[i + 2, j + 1], c[i + 2, j + 2], c[i + 2, j + 3] = s20, s21, s22, s23
            c[i + 3, j], c[i + 3, j + 1], c[i + 3, j + 2], c[i + 3, j + 3] = s30, s31, s32, s33
    for i in range(m):
        ai = a[i, k0:k1]
        for j in range(n4 if i < m4 else 0, n):
            bj = bt[j, k0:k1]
            s = c[i, j] if accumulate else zero
            for k in range(k1 - k0):
                s += ai[k] * bj[k]
            c[i, j] = s


@njit(cache=True, fastmath=_FASTMATH)
def _axpy(a, b, c, j0, j1, accumulate):
    """``c[:, j0:j1] (+)= a @ b[:, j0:j1]``: each row of ``c`` a sum of rows of ``b``, vectorised
    along the rows.

    Each pass updates 4 rows of ``c`` from 4 rows of ``b``; the rows of ``b`` and ``c`` must be
    contiguous, ``a`` may have any strides. Leftover rows of ``c`` take one at a time.
    """
    m, kk = a.shape
    k4 = kk - kk % 4
    if not accumulate:
        c[:, j0:j1] = 0
    for i in range(0, m - m % 4, 4):
        c0, c1, c2, c3 = c[i, j0:j1], c[i + 1, j0:j1], c[i + 2, j0:j1], c[i + 3, j0:j1]
        for k in range(0, k4, 4):
            b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
            a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
            a10, a11, a12, a13 = a[i + 1, k], a[i + 1, k + 1], a[i + 1, k + 2], a[i + 1, k + 3]
            a20, a21, a22, a23 = a[i + 2, k], a[i + 2, k + 1], a[i + 2, k + 2], a[i + 2, k + 3]
            a30, a31, a32, a33 = a[i + 3, k], a[i + 3, k + 1], a[i + 3, k + 2], a[i + 3, k + 3]
            for j in range(j1 - j0):
                x0, x1, x2, x3 = b0[j], b1[j], b2[j], b3[j]
                c0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                c1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
                c2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
                c3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        for k in range(k4, kk):
            bk = b[k, j0:j1]
            a0, a1, a2, a3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
            for j in range(j1 - j0):
                x = bk[j]
                c0[j] += a0 * x
                c1[j] += a1 * x
                c2[j] += a2 * x
                c3[j] += a3 * x
    for i in range(m - m % 4, m):
        ci = c[i, j0:j1]
        for k in range(kk):
            bk, aik = b[k, j0:j1], a[i, k]
            for j in range(j1 - j0):
                ci[j] += aik * bk[j]


@njit(cache=True, fastmath=_FASTMATH)
def _axpy_shifted(a, xs, offsets, c):
    """``c = a @ b`` where row ``k`` of ``b`` is ``xs[offsets[k] : offsets[k] + L]``, ``L`` the
    length of ``c``'s rows: :func:`_axpy` on rows that are shifted views of one flat array.

    ``c``'s row count must be a multiple of 4 (pad ``a`` with zero rows).
    """
    m, kk = a.shape
    n = c.shape[1]
    k4 = kk - kk % 4
    c[:, :] = 0
    for i in range(0, m, 4):
        c0, c1, c2, c3 = c[i], c[i + 1], c[i + 2], c[i + 3]
        for k in range(0, k4, 4):
            o0, o1, o2, o3 = offsets[k], offsets[k + 1], offsets[k + 2], offsets[k + 3]
            b0, b1, b2, b3 = xs[o0 : o0 + n], xs[o1 : o1 + n], xs[o2 : o2 + n], xs[o3 : o3 + n]
            a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
            a10, a11, a12, a13 = a[i + 1, k], a[i + 1, k + 1], a[i + 1, k + 2], a[i + 1, k + 3]
            a20, a21, a22, a23 = a[i + 2, k], a[i + 2, k + 1], a[i + 2, k + 2], a[i + 2, k + 3]
            a30, a31, a32, a33 = a[i + 3, k], a[i + 3, k + 1], a[i + 3, k + 2], a[i + 3, k + 3]
            for j in range(n):
                x0, x1, x2, x3 = b0[j], b1[j], b2[j], b3[j]
                c0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                c1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
                c2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
                c3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        for k in range(k4, kk):
            bk = xs[offsets[k] : offsets[k] + n]
            a0, a1, a2, a3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
            for j in range(n):
                x = bk[j]
                c0[j] += a0 * x
                c1[j] += a1 * x
                c2[j] += a2 * x
                c3[j] += a3 * x


@njit(cache=True, fastmath=_FASTMATH)
def _dot_shifted(a, xs, offsets, c):
    """``c += a @ b.T`` where row ``k`` of ``b`` is ``xs[offsets[k] : offsets[k] + L]``, ``L`` the
    length of ``a``'s rows: :func:`_dot` on rows that are shifted views of one flat array.

    Both sides of ``c`` must be multiples of 4 (pad ``a`` with zero rows, ``offsets`` with 0s).
    """
    m, n = c.shape
    kk = a.shape[1]
    zero = c.dtype.type(0)
    for j in range(0, n, 4):
        o0, o1, o2, o3 = offsets[j], offsets[j + 1], offsets[j + 2], offsets[j + 3]
        b0, b1, b2, b3 = xs[o0 : o0 + kk], xs[o1 : o1 + kk], xs[o2 : o2 + kk], xs[o3 : o3 + kk]
        for i in range(0, m, 4):
            a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for k in range(kk):
                x0, x1, x2, x3 = b0[k], b1[k], b2[k], b3[k]
                y0, y1, y2, y3 = a0[k], a1[k], a2[k], a3[k]
                s00 += y0 * x0
                s01 += y0 * x1
                s02 += y0 * x2
                s03 += y0 * x3
                s10 += y1 * x0
                s11 += y1 * x1
                s12 += y1 * x2
                s13 += y1 * x3
                s20 += y2 * x0
                s21 += y2 * x1
                s22 += y2 * x2
                s23 += y2 * x3
                s30 += y3 * x0
                s31 += y3 * x1
                s32 += y3 * x2
                s33 += y3 * x3
            c[i, j] += s00
            c[i, j + 1] += s01
            c[i, j + 2] += s02
            c[i, j + 3] += s03
            c[i + 1, j] += s10
            c[i + 1, j + 1] += s11
            c[i + 1, j + 2] += s12
            c[i + 1, j + 3] += s13
            c[i + 2, j] += s20
            c[i + 2, j + 1] += s21
            c[i + 2, j + 2] += s22
            c[i + 2, j + 3] += s23
            c[i + 3, j] += s30
            c[i + 3, j + 1] += s31
            c[i + 3, j + 2] += s32
            c[i + 3, j + 3] += s33


@njit(cache=True)
def _shifts(c_, kh, kw, hp, wp, offsets):
    """``offsets[(c*kh + p)*kw + q] = (c*hp + p)*wp + q``: where the column row of ``(c, p, q)``
    starts in the flat padded image (see :func:`_forward_shifted`)."""
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
def _im2col_last(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, tmp, cols):
    """Fill ``cols[i*wo + j, (p*kw + q)*C + c] = xpad[n, c, i*sh+p, j*sw+q]`` (channels-last).

    ``xp`` is a flat ``Hp*Wp*C`` scratch whose border must be 0, ``tmp`` an ``(H*W, C)`` one;
    the columns of ``cols`` from ``kh*kw*C`` on are left as they are. Whatever the stride, the
    ``kw*C`` values of one kernel row are contiguous in ``xp``, so each kernel row is one copy.
    """
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    wp = w + 2 * pw
    run = kw * c_
    _transpose(x[n].reshape(c_, h * w), tmp)
    for i in range(h):
        start = ((i + ph) * wp + pw) * c_
        _copy(xp[start : start + w * c_], tmp[i * w : (i + 1) * w].reshape(-1))
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


@njit(cache=True)
def _forward_last_images(x, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, t, nt, y):
    """Images ``t, t + nt, ...`` of :func:`_forward_last`."""
    n_, c_, h, w = x.shape
    xp = np.zeros((h + 2 * ph) * (w + 2 * pw) * c_, x.dtype)
    tmp = np.empty((h * w, c_), x.dtype)
    cols = np.zeros((ho * wo, wk.shape[1]), x.dtype)
    for n in range(t, n_, nt):
        _im2col_last(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, tmp, cols)
        for k0 in range(0, wk.shape[1], kc):
            _dot(wk, cols, y[n], k0, min(k0 + kc, wk.shape[1]), k0 > 0)


@njit(cache=True, parallel=True)
def _forward_last(x, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, nt, y):
    """``y[n] = wk @ cols_n.T`` with channels-last columns; ``y`` is ``(N, O, Ho*Wo)``."""
    for t in prange(nt):
        _forward_last_images(x, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, np.int64(t), nt, y)


@njit(cache=True)
def _forward_first_images(x, w2, kh, kw, sh, sw, ph, pw, ho, wo, direct, t, nt, y):
    """Images ``t, t + nt, ...`` of :func:`_forward_first`."""
    n_, c_, h, w = x.shape
    xp = np.zeros((c_, h + 2 * ph, w + 2 * pw), x.dtype)
    cols = np.empty((0 if direct else w2.shape[1], ho * wo), x.dtype)
    for n in range(t, n_, nt):
        if direct:
            _axpy(w2, x[n].reshape(c_, h * w), y[n], 0, ho * wo, False)
        else:
            _im2col_first(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, cols)
            _axpy(w2, cols, y[n], 0, ho * wo, False)


@njit(cache=True, parallel=True)
def _forward_first(x, w2, kh, kw, sh, sw, ph, pw, ho, wo, direct, nt, y):
    """``y[n] = w2 @ cols_n`` with channels-first columns (``x[n]`` itself when ``direct``)."""
    for t in prange(nt):
        _forward_first_images(x, w2, kh, kw, sh, sw, ph, pw, ho, wo, direct, np.int64(t), nt, y)


@njit(cache=True)
def _forward_shifted_images(x, w2, kh, kw, ph, pw, ho, wo, t, nt, y):
    """Images ``t, t + nt, ...`` of :func:`_forward_shifted`."""
    n_, c_, h, w = x.shape
    hp, wp = h + 2 * ph, w + 2 * pw
    # kw - 1 more zeros for the overhang of the last window row
    xs = np.zeros(c_ * hp * wp + kw - 1, x.dtype)
    offsets = np.empty(c_ * kh * kw, np.int64)
    _shifts(c_, kh, kw, hp, wp, offsets)
    acc = np.empty((w2.shape[0], ho * wp), x.dtype)
    for n in range(t, n_, nt):
        _pad_flat(x, n, ph, pw, xs)
        _axpy_shifted(w2, xs, offsets, acc)
        for o in range(y.shape[1]):
            for i in range(ho):
                _copy(y[n, o, i * wo : (i + 1) * wo], acc[o, i * wp : i * wp + wo])


@njit(cache=True, parallel=True)
def _forward_shifted(x, w2, kh, kw, ph, pw, ho, wo, nt, y):
    """``y[n] = w2 @ cols_n`` for stride 1 without im2col: output pixel ``(i, j)`` sits at
    ``i*Wp + j`` of a row of length ``Ho*Wp`` (``Wp`` the padded width), where the column row of
    ``(c, p, q)`` is the padded image read from ``(c*Hp + p)*Wp + q`` on; the ``Wp - Wo`` values
    past each output row are discarded. ``w2`` has a multiple of 4 rows, ``y`` the first ``O``."""
    for t in prange(nt):
        _forward_shifted_images(x, w2, kh, kw, ph, pw, ho, wo, np.int64(t), nt, y)


@njit(cache=True)
def _input_grad_last_images(gy, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, t, nt, gx):
    """Images ``t, t + nt, ...`` of :func:`_input_grad_last`."""
    n_, c_, h, w = gx.shape
    acc = np.empty((h + 2 * ph) * (w + 2 * pw) * c_, gx.dtype)
    tmp = np.empty((h * w, c_), gx.dtype)
    dcols = np.empty((ho * wo, wk.shape[1]), gx.dtype)
    for n in range(t, n_, nt):
        for j0 in range(0, wk.shape[1], kc):
            _axpy(gy[n].T, wk, dcols, j0, min(j0 + kc, wk.shape[1]), False)
        _col2im_last(dcols, n, kh, kw, sh, sw, ph, pw, ho, wo, acc, tmp, gx)


@njit(cache=True, parallel=True)
def _input_grad_last(gy, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, nt, gx):
    """``gx[n] = col2im(gy[n].T @ wk)`` with channels-last columns; ``gy`` is ``(N, O, Ho*Wo)``."""
    for t in prange(nt):
        _input_grad_last_images(gy, wk, kh, kw, sh, sw, ph, pw, ho, wo, kc, np.int64(t), nt, gx)


@njit(cache=True)
def _weight_grad_last_images(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, kc, t, nt, part):
    """Adds images ``t, t + nt, ...`` of :func:`_weight_grad_last` into ``part``."""
    n_, c_, h, w = x.shape
    xp = np.zeros((h + 2 * ph) * (w + 2 * pw) * c_, x.dtype)
    tmp = np.empty((h * w, c_), x.dtype)
    cols = np.zeros((ho * wo, part.shape[1]), x.dtype)
    for n in range(t, n_, nt):
        _im2col_last(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, tmp, cols)
        for j0 in range(0, cols.shape[1], kc):
            _axpy(gy[n], cols, part, j0, min(j0 + kc, cols.shape[1]), True)


@njit(cache=True, parallel=True)
def _weight_grad_last(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, kc, nt, parts):
    """``parts[t] += sum gy[n] @ cols_n`` over images ``n = t, t + nt, ...`` (channels-last),
    one zeroed partial sum per thread."""
    for t in prange(nt):
        _weight_grad_last_images(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, kc, np.int64(t), nt, parts[t])


@njit(cache=True)
def _weight_grad_first_images(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, direct, t, nt, part):
    """Adds images ``t, t + nt, ...`` of :func:`_weight_grad_first` into ``part``."""
    n_, c_, h, w = x.shape
    xp = np.zeros((c_, h + 2 * ph, w + 2 * pw), x.dtype)
    cols = np.zeros((0 if direct else part.shape[1], ho * wo), x.dtype)
    for n in range(t, n_, nt):
        if direct:
            _dot(gy[n], x[n].reshape(c_, h * w), part, 0, ho * wo, True)
        else:
            _im2col_first(x, n, kh, kw, sh, sw, ph, pw, ho, wo, xp, cols)
            _dot(gy[n], cols, part, 0, ho * wo, True)


@njit(cache=True, parallel=True)
def _weight_grad_first(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, direct, nt, parts):
    """``parts[t] += sum gy[n] @ cols_n.T`` over images ``n = t, t + nt, ...`` (channels-first
    columns, ``x[n]`` when ``direct``), one zeroed partial sum per thread."""
    for t in prange(nt):
        _weight_grad_first_images(x, gy, kh, kw, sh, sw, ph, pw, ho, wo, direct, np.int64(t), nt, parts[t])


@njit(cache=True)
def _weight_grad_shifted_images(x, gy, kh, kw, ph, pw, ho, wo, t, nt, part):
    """Adds images ``t, t + nt, ...`` of :func:`_weight_grad_shifted` into ``part``."""
    n_, c_, h, w = x.shape
    hp, wp = h + 2 * ph, w + 2 * pw
    xs = np.zeros(c_ * hp * wp + kw - 1, x.dtype)
    offsets = np.zeros(part.shape[1], np.int64)  # the padding columns read from 0 and are cropped
    _shifts(c_, kh, kw, hp, wp, offsets)
    g = np.zeros((part.shape[0], ho * wp), x.dtype)  # gy on the padded width, 0 past each row
    for n in range(t, n_, nt):
        _pad_flat(x, n, ph, pw, xs)
        for o in range(gy.shape[1]):
            for i in range(ho):
                _copy(g[o, i * wp : i * wp + wo], gy[n, o, i * wo : (i + 1) * wo])
        _dot_shifted(g, xs, offsets, part)


@njit(cache=True, parallel=True)
def _weight_grad_shifted(x, gy, kh, kw, ph, pw, ho, wo, nt, parts):
    """``parts[t] += sum gy[n] @ cols_n.T`` over images ``n = t, t + nt, ...`` for stride 1 without
    im2col (the pixel layout of :func:`_forward_shifted`), one zeroed partial sum per thread with
    both sides rounded up to a multiple of 4."""
    for t in prange(nt):
        _weight_grad_shifted_images(x, gy, kh, kw, ph, pw, ho, wo, np.int64(t), nt, parts[t])


def _threads(n: int, macs: int, threaded, dtype) -> int:
    """Threads for a call of ``threaded`` on a batch of ``n`` images and ``macs`` multiply-adds.

    One (the serial ``_images`` kernel, no parallel region) when Numba has one thread, the call
    is smaller than ``PARALLEL_MACS`` (gradient checks, single images), or this kernel has had
    fewer than ``SERIAL_CALLS`` calls for this dtype in the process; else Numba's thread count,
    at most one per image. Compiling a parallel wrapper costs about as much again as its serial
    kernel, so a first forward and backward return sooner, the wrappers compile only for the
    kernels a program keeps calling, and small float64 work never compiles one.
    """
    if numba.get_num_threads() == 1 or n == 1 or macs < PARALLEL_MACS:
        return 1
    calls = _CALLS.get((threaded, dtype), 0)
    if calls < SERIAL_CALLS:
        _CALLS[(threaded, dtype)] = calls + 1
        return 1
    return min(numba.get_num_threads(), n)


def _in_threads(images, threaded, args: tuple, nt: int, out: np.ndarray, per_thread: bool = False) -> None:
    """Run ``threaded(*args, nt, out)``, or ``images(*args, 0, 1, out)`` in this thread when ``nt``
    is 1; with ``per_thread``, ``out`` holds one partial sum per thread (the weight gradients)."""
    if nt > 1:
        threaded(*args, nt, out)
    else:
        images(*args, 0, 1, out[0] if per_thread else out)


def _round_up(k: int, m: int) -> int:
    """The smallest multiple of ``m`` that is at least ``k``."""
    return -(-k // m) * m


def _block(kp: int) -> int:
    """Split ``kp`` columns into equal blocks of at most ``K_BLOCK``, rounded up to ``VEC``."""
    return _round_up(-(-kp // -(-kp // K_BLOCK)), VEC)


def _is_pointwise(kernel_hw, stride, padding) -> bool:
    """True for a 1x1 kernel with stride 1 and no padding (im2col is the identity)."""
    return tuple(kernel_hw) == (1, 1) and stride == (1, 1) and padding == (0, 0)


def conv2d(x: np.ndarray, w: np.ndarray, stride: IntPair, padding: IntPair) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.conv.conv2d`, in the dtype of ``x`` and ``w``."""
    s, pd, (ho, wo) = conv_geometry(x.shape, w.shape, stride, padding)
    dtype = np.result_type(x, w)
    x, w = np.ascontiguousarray(x, dtype), np.ascontiguousarray(w, dtype)
    (n, c), (o, _, kh, kw) = x.shape[:2], w.shape
    k = c * kh * kw
    y = np.empty((n, o, ho * wo), dtype)
    if use_columns_first(k, ho * wo) and s == (1, 1) and not _is_pointwise((kh, kw), s, pd):
        w2 = np.zeros((_round_up(o, 4), k), dtype)
        w2[:o] = w.reshape(o, k)
        nt = _threads(n, n * o * k * ho * wo, _forward_shifted, dtype)
        _in_threads(_forward_shifted_images, _forward_shifted, (x, w2, kh, kw, *pd, ho, wo), nt, y)
    elif use_columns_first(k, ho * wo):
        direct = _is_pointwise((kh, kw), s, pd)
        nt = _threads(n, n * o * k * ho * wo, _forward_first, dtype)
        args = (x, w.reshape(o, k), kh, kw, *s, *pd, ho, wo, direct)
        _in_threads(_forward_first_images, _forward_first, args, nt, y)
    else:
        wk = np.zeros((o, _round_up(k, VEC)), dtype)
        wk[:, :k] = w.transpose(0, 2, 3, 1).reshape(o, k)  # columns (p, q, c)
        nt = _threads(n, n * o * k * ho * wo, _forward_last, dtype)
        args = (x, wk, kh, kw, *s, *pd, ho, wo, _block(wk.shape[1]))
        _in_threads(_forward_last_images, _forward_last, args, nt, y)
    return y.reshape(n, o, ho, wo)


def conv2d_input_grad(
    gy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.conv.conv2d_input_grad`."""
    (h, wd), (n, o), (_, c, kh, kw) = input_hw, gy.shape[:2], w.shape
    s, pd, (ho, wo) = conv_geometry((n, c, h, wd), w.shape, stride, padding)
    check_conv_grad(gy.shape, (n, o, ho, wo))
    dtype = np.result_type(gy, w)
    gy, w = np.ascontiguousarray(gy, dtype), np.ascontiguousarray(w, dtype)
    if s == (1, 1) and pd[0] < kh and pd[1] < kw:
        # gx[c, a, b] = sum_{o,p,q} gy[o, a+ph-p, b+pw-q] w[o, c, p, q]: a stride-1 convolution
        # of gy padded by k-1-p with the weight flipped in space and transposed in (o, c)
        wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        return conv2d(gy, wf, 1, (kh - 1 - pd[0], kw - 1 - pd[1]))
    k = c * kh * kw
    wk = np.zeros((o, _round_up(k, VEC)), dtype)
    wk[:, :k] = w.transpose(0, 2, 3, 1).reshape(o, k)  # columns (p, q, c)
    gx = np.empty((n, c, h, wd), dtype)
    g3 = gy.reshape(n, o, ho * wo)
    nt = _threads(n, n * o * k * ho * wo, _input_grad_last, dtype)
    args = (g3, wk, kh, kw, *s, *pd, ho, wo, _block(wk.shape[1]))
    _in_threads(_input_grad_last_images, _input_grad_last, args, nt, gx)
    return gx


def conv2d_weight_grad(
    x: np.ndarray, gy: np.ndarray, kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.conv.conv2d_weight_grad`."""
    (kh, kw), (n, c), o = kernel_hw, x.shape[:2], gy.shape[1]
    s, pd, (ho, wo) = conv_geometry(x.shape, (o, c, kh, kw), stride, padding)
    check_conv_grad(gy.shape, (n, o, ho, wo))
    dtype = np.result_type(x, gy)
    x, gy = np.ascontiguousarray(x, dtype), np.ascontiguousarray(gy, dtype)
    k, g3 = c * kh * kw, gy.reshape(n, o, ho * wo)
    if use_columns_first(k, ho * wo) and s == (1, 1) and not _is_pointwise(kernel_hw, s, pd):
        nt = _threads(n, n * o * k * ho * wo, _weight_grad_shifted, dtype)
        parts = np.zeros((nt, _round_up(o, 4), _round_up(k, 4)), dtype)
        args = (x, g3, kh, kw, *pd, ho, wo)
        _in_threads(_weight_grad_shifted_images, _weight_grad_shifted, args, nt, parts, True)
        gw2 = parts.sum(axis=0)
        return np.ascontiguousarray(gw2[:o, :k]).reshape(o, c, kh, kw)
    if use_columns_first(k, ho * wo):
        direct = _is_pointwise((kh, kw), s, pd)
        # im2col rows padded with zeros to a multiple of 4 keep every dot product in a 4x4 block
        nt = _threads(n, n * o * k * ho * wo, _weight_grad_first, dtype)
        parts = np.zeros((nt, o, k if direct else _round_up(k, 4)), dtype)
        args = (x, g3, kh, kw, *s, *pd, ho, wo, direct)
        _in_threads(_weight_grad_first_images, _weight_grad_first, args, nt, parts, True)
        gw2 = parts.sum(axis=0)
        return np.ascontiguousarray(gw2[:, :k]).reshape(o, c, kh, kw)
    nt = _threads(n, n * o * k * ho * wo, _weight_grad_last, dtype)
    parts = np.zeros((nt, o, _round_up(k, VEC)), dtype)
    args = (x, g3, kh, kw, *s, *pd, ho, wo, _block(parts.shape[2]))
    _in_threads(_weight_grad_last_images, _weight_grad_last, args, nt, parts, True)
    gwk = parts.sum(axis=0)
    return np.ascontiguousarray(gwk[:, :k].reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
