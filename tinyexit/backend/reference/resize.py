"""Bilinear resizing in plain NumPy: the readable specification and the test oracle.

Semantics are ``torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=...)``
on NCHW arrays. Output row ``i`` reads the source coordinate

- ``align_corners=True``:  ``src = i * (H - 1) / (Ho - 1)`` (``0`` when ``Ho == 1``), so the
  corner pixels of input and output coincide;
- ``align_corners=False``: ``src = max((i + 0.5) * H / Ho - 0.5, 0)``, so pixel *centres* are
  matched and coordinates left of the first centre clamp to it;

and mixes rows ``h0 = floor(src)`` and ``h1 = min(h0 + 1, H - 1)`` with weights ``1 - l`` and
``l = src - h0``; columns likewise (:func:`tinyexit.backend.geometry.source_index`, the rule
every backend applies).
"""

from __future__ import annotations

import numpy as np

from tinyexit.backend.geometry import IntPair, check_nchw, check_size, source_index


def interpolate_bilinear(x: np.ndarray, size: IntPair, align_corners: bool) -> np.ndarray:
    """Bilinear resize, as ``torch.nn.functional.interpolate(mode="bilinear")``.

    Args:
        x: Input of shape (N, C, H, W), float32 or float64.
        size: Output size ``(Ho, Wo)`` (an int means a square).
        align_corners: PyTorch's ``align_corners``.

    Returns:
        The resized array of shape (N, C, Ho, Wo), same dtype as ``x``.
    """
    check_nchw(x)
    check_size(x.shape[2:], "input size")
    (ho, wo), dt = check_size(size), x.dtype
    h0, h1, lh = source_index(x.shape[2], ho, align_corners)
    w0, w1, lw = source_index(x.shape[3], wo, align_corners)
    lh, lw = lh.astype(dt)[:, None], lw.astype(dt)
    top, bottom = x[:, :, h0], x[:, :, h1]  # (N, C, Ho, W)
    y = (1 - lh) * ((1 - lw) * top[..., w0] + lw * top[..., w1]) + lh * (
        (1 - lw) * bottom[..., w0] + lw * bottom[..., w1]
    )
    return np.ascontiguousarray(y, dtype=dt)


def interpolate_bilinear_adjoint(gy: np.ndarray, input_hw: IntPair, align_corners: bool) -> np.ndarray:
    """Adjoint (transpose) of :func:`interpolate_bilinear` in its input: the input-gradient.

    Args:
        gy: Array of the output's shape (N, C, Ho, Wo).
        input_hw: ``(H, W)`` of the resized input.
        align_corners: PyTorch's ``align_corners``.

    Returns:
        ``gx`` (N, C, H, W) with ``<interpolate_bilinear(x), gy> == <x, gx>`` for every ``x``.
    """
    check_nchw(gy, "gy")
    check_size(gy.shape[2:], "gy size")
    (h, w), dt = check_size(input_hw, "input_hw"), gy.dtype
    h0, h1, lh = source_index(h, gy.shape[2], align_corners)
    w0, w1, lw = source_index(w, gy.shape[3], align_corners)
    lh, lw = lh.astype(dt), lw.astype(dt)
    gx = np.zeros(gy.shape[:2] + (h, w), dtype=dt)
    # Each output pixel sends its gradient back to its four sources, with the forward weights.
    for rows, wr in ((h0, 1 - lh), (h1, lh)):
        for cols, wc in ((w0, 1 - lw), (w1, lw)):
            np.add.at(gx, (slice(None), slice(None), rows[:, None], cols), gy * wr[:, None] * wc)
    return gx
