"""Matrix product: NumPy's ``@`` (batch dimensions broadcast), the specification of the kernels."""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for operands of at least two dimensions, batch dimensions broadcast as NumPy does."""
    return a @ b
