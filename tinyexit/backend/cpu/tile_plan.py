"""Which kernel taps of each output pixel read the image, and a plan of the channels-last
forward's tiles that leaves out the taps that would only read its zero padding.

A window that hangs over the image's edge reads zeros there: a 3x3 convolution with padding 1
on an 8x8 image spends 16 % of its multiply-adds on them (a border row or column of the output
has 2 valid kernel rows or columns out of 3). Output pixel ``(i, j)`` reads the image for kernel
rows ``p`` with ``0 <= i*sh - ph + p < H`` and columns ``q`` with ``0 <= j*sw - pw + q < W``: a
rectangle of taps, the same for every pixel of a band of rows and columns. The plan groups the
pixels by that rectangle and gives each tile of 6 pixels (:func:`.products._tile_product`) the
taps of its group only; the pixels left over from each group share the last tiles, which take
the smallest rectangle holding all their pixels' taps (a tap outside a pixel's own rectangle
reads the padding's zeros, so any such rectangle gives the same sums). There are as many tiles
as without the plan, each with at most as many taps.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .products import TILE_ROWS


class TilePlan(NamedTuple):
    """The channels-last forward's tiles for one geometry (arrays shared by every call; never
    written to).

    Attributes:
        a_rows: ``(tiles * 6,)`` where the window of each tile row's pixel starts in the flat
            channels-last padded image (0 for the filler rows of the last tile).
        spans: ``(tiles, 2)``: tile ``t`` sums over taps ``a_cols[s0:s1]``, ``b_rows[s0:s1]``.
        a_cols: where tap ``(p, q, c)`` lies from a window's start, ``(p*Wp + q)*C + c``, for
            the taps of each rectangle one after the other.
        b_rows: the same taps' rows ``(p*kw + q)*C + c`` of a weight panel, times its width.
        pixel_rows: ``(Ho*Wo,)`` the row of the product that holds output pixel ``i*Wo + j``.
    """

    a_rows: np.ndarray
    spans: np.ndarray
    a_cols: np.ndarray
    b_rows: np.ndarray
    pixel_rows: np.ndarray


def valid_taps(outputs: int, kernel: int, stride: int, pad: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output position ``i`` along one axis, the kernel positions ``lo[i] <= p < hi[i]``
    whose input ``i*stride - pad + p`` lies inside ``[0, size)`` (``lo == hi``: none)."""
    start = np.arange(outputs) * stride - pad
    lo = np.clip(-start, 0, kernel)
    hi = np.maximum(np.clip(size - start, 0, kernel), lo)
    return lo, hi


