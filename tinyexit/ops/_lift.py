"""Turning operands into Tensors of a common dtype before an op runs."""

from __future__ import annotations

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import array_module


def lift(x, like: Tensor) -> Tensor:
    """Return ``x`` as a Tensor; Python scalars take ``like``'s dtype (float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    xp = array_module(like.data)
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        kind = like.dtype.kind
        dtype = like.dtype if (kind == "f" or not isinstance(x, float)) else np.float32
        return Tensor.wrap(xp.asarray(x, dtype=dtype))
    return Tensor.wrap(xp.asarray(x))


def promote(a, b) -> tuple[Tensor, Tensor]:
    """Lift two operands and cast them to one dtype, as PyTorch's type promotion would."""
    if not isinstance(a, Tensor):
        a = lift(a, b)
    b = lift(b, a)
    if a.dtype == b.dtype:
        return a, b
    fa, fb = a.dtype.kind == "f", b.dtype.kind == "f"
    if fa and not fb:
        return a, Tensor.wrap(b.data.astype(a.dtype))
    if fb and not fa:
        return Tensor.wrap(a.data.astype(b.dtype)), b
    from .unary import cast  # a float32 and a float64 operand: cast differentiably up

    dtype = np.promote_types(a.dtype, b.dtype)
    return cast(a, dtype), cast(b, dtype)
