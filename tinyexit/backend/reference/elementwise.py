"""Elementwise select: the one array operation behind the gradients of relu, clamp, where and max."""

from __future__ import annotations

import numpy as np


def select(mask: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` where the boolean ``mask`` holds, else 0, ``x`` broadcast against ``mask``.

    A select, not a product: an inf or NaN of ``x`` outside the mask never reaches the result
    (``x * mask`` would turn it into NaN).
    """
    return np.where(mask, x, np.zeros((), x.dtype))
