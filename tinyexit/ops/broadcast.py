"""Broadcasting and its adjoint, summing back to a shape; each is the other's gradient."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor, as_shape
from ..backend import array_module


def _summed_axes(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axes of ``shape`` to sum so that it becomes ``target`` (leading axes, then size-1 axes)."""
    lead = len(shape) - len(target)
    if lead < 0:
        raise ValueError(f"cannot sum shape {shape} to the larger rank of {target}")
    leading = tuple(range(lead))
    ones = tuple(lead + i for i, n in enumerate(target) if n == 1 and shape[lead + i] != 1)
    for i, n in enumerate(target):
        if n != 1 and shape[lead + i] != n:
            raise ValueError(f"cannot sum shape {shape} to {target}")
    return leading, ones


class BroadcastTo(Function):
    saves_inputs = False

    def forward(self, x, shape):
        return array_module(x).broadcast_to(x, shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x: Tensor, *shape) -> Tensor:
    """Broadcast ``x`` to ``shape`` (as ``torch.broadcast_to``; -1 keeps a dimension)."""
    shape = as_shape(shape)
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    if shape == x.shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


class SumTo(Function):
    saves_inputs = False

    def forward(self, x, shape):
        leading, ones = _summed_axes(x.shape, shape)
        y = x.sum(axis=leading + ones, keepdims=True) if leading + ones else x
        return y.reshape(shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def sum_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` down to ``shape``: the gradient of broadcasting ``shape`` up to ``x.shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo.apply(x, shape=shape)
