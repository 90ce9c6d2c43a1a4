"""2-D convolution kernels for the CPU: Numba matrix products, image by image.

**Forward** (also the input gradient at stride 1, which is a convolution of ``gy`` by the
flipped and transposed weight): one matrix product per image, without im2col, by
:func:`.products._tile_product`, which keeps 6x2-register tiles of the output in vector
registers and reads its factors through row and column offsets. Two layouts:

- **shifted, channels-first** (:func:`_forward_shifted`): ``y[o, pixel] = sum_k w[o, k] *
  b[k, pixel]`` where, with the output pixels laid out on the padded width, row ``(c, p, q)``
  of ``b`` is the flat padded image read from one offset on (stride 1 only; the ``Wp - Wo``
  values past each output row are discarded).
- **channels-last** (:func:`_forward_last`): ``y[pixel, o] = sum_k a[pixel, k] * w[k, o]``
  where the row of a pixel is the channels-last padded image read at its window
  (``(p*Wp + q)*C + c`` from the window's corner, any stride), and the weight is packed as
  ``K x 2w`` panels of two registers' columns; the output is transposed back. Each tile of 6
  pixels sums only over the kernel taps that read the image, not its zero padding
  (:mod:`.tile_plan`). Every stride but 1, and at stride 1 wherever it computes fewer
  multiply-adds than the shifted layout (:func:`_shifting_pays`: the 8x8 and 16x16 layers, and
  32x32 layers whose output channels fill whole registers), but not for 1x1 kernels or fewer than
  8 input channels.

The copies between layouts (transposes, padding, im2col and col2im) are in :mod:`.layouts`.

**Weight gradient** (:func:`_weight_grad_tiles`): the same tiles, with the pixels as the sum:
``gw[(p, q, c), o] = sum_pixel a[pixel, (p, q, c)] * gy[o, pixel]``, ``a`` read from the
channels-last padded image as in the forward and ``gy[n]`` transposed; a tap sums over the
output rows where it reads the image only (:func:`.tile_plan.weight_grad_spans`). Where that does not pay
(:func:`_weight_tiles_pay`: fewer than 8 input channels, 1x1 kernels on large images), and for
the **input gradient** at strides other than 1, each image is unfolded into a column matrix in
one of two layouts and multiplied with a Numba matrix product that LLVM vectorises along one
matrix dimension:

- **channels-last** (``cols[pixel, (p, q, c)]``, rows padded with zeros to a multiple of
  ``VEC``): the weight gradient adds rows of ``cols`` (:func:`_axpy`, vectorised along ``K``),
  and the input gradient at strides other than 1 adds rows of ``w`` into ``dcols[pixel, :]``
  before the scatter-add col2im.
- **channels-first** (``cols[(c, p, q), pixel]``): the weight gradient is a dot product along
  the pixels (:func:`_dot`). A 1x1 convolution with stride 1 and no padding skips im2col:
  ``cols`` is the image itself. Other stride-1 convolutions skip it too
  (:func:`_weight_grad_shifted`), reading shifted views of the padded image as the forward does
  (:func:`_dot_shifted`).

:func:`use_columns_first` picks the weight gradient's layout that vectorises along the longer
dimension. The images of the batch are split between ``numba.get_num_threads()`` threads
(``prange``), each with its own scratch; the weight gradient sums one partial result per thread.
Small calls and the first calls of each kernel run in the calling thread (:func:`_threads`).

Why it is written this way (the measurements are in ``docs/benchmarks.md``):

- The products are Numba code, not NumPy's ``@``: Numba compiles for the host CPU (AVX-512
  where there is one), which beats the OpenBLAS sgemm kernel that ``OPENBLAS_CORETYPE=Haswell``
  selects on these small products. The forward's tiles (:mod:`.simd`) reach 85-100 % of the
  machine's multiply-add peak where the loops that LLVM vectorises by itself reached 40-85 %:
  :func:`_dot` keeps a 4x4 block of sums in registers but must sum each across its lanes at
  the end (``reassoc`` lets LLVM reorder them); :func:`_axpy` loads and stores a row of the
  output for every 16 fused multiply-adds.
- A border pixel's window reads the zero padding: a 3x3 convolution with padding 1 on an 8x8
  image spends 16 % of its multiply-adds there, and PyTorch's kernels leave them out. Leaving
  them out here too (:mod:`.tile_plan`) made the 8x8 forward 11-15 % faster; the tile itself
  runs at 97 % of the multiply-add peak on its own.
- The transposes into and out of channels-last move 8x8 blocks in vector registers
  (:func:`.simd.transpose_block`, two to three times as fast as one value at a time).
- The channels-last forward packs its weight panel by panel, so that a tile reads its ``K x 2w``
  panel front to back instead of two registers from each row of a wide matrix, and starts it on
  a cache line (NumPy aligns large arrays to 16 bytes, so every 64-byte load straddled two
  lines): the 8x8 layers' forward 2-3 % faster (one thread, ``bench/ab_conv.py``).
- Neither forward layout builds columns: im2col wrote each input value ``kh*kw`` times into a
  column matrix far larger than the level-1 cache for every image, and that copy plus reading
  it back cost a large share of the small-channel layers (and, on the 8x8 layers, 2-4 ms of a
  6-7 ms forward); the tiles read the padded image itself through offsets.
- The shifted weight gradient reads the padded image, ``kh*kw`` times smaller than the columns,
  at the price of the ``Wp - Wo`` discarded values per output row. The shifted products pad
  the weight (forward, to a multiple of 6) and the output gradient (weight gradient, of 4)
  with zero rows, so that every row goes through the full tiles: a single-row pass (three
  outputs in the input gradient of a 3-channel layer) was several times slower per
  multiply-add.
- The channels-last im2col copies each kernel row (``kw*C`` values, contiguous in the padded
  image whatever the stride) in one run.
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

from . import simd
from .jit import njit
from .layouts import (
    _col2im_last,
    _im2col_first,
    _im2col_last,
    _pad_flat,
    _pad_last,
    _shifts,
    _transpose,
    _transpose_rows,
)
from .products import TILE_ROWS, _axpy, _copy, _dot, _dot_shifted, _tile_product, whole_spans
from .tile_plan import tile_plan, weight_grad_spans, window_offsets

VEC = 16
"""Channels-last rows are padded with zeros to a multiple of this many values (one AVX-512
register of float32), so that the dot products need no scalar tail."""

K_BLOCK = 1024
"""Channels-last products go through the columns in blocks of this many (a multiple of ``VEC``),
so that the rows a block reuses stay in the level-1 cache."""

PARALLEL_MACS = 1 << 22
"""Calls with fewer multiply-adds than this run in the calling thread (see :func:`_threads`)."""


ALIAS_GAP = 2560
"""Bytes between the start of a kernel's input and of its output modulo 4 KiB (see
:func:`_empty_apart`): far from 0 modulo 4096, 2048 and 1024, the row lengths of the 32x32,
16x32 and 16x16 layers."""

MIN_LAST_CHANNELS = 8
"""Stride-1 forwards with fewer input channels stay shifted (see :func:`_shifting_pays`)."""

SERIAL_CALLS = 4
"""Calls of a kernel (per dtype) that run serially before its parallel wrapper is compiled."""

_CALLS: dict = {}
"""Calls so far of each (parallel wrapper, dtype), counted up to ``SERIAL_CALLS``."""


def use_columns_first(k: int, pixels: int) -> bool:
    """Pick the column layout: channels-first when an image has at least as many output pixels
    as the weight has columns ``k``, so that the products vectorise along the longer one."""
    return pixels >= k


@njit(cache=True)
def _forward_shifted_images(x, wt, kh, kw, ph, pw, ho, wo, t, nt, y):
    """Images ``t, t + nt, ...`` of :func:`_forward_shifted`."""
    n_, c_, h, w = x.shape
    hp, wp = h + 2 * ph, w + 2 * pw
    k, row, lanes = c_ * kh * kw, ho * wp, simd.lanes(x)
    width = -(-row // lanes) * lanes
    # kw - 1 more zeros for the overhang of the last window row, width - row for the last tile
    xs = np.zeros(c_ * hp * wp + kw - 1 + width - row, x.dtype)
    b_rows = np.empty(k, np.int64)  # row (c, p, q) of b: the padded image from (c*hp + p)*wp + q
    _shifts(c_, kh, kw, hp, wp, b_rows)
    a_rows, a_cols = np.arange(wt.shape[0]) * k, np.arange(k).astype(np.uint64)
    acc = np.empty((wt.shape[0], width), x.dtype)
    spans = whole_spans(wt.shape[0], k)
    for n in range(t, n_, nt):
        _pad_flat(x, n, ph, pw, xs)
        _tile_product(wt.reshape(-1), a_rows, a_cols, xs, b_rows, 2 * lanes, spans, acc, False)
        for o in range(y.shape[1]):
            for i in range(ho):
                _copy(y[n, o, i * wo : (i + 1) * wo], acc[o, i * wp : i * wp + wo])


@njit(cache=True)
def _forward_last_images(x, wt, ph, pw, a_rows, spans, a_cols, b_rows, pixel_rows, t, nt, y):
    """Images ``t, t + nt, ...`` of :func:`_forward_last`."""
    n_, c_, h, w = x.shape
    xs = np.zeros((h + 2 * ph) * (w + 2 * pw) * c_, x.dtype)
    tmp = np.empty((h * w, c_), x.dtype)
    lanes = simd.lanes(x)
    acc = np.empty((a_rows.size, -(-y.shape[1] // lanes) * lanes), x.dtype)
    for n in range(t, n_, nt):
        _pad_last(x, n, ph, pw, tmp, xs)
        _tile_product(xs, a_rows, a_cols, wt.reshape(-1), b_rows, wt[0].size, spans, acc, False)
        _transpose_rows(acc, pixel_rows, y[n])


@njit(cache=True, parallel=True)
def _forward_shifted(x, wt, kh, kw, ph, pw, ho, wo, nt, y):
    """``y[n] = w @ cols_n`` at stride 1 without columns, by tiles of the product kept in
    registers (:func:`.products._tile_product`): ``wt`` is the ``(O, K)`` weight with its rows
    padded to a multiple of 6; output pixel ``(i, j)`` sits at ``i*Wp + j`` of a row of length
    ``Ho*Wp`` (``Wp`` the padded width), where the column row of ``(c, p, q)`` is the padded
    image read from ``(c*Hp + p)*Wp + q`` on; the ``Wp - Wo`` values past each output row are
    discarded."""
    for t in prange(nt):
        _forward_shifted_images(x, wt, kh, kw, ph, pw, ho, wo, np.int64(t), nt, y)


@njit(cache=True, parallel=True)
def _forward_last(x, wt, ph, pw, a_rows, spans, a_cols, b_rows, pixel_rows, nt, y):
    """``y[n].T = a_n @ wt`` without columns, by tiles of the product kept in registers
    (:func:`.products._tile_product`): ``wt`` is the ``(K, O)`` weight with rows ``(p, q, c)``,
    packed as ``(O / 2w, K, 2w)`` panels of two registers' columns (``w`` lanes, ``O`` padded
    with zeros) that a tile reads front to back; the image is copied channels-last
    with its padding, and the row of output pixel ``(i, j)`` is read from it at its window, any
    stride, over the kernel taps that fall inside the image (the plan of :mod:`.tile_plan`:
    ``a_rows``, ``spans``, ``a_cols``, ``b_rows``, and ``pixel_rows``, where each pixel's row
    of the product lies)."""
    for t in prange(nt):
        _forward_last_images(x, wt, ph, pw, a_rows, spans, a_cols, b_rows, pixel_rows, np.int64(t), nt, y)


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
def _weight_grad_tiles_images(x, gy, ph, pw, taps, corners, spans, t, nt, part):
    """Adds images ``t, t + nt, ...`` of :func:`_weight_grad_tiles` into ``part``."""
    n_, c_, h, w = x.shape
    pixels, o_, lanes = corners.size, gy.shape[1], part.shape[1]
    xs = np.zeros((h + 2 * ph) * (w + 2 * pw) * c_, x.dtype)
    tmp = np.empty((h * w, c_), x.dtype)
    gt = np.zeros((pixels, lanes), x.dtype)  # gy[n] transposed, zeros past its O columns
    b_rows = np.arange(pixels) * lanes
    for n in range(t, n_, nt):
        _pad_last(x, n, ph, pw, tmp, xs)
        _transpose(gy[n], gt[:, :o_])
        _tile_product(xs, taps, corners, gt.reshape(-1), b_rows, 2 * simd.lanes(x), spans, part, True)


@njit(cache=True, parallel=True)
def _weight_grad_tiles(x, gy, ph, pw, taps, corners, spans, nt, parts):
    """``parts[t] += sum cols_n.T @ gy[n].T`` over images ``n = t, t + nt, ...``, one zeroed
    partial sum per thread, rows ``(p, q, c)`` padded to a multiple of 6, columns ``O`` to one of
    the register's lanes: the channels-last forward's tiles with the pixels as the sum, without
    im2col (the window of a pixel is read from the channels-last padded image, any stride, at the
    offsets of :func:`.tile_plan.window_offsets`: ``taps`` padded with zeros to the rows of
    ``parts``, ``corners`` of the pixels); a tap sums over the output rows where it reads the
    image only (``spans``, :func:`.tile_plan.weight_grad_spans`)."""
    for t in prange(nt):
        _weight_grad_tiles_images(x, gy, ph, pw, taps, corners, spans, np.int64(t), nt, parts[t])


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


def _empty_apart(x: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose start lies ``ALIAS_GAP`` bytes past the start of
    ``x`` modulo 4 KiB (a view of a slightly larger allocation).

    The products read rows of the input and write rows of the output in step. When both start at
    nearly the same offset within a 4 KiB page and their rows are a multiple of 4 KiB long (the
    32x32 layers), a load's 12 low address bits match those of a store still in flight, and the CPU
    stalls as if they overlapped (4K aliasing). Where NumPy placed the two arrays decided it, so
    the same layer ran at one speed or at half of it from one process to the next.
    """
    return _empty_placed(shape, dtype, x.ctypes.data + ALIAS_GAP, 4096)


