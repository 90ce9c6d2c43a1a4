"""The plan of the channels-last forward's tiles: which kernel taps each output pixel reads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyexit.backend.cpu.products import TILE_ROWS
from tinyexit.backend.cpu.tile_plan import tile_plan, valid_taps, weight_grad_spans, window_offsets
from tinyexit.backend.geometry import conv_geometry


def _brute_valid(outputs, kernel, stride, pad, size):
    """For each output position, the kernel positions whose input lies inside, one by one."""
    return [[p for p in range(kernel) if 0 <= i * stride - pad + p < size] for i in range(outputs)]


@settings(max_examples=60, deadline=None)
@given(kernel=st.integers(1, 6), stride=st.integers(1, 3), pad=st.integers(0, 6), size=st.integers(1, 12))
def test_valid_taps_are_the_kernel_positions_inside_the_input(kernel, stride, pad, size):
    outputs = (size + 2 * pad - kernel) // stride + 1
    if outputs < 1:
        return
    lo, hi = valid_taps(outputs, kernel, stride, pad, size)
    for i, taps in enumerate(_brute_valid(outputs, kernel, stride, pad, size)):
        assert list(range(lo[i], hi[i])) == taps


def _check_plan(channels, kernel, stride, padding, in_hw, panel):
    """Every pixel in one row of one tile, whose taps hold all the taps its window reads inside
    the image and no others outside the kernel; returns the multiply-adds per output channel."""
    (kh, kw), (sh, sw), (ph, pw), (h, w) = kernel, stride, padding, in_hw
    _, _, (ho, wo) = conv_geometry((1, channels, h, w), (1, channels, kh, kw), stride, padding)
    plan = tile_plan(channels, kernel, stride, padding, in_hw, (ho, wo), panel)
    tiles = -(-ho * wo // TILE_ROWS)
    assert plan.a_rows.shape == (tiles * TILE_ROWS,) and plan.spans.shape == (tiles, 2)
    assert sorted(plan.pixel_rows) == list(range(ho * wo))  # ho*wo <= tiles*6: filler rows last
    assert plan.a_cols.dtype == np.uint64 and plan.b_rows.dtype == np.int64
    wp = w + 2 * pw
    rows_p, cols_q = _brute_valid(ho, kh, sh, ph, h), _brute_valid(wo, kw, sw, pw, w)
    for pixel in range(ho * wo):
        i, j = divmod(pixel, wo)
        row = plan.pixel_rows[pixel]
        assert plan.a_rows[row] == (i * sh * wp + j * sw) * channels
        k0, k1 = plan.spans[row // TILE_ROWS]
        offsets = plan.a_cols[k0:k1].astype(np.int64)
        p, rest = np.divmod(offsets, wp * channels)
        q, c = np.divmod(rest, channels)
        assert np.all(p < kh) and np.all(q < kw)
        np.testing.assert_array_equal(plan.b_rows[k0:k1], ((p * kw + q) * channels + c) * panel)
        read = set(zip(p.tolist(), q.tolist(), c.tolist()))
        needed = {(a, b, ch) for a in rows_p[i] for b in cols_q[j] for ch in range(channels)}
        assert needed <= read
    return int(np.diff(plan.spans, axis=1).sum()) * TILE_ROWS


def test_plan_of_the_8x8_layers_leaves_out_the_padding():
    # 3x3, padding 1, 8x8: 36 inner pixels (6 tiles, 9 taps), 4 edges of 6 (one tile each, 6
    # taps) and the 4 corners in one tile (all 9 taps): 87 of 11 * 9 = 99 tile-taps
    macs = _check_plan(96, (3, 3), (1, 1), (1, 1), (8, 8), 32)
    assert macs == 87 * 6 * 96
    assert macs / (11 * 6 * 9 * 96) == pytest.approx(0.879, abs=1e-3)


@pytest.mark.parametrize(
    "channels, kernel, stride, padding, in_hw",
    [
        (48, (3, 3), (2, 2), (1, 1), (16, 16)),  # only the first row and column hang over
        (3, (3, 3), (1, 1), (1, 1), (32, 32)),
        (2, (3, 3), (1, 1), (3, 3), (4, 4)),  # corner windows read only padding
        (5, (5, 5), (1, 1), (4, 4), (6, 6)),
        (4, (3, 2), (2, 1), (1, 0), (7, 9)),
        (7, (1, 1), (1, 1), (0, 0), (5, 5)),  # nothing to leave out
        (1, (3, 3), (1, 1), (1, 1), (1, 1)),
    ],
    ids=str,
)
def test_plan_covers_every_tap_each_pixel_reads(channels, kernel, stride, padding, in_hw):
    _, _, (ho, wo) = conv_geometry((1, channels) + in_hw, (1, channels) + kernel, stride, padding)
    macs = _check_plan(channels, kernel, stride, padding, in_hw, 16)
    assert macs <= -(-ho * wo // TILE_ROWS) * TILE_ROWS * kernel[0] * kernel[1] * channels


@settings(max_examples=40, deadline=None)
@given(
    channels=st.integers(1, 5),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    in_hw=st.tuples(st.integers(1, 11), st.integers(1, 11)),
)
def test_plan_covers_every_tap_for_any_geometry(channels, kernel, stride, padding, in_hw):
    if any(s + 2 * p < k for s, p, k in zip(in_hw, padding, kernel)):
        return  # no output (conv_geometry refuses it)
    _check_plan(channels, kernel, stride, padding, in_hw, 8)


@settings(max_examples=60, deadline=None)
@given(
    channels=st.integers(1, 8),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.integers(1, 3),
    pad=st.integers(0, 4),
    in_h=st.integers(1, 11),
    wo=st.integers(1, 5),
)
def test_weight_grad_spans_hold_every_pixel_a_tap_reads_inside(channels, kernel, stride, pad, in_h, wo):
    (kh, kw), taps = kernel, channels * kernel[0] * kernel[1]
    if in_h + 2 * pad < kh:
        return
    ho = (in_h + 2 * pad - kh) // stride + 1
    spans = weight_grad_spans(channels, kernel, stride, pad, in_h, (ho, wo))
    assert spans.shape == (-(-taps // TILE_ROWS), 2)
    rows_of_p = [[i for i in range(ho) if p in _brute_valid(ho, kh, stride, pad, in_h)[i]] for p in range(kh)]
    for tap in range(taps):
        k0, k1 = spans[tap // TILE_ROWS]
        assert 0 <= k0 and k1 <= ho * wo
        needed = {i * wo + j for i in rows_of_p[tap // (kw * channels)] for j in range(wo)}
        assert needed <= set(range(k0, k1))


def test_weight_grad_spans_of_the_8x8_layers():
    # kernel rows 0 and 2 skip one of the 8 output rows: taps (p, q, c) of 96 channels, 6 per tile
    spans = weight_grad_spans(96, (3, 3), 1, 1, 8, (8, 8))
    per_row = 3 * 96 // TILE_ROWS
    np.testing.assert_array_equal(spans[:per_row], [[8, 64]] * per_row)
    np.testing.assert_array_equal(spans[per_row : 2 * per_row], [[0, 64]] * per_row)
    np.testing.assert_array_equal(spans[2 * per_row :], [[0, 56]] * per_row)


@pytest.mark.parametrize(
    "channels, kernel, stride, padded_width, out_hw",
    [(3, (3, 3), (1, 1), 10, (8, 8)), (5, (3, 2), (2, 1), 9, (4, 8)), (1, (1, 1), (3, 3), 7, (3, 3))],
    ids=str,
)
def test_window_offsets_are_where_each_window_and_tap_lies(channels, kernel, stride, padded_width, out_hw):
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    corners, taps = window_offsets(channels, kernel, stride, padded_width, out_hw)
    assert corners.dtype == np.uint64 and taps.dtype == np.int64
    assert list(corners) == [
        (i * sh * padded_width + j * sw) * channels for i in range(ho) for j in range(wo)
    ]
    expected = [
        (p * padded_width + q) * channels + c for p in range(kh) for q in range(kw) for c in range(channels)
    ]
    assert list(taps) == expected