@functools.lru_cache(maxsize=64)
def window_offsets(
    channels: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padded_width: int,
    out_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Where the channels-last kernels read the flat padded image (``xpad[i, j, c]`` at
    ``(i*Wp + j)*C + c``, :func:`.layouts._pad_last`).

    Returns:
        ``corners[i*Wo + j] = (i*sh*Wp + j*sw)*C``, where the window of output pixel ``(i, j)``
        starts (uint64), and ``taps[(p*kw + q)*C + c] = (p*Wp + q)*C + c``, where value
        ``(p, q, c)`` of a window lies from its start (int64); shared by every call, never
        written to.
    """
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    i, j = np.divmod(np.arange(ho * wo), wo)
    p, q, c = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(channels), indexing="ij")
    corners = ((i * sh * padded_width + j * sw) * channels).astype(np.uint64)
    return corners, ((p * padded_width + q) * channels + c).reshape(-1)


@functools.lru_cache(maxsize=64)
def tile_plan(
    channels: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    panel: int,
) -> TilePlan:
    """The tiles of a channels-last forward (see the module docstring).

    Args:
        channels: input channels ``C``.
        kernel: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        padding: ``(ph, pw)``.
        in_hw: the input's ``(H, W)``.
        out_hw: the output's ``(Ho, Wo)``.
        panel: the width of the packed weight's panels (``b_rows`` are rows of a panel).

    Returns:
        The plan; ``ceil(Ho*Wo / 6)`` tiles, each over at most ``kh*kw*C`` taps.
    """
    (kh, kw), (sh, sw), (ph, pw), (h, w), (ho, wo) = kernel, stride, padding, in_hw, out_hw
    wp = w + 2 * pw
    p_lo, p_hi = valid_taps(ho, kh, sh, ph, h)
    q_lo, q_hi = valid_taps(wo, kw, sw, pw, w)
    corners, taps = window_offsets(channels, kernel, stride, wp, out_hw)
    i, j = np.divmod(np.arange(ho * wo), wo)
    rects = np.stack([p_lo[i], p_hi[i], q_lo[j], q_hi[j]], axis=1)
    segments: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    a_cols, b_rows = [], []

    def span(rect) -> tuple[int, int]:
        """Where the taps of ``rect`` lie in ``a_cols`` (appending them the first time)."""
        rect = tuple(int(v) for v in rect)
        if rect not in segments:
            p, q, c = np.meshgrid(
                np.arange(rect[0], rect[1]), np.arange(rect[2], rect[3]), np.arange(channels), indexing="ij"
            )
            k = ((p * kw + q) * channels + c).reshape(-1)  # the taps' rows of the weight
            start = sum(len(cols) for cols in a_cols)
            a_cols.append(taps[k])
            b_rows.append(k * panel)
            segments[rect] = (start, start + a_cols[-1].size)
        return segments[rect]

    groups, group_of = np.unique(rects, axis=0, return_inverse=True)
    tiles, spans, rest = [], [], []
    for g, rect in enumerate(groups):
        members = np.flatnonzero(group_of.reshape(-1) == g)  # in row-major order
        full = members.size - members.size % TILE_ROWS
        for t in range(0, full, TILE_ROWS):
            tiles.append(members[t : t + TILE_ROWS])
            spans.append(span(rect))
        rest.extend(members[full:])
    for t in range(0, len(rest), TILE_ROWS):
        members = np.array(rest[t : t + TILE_ROWS])
        box = rects[members]
        tiles.append(members)
        spans.append(span((box[:, 0].min(), box[:, 1].max(), box[:, 2].min(), box[:, 3].max())))
    pixels = np.concatenate(tiles) if tiles else np.zeros(0, np.int64)
    pixel_rows = np.empty(ho * wo, np.int64)
    pixel_rows[pixels] = np.arange(pixels.size)
    a_rows = np.zeros(len(tiles) * TILE_ROWS, np.int64)
    a_rows[: pixels.size] = corners[pixels]
    return TilePlan(
        a_rows,
        np.array(spans, np.int64).reshape(-1, 2),
        np.concatenate(a_cols or [np.zeros(0)]).astype(np.uint64),
        np.concatenate(b_rows or [np.zeros(0)]).astype(np.int64),
        pixel_rows,
    )


@functools.lru_cache(maxsize=64)
def weight_grad_spans(
    channels: int, kernel: tuple[int, int], stride: int, pad: int, in_h: int, out_hw: tuple[int, int]
) -> np.ndarray:
    """Spans for the weight gradient's tiles (:func:`.products._tile_product` with the output
    pixels, row after row, as the sum and the kernel taps ``(p, q, c)`` as the rows, 6 per tile):
    a tap of kernel row ``p`` sums over the output rows whose window row ``p`` lies inside the
    image only. The columns ``q`` are left as they are (their pixels are not contiguous).

    Args:
        channels: input channels ``C``.
        kernel: ``(kh, kw)``.
        stride: the stride along the rows.
        pad: the padding along the rows.
        in_h: the input's height.
        out_hw: the output's ``(Ho, Wo)``.

    Returns:
        ``(ceil(kh*kw*C / 6), 2)``: tile ``t`` sums over pixels ``spans[t, 0] <= k < spans[t, 1]``
        (a tile whose rows span two kernel rows takes the output rows of both).
    """
    (kh, kw), (ho, wo) = kernel, out_hw
    lo, hi = valid_taps(ho, kh, stride, pad, in_h)
    inside = (lo[None, :] <= np.arange(kh)[:, None]) & (np.arange(kh)[:, None] < hi[None, :])  # (kh, Ho)
    first = np.where(inside.any(axis=1), inside.argmax(axis=1), ho)
    last = np.where(inside.any(axis=1), ho - inside[:, ::-1].argmax(axis=1), ho)
    taps = kh * kw * channels
    rows = np.minimum(np.arange(-(-taps // TILE_ROWS) * TILE_ROWS), taps - 1)
    kernel_row = (rows // (kw * channels)).reshape(-1, TILE_ROWS)
    return np.stack([first[kernel_row].min(axis=1), last[kernel_row].max(axis=1)], axis=1) * wo
