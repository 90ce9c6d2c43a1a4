"""Elementwise select for the CPU: one Numba pass where NumPy's ``where`` takes several times longer.

``np.where(mask, x, 0)`` runs a general broadcasting loop over three operands; on the activation
gradients of a training step it cost more than the batch norms (the figures are in
``docs/benchmarks.md``). A flat loop over two contiguous arrays of one shape vectorises.
"""

from __future__ import annotations

import numpy as np

from ..reference import elementwise as reference
from .jit import njit


@njit(cache=True)
def _select(mask, x, out):  # pragma: no cover - compiled
    zero = x.dtype.type(0)
    for i in range(x.size):
        out[i] = x[i] if mask[i] else zero


def select(mask: np.ndarray, x: np.ndarray) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.elementwise.select`; float arrays of one shape in Numba."""
    if x.shape != mask.shape or mask.dtype != np.bool_ or x.dtype.kind != "f":
        return reference.select(mask, x)
    out = np.empty(x.shape, x.dtype)
    _select(np.ascontiguousarray(mask).reshape(-1), np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out
