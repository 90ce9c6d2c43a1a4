"""Numba matrix products and copies that the CPU convolution kernels (:mod:`.conv`) are built from.

:func:`_tile_product` (the forward) spells out its tiles in vector registers (:mod:`.simd`) and
reads both factors through row and column offsets. The others are loop nests that LLVM
vectorises along one dimension of the matrices: :func:`_dot` along the rows of both factors
(each entry a dot product), :func:`_axpy` along the rows of the second factor and of the result
(each row of the result a sum of scaled rows); :func:`_dot_shifted` is :func:`_dot` where the
rows of one factor are shifted views of one flat array (the stride-1 weight gradient without
im2col). Why each one is written the way it is: the module docstring of :mod:`.conv`.
"""

from __future__ import annotations

import numpy as np

from . import simd
from .jit import njit

_FASTMATH = {"contract", "reassoc"}
"""``contract`` fuses multiply and add; ``reassoc`` lets LLVM reorder the sums into vector lanes."""


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


TILE_ROWS = 6
"""Rows of the output per tile of :func:`_tile_product` (6 rows by 2 registers: 12 sums)."""


@njit(cache=True)
def _tile_product(a, a_rows, a_cols, b, b_rows, b_panel, spans, c, accumulate):
    """``c[r, j] (+)= sum_k a[a_rows[r] + a_cols[k]] * b[(j // 2w)*b_panel + b_rows[k] + j % 2w]``
    on flat ``a`` and ``b`` (``w`` lanes per register): a matrix product whose factors are read
    through row and column offsets, by tiles of 6 rows of ``c`` by 2 registers (:mod:`.simd`)
    that stay in 12 vector registers through the whole sum over ``k``. The tile of rows
    ``6t .. 6t + 5`` sums over ``spans[t, 0] <= k < spans[t, 1]`` only (:func:`whole_spans`:
    every ``k``; the channels-last forward leaves out the taps that read padding,
    :mod:`.tile_plan`).

    ``b_panel`` is where each panel of ``2w`` columns of ``b`` starts after the previous one:
    ``2w`` for a row-major ``b`` (``b_rows[k] = k * n``); ``K * 2w`` for a ``b`` packed panel
    by panel (``b_rows[k] = k * 2w``), whose ``K x 2w`` panel a tile reads front to back instead
    of two registers from every row of a wide matrix (the channels-last forward's weight,
    ``docs/benchmarks.md``).

    Per ``k`` a tile loads two registers of a row of ``b`` and broadcasts 6 values of ``a`` into
    12 fused multiply-adds: no load or store of ``c`` and no sum across lanes inside the loop.
    Columns left over past a multiple of 2 registers take tiles of 6 rows by one register.
    ``c`` is C-contiguous with a multiple of 6 rows and of ``lanes`` columns; every offset must
    leave room for the values it reads (pad with zeros; the extra rows of ``c`` get garbage).
    ``a_cols`` is unsigned: indexing with it needs no check for negative indices, which costs
    three instructions per load in the loop.
    """
    m, n = c.shape
    w = simd.lanes(b)
    n2 = n - n % (2 * w)
    flat = c.reshape(-1)
    for j in range(0, n, 2 * w):
        bj = b[(j // (2 * w)) * b_panel :]
        for i in range(0, m, 6):
            a0, a1, a2, a3 = a[a_rows[i] :], a[a_rows[i + 1] :], a[a_rows[i + 2] :], a[a_rows[i + 3] :]
            a4, a5 = a[a_rows[i + 4] :], a[a_rows[i + 5] :]
            k0, k1 = spans[i // 6, 0], spans[i // 6, 1]
            if j < n2:
                _tile_6x2(
                    a0, a1, a2, a3, a4, a5, a_cols, bj, b_rows, k0, k1, flat[i * n + j :], n, w, accumulate
                )
            else:
                _tile_6x1(
                    a0, a1, a2, a3, a4, a5, a_cols, bj, b_rows, k0, k1, flat[i * n + j :], n, accumulate
                )


@njit(cache=True)
def whole_spans(rows, k):
    """Spans for :func:`_tile_product` by which every tile of ``rows`` rows sums over all ``k``."""
    spans = np.zeros((-(-rows // TILE_ROWS), 2), np.int64)
    spans[:, 1] = k
    return spans


@njit(cache=True)
def _tile_6x2(a0, a1, a2, a3, a4, a5, a_cols, b, b_rows, k0, k1, c, n, w, accumulate):
    """One tile of :func:`_tile_product`: ``c[r*n : r*n + 2*w] (+)= sum_k ar[a_cols[k]] * b[b_rows[k]
    : b_rows[k] + 2*w]`` over ``k0 <= k < k1`` for the 6 rows ``r``, in 12 registers."""
    if accumulate:
        c00, c01, c10, c11 = simd.load(c, 0), simd.load(c, w), simd.load(c, n), simd.load(c, n + w)
        c20, c21, c30, c31 = (
            simd.load(c, 2 * n),
            simd.load(c, 2 * n + w),
            simd.load(c, 3 * n),
            simd.load(c, 3 * n + w),
        )
        c40, c41, c50, c51 = (
            simd.load(c, 4 * n),
            simd.load(c, 4 * n + w),
            simd.load(c, 5 * n),
            simd.load(c, 5 * n + w),
        )
    else:
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = simd.zeros(b)
    for k in range(k0, k1):
        q, ak = b_rows[k], a_cols[k]
        b0, b1 = simd.load(b, q), simd.load(b, q + w)
        y0, y1, y2, y3, y4, y5 = a0[ak], a1[ak], a2[ak], a3[ak], a4[ak], a5[ak]
        c00, c01 = simd.fma(c00, y0, b0), simd.fma(c01, y0, b1)
        c10, c11 = simd.fma(c10, y1, b0), simd.fma(c11, y1, b1)
        c20, c21 = simd.fma(c20, y2, b0), simd.fma(c21, y2, b1)
        c30, c31 = simd.fma(c30, y3, b0), simd.fma(c31, y3, b1)
        c40, c41 = simd.fma(c40, y4, b0), simd.fma(c41, y4, b1)
        c50, c51 = simd.fma(c50, y5, b0), simd.fma(c51, y5, b1)
    simd.store(c, 0, c00)
    simd.store(c, w, c01)
    simd.store(c, n, c10)
    simd.store(c, n + w, c11)
    simd.store(c, 2 * n, c20)
    simd.store(c, 2 * n + w, c21)
    simd.store(c, 3 * n, c30)
    simd.store(c, 3 * n + w, c31)
    simd.store(c, 4 * n, c40)
    simd.store(c, 4 * n + w, c41)
    simd.store(c, 5 * n, c50)
    simd.store(c, 5 * n + w, c51)


@njit(cache=True)
def _tile_6x1(a0, a1, a2, a3, a4, a5, a_cols, b, b_rows, k0, k1, c, n, accumulate):
    """:func:`_tile_6x2` for a tile one register wide, in 6 registers."""
    if accumulate:
        c0, c1, c2 = simd.load(c, 0), simd.load(c, n), simd.load(c, 2 * n)
        c3, c4, c5 = simd.load(c, 3 * n), simd.load(c, 4 * n), simd.load(c, 5 * n)
    else:
        c0 = c1 = c2 = c3 = c4 = c5 = simd.zeros(b)
    for k in range(k0, k1):
        ak, bk = a_cols[k], simd.load(b, b_rows[k])
        c0, c1, c2 = simd.fma(c0, a0[ak], bk), simd.fma(c1, a1[ak], bk), simd.fma(c2, a2[ak], bk)
        c3, c4, c5 = simd.fma(c3, a3[ak], bk), simd.fma(c4, a4[ak], bk), simd.fma(c5, a5[ak], bk)
    simd.store(c, 0, c0)
    simd.store(c, n, c1)
    simd.store(c, 2 * n, c2)
    simd.store(c, 3 * n, c3)
    simd.store(c, 4 * n, c4)
    simd.store(c, 5 * n, c5)
