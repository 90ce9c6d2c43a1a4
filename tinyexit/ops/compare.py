"""Comparisons: boolean tensors that carry no gradient."""

from __future__ import annotations

from ..autograd.tensor import Tensor
from ._lift import lift


def _compare(op):
    def compare(a: Tensor, b) -> Tensor:
        return Tensor.wrap(op(a.data, lift(b, a).data))

    compare.__doc__ = f"Elementwise ``{op.__name__}`` comparison; returns a bool tensor, not differentiable."
    return compare


lt = _compare(lambda a, b: a < b)
le = _compare(lambda a, b: a <= b)
gt = _compare(lambda a, b: a > b)
ge = _compare(lambda a, b: a >= b)
eq = _compare(lambda a, b: a == b)
ne = _compare(lambda a, b: a != b)