def _aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array that starts on a 64-byte boundary (a cache line)."""
    return _empty_placed(shape, dtype, 0, 64)


def _empty_placed(shape: tuple[int, ...], dtype, offset: int, modulus: int) -> np.ndarray:
    """An uninitialised C-contiguous array whose start lies ``offset`` bytes past a multiple of
    ``modulus`` (a view of an allocation ``modulus`` bytes larger)."""
    size, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    buffer = np.empty(size + modulus // item, dtype)
    start = (offset - buffer.ctypes.data) % modulus // item
    return buffer[start : start + size].reshape(shape)


def _pack_panels(w: np.ndarray, panel: int) -> np.ndarray:
    """The ``(O, C, kh, kw)`` weight (any strides) as the channels-last forward reads it, in one
    copy: ``wt[o // P, (p*kw + q)*C + c, o % P] = w[o, c, p, q]`` for panels ``P = panel`` wide,
    zeros past ``O``, starting on a cache line."""
    o, c, kh, kw = w.shape
    full = o // panel
    wt = _aligned_empty((-(-o // panel), c * kh * kw, panel), w.dtype)
    wt[:full].reshape(full, kh, kw, c, panel)[...] = (
        w[: full * panel].reshape(full, panel, c, kh, kw).transpose(0, 3, 4, 2, 1)
    )
    if o % panel:
        last = wt[full].reshape(kh, kw, c, panel)
        last[..., : o % panel] = w[full * panel :].transpose(2, 3, 1, 0)
        last[..., o % panel :] = 0
    return wt


def _float_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """The dtype the kernels compute ``a`` with ``b`` in: float32 or float64, else a TypeError."""
    dtype = np.result_type(a, b)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"the CPU convolution kernels compute in float32 or float64, got {dtype}")
    return dtype


def _round_up(k: int, m: int) -> int:
    """The smallest multiple of ``m`` that is at least ``k``."""
    return -(-k // m) * m


def _block(kp: int) -> int:
    """Split ``kp`` columns into equal blocks of at most ``K_BLOCK``, rounded up to ``VEC``."""
    return _round_up(-(-kp // -(-kp // K_BLOCK)), VEC)


def _shifting_pays(c: int, o: int, kernel_hw, padding: IntPair, in_hw, out_hw, dtype) -> bool:
    """Pick the layout of a stride-1 forward by the multiply-adds each computes (measurements in
    ``docs/benchmarks.md``, "Leaving out the products with the zero padding").

    Channels-last computes its output channels rounded up to the register's lanes over the taps
    of its plan (:mod:`.tile_plan`, none over the padding); shifted computes them rounded up to 6
    over every tap for ``Ho*Wp`` values (the ``Wp - Wo`` past each output row discarded) rounded
    up to the lanes. The one that computes fewer; but shifted for a 1x1 kernel, and for fewer
    than ``MIN_LAST_CHANNELS`` input channels, where channels-last's transposes of the image in
    and of the output out cost more than the products.
    """
    lanes = simd.register_lanes(8 * np.dtype(dtype).itemsize)
    (kh, kw), (ho, wo) = kernel_hw, out_hw
    if (kh, kw) == (1, 1) or c < MIN_LAST_CHANNELS:
        return True
    plan = tile_plan(c, (kh, kw), (1, 1), padding, in_hw, out_hw, 2 * lanes)
    last = _round_up(o, lanes) * int(np.diff(plan.spans, axis=1).sum()) * TILE_ROWS
    shifted = _round_up(o, 6) * c * kh * kw * _round_up(ho * (wo + kw - 1), lanes)
    return last >= shifted


def _weight_tiles_pay(c: int, pointwise: bool, pixels: int) -> bool:
    """Whether a weight gradient goes through :func:`_weight_grad_tiles` (measured in
    ``docs/benchmarks.md``): not with fewer than 8 input channels, whose sums over ``C*kh*kw``
    rows fill few tiles, nor for a 1x1 convolution of a large image, where transposing the image
    and the output gradient costs more than the few multiply-adds per value; the dot products
    along the pixels of :func:`_weight_grad_first` and :func:`_weight_grad_shifted` take those."""
    return c >= 8 and not (pointwise and pixels >= 256)


def _is_pointwise(kernel_hw, stride, padding) -> bool:
    """True for a 1x1 kernel with stride 1 and no padding (im2col is the identity)."""
    return tuple(kernel_hw) == (1, 1) and stride == (1, 1) and padding == (0, 0)


def conv2d(x: np.ndarray, w: np.ndarray, stride: IntPair, padding: IntPair) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.conv.conv2d`, in the dtype of ``x`` and ``w``."""
    s, pd, (ho, wo) = conv_geometry(x.shape, w.shape, stride, padding)
    dtype = _float_dtype(x, w)
    x, w = np.ascontiguousarray(x, dtype), w.astype(dtype, copy=False)  # w: any view, packed below
    (n, c), (o, _, kh, kw) = x.shape[:2], w.shape
    k = c * kh * kw
    y = _empty_apart(x, (n, o, ho * wo), dtype)
    if s == (1, 1) and _shifting_pays(c, o, (kh, kw), pd, x.shape[2:], (ho, wo), dtype):
        wt = np.zeros((_round_up(o, 6), k), dtype)
        wt[:o].reshape(w.shape)[...] = w  # columns (c, p, q)
        nt = _threads(n, n * o * k * ho * wo, _forward_shifted, dtype)
        _in_threads(_forward_shifted_images, _forward_shifted, (x, wt, kh, kw, *pd, ho, wo), nt, y)
    else:
        panel = 2 * simd.register_lanes(8 * dtype.itemsize)
        wt = _pack_panels(w, panel)
        plan = tile_plan(c, (kh, kw), s, pd, x.shape[2:], (ho, wo), panel)
        nt = _threads(n, n * o * k * ho * wo, _forward_last, dtype)
        _in_threads(_forward_last_images, _forward_last, (x, wt, *pd, *plan), nt, y)
    return y.reshape(n, o, ho, wo)


def conv2d_input_grad(
    gy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.conv.conv2d_input_grad`."""
    (h, wd), (n, o), (_, c, kh, kw) = input_hw, gy.shape[:2], w.shape
    s, pd, (ho, wo) = conv_geometry((n, c, h, wd), w.shape, stride, padding)
    check_conv_grad(gy.shape, (n, o, ho, wo))
    dtype = _float_dtype(gy, w)
    gy, w = np.ascontiguousarray(gy, dtype), np.ascontiguousarray(w, dtype)
    if s == (1, 1) and pd[0] < kh and pd[1] < kw:
        # gx[c, a, b] = sum_{o,p,q} gy[o, a+ph-p, b+pw-q] w[o, c, p, q]: a stride-1 convolution
        # of gy padded by k-1-p with the weight flipped in space and transposed in (o, c)
        return conv2d(gy, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), 1, (kh - 1 - pd[0], kw - 1 - pd[1]))
    k = c * kh * kw
    wk = np.zeros((o, _round_up(k, VEC)), dtype)
    wk[:, :k] = w.transpose(0, 2, 3, 1).reshape(o, k)  # columns (p, q, c)
    gx = _empty_apart(gy, (n, c, h, wd), dtype)
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
    dtype = _float_dtype(x, gy)
    x, gy = np.ascontiguousarray(x, dtype), np.ascontiguousarray(gy, dtype)
    k, g3 = c * kh * kw, gy.reshape(n, o, ho * wo)
    if _weight_tiles_pay(c, _is_pointwise(kernel_hw, s, pd), ho * wo):
        nt = _threads(n, n * o * k * ho * wo, _weight_grad_tiles, dtype)
        parts = np.zeros((nt, _round_up(k, 6), _round_up(o, simd.register_lanes(8 * dtype.itemsize))), dtype)
        corners, taps = window_offsets(c, (kh, kw), s, x.shape[3] + 2 * pd[1], (ho, wo))
        rows = np.zeros(parts.shape[1], np.int64)  # taps (p, q, c), then zero rows to a multiple of 6
        rows[:k] = taps
        spans = weight_grad_spans(c, (kh, kw), s[0], pd[0], x.shape[2], (ho, wo))
        args = (x, g3, *pd, rows, corners, spans)
        _in_threads(_weight_grad_tiles_images, _weight_grad_tiles, args, nt, parts, True)
        gwt = parts.sum(axis=0)[:k, :o].reshape(kh, kw, c, o)
        return np.ascontiguousarray(gwt.transpose(3, 2, 0, 1))
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
