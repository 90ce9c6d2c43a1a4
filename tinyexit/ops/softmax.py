"""softmax and log_softmax along a dimension, computed stably (max subtracted)."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import array_module
from ._dims import canonical_dim
from .reduce import sum


class LogSoftmax(Function):
    retain_outputs, saves_inputs = True, False

    def forward(self, x, dim):
        xp = array_module(x)
        if x.size == 0:
            return x.copy()
        z = x - x.max(axis=dim, keepdims=True)
        return z - xp.log(xp.exp(z).sum(axis=dim, keepdims=True))

    def backward(self, gy):
        y = self.output()
        return gy - y.exp() * sum(gy, self.dim, keepdim=True)  # dx = g - softmax * sum(g)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) along ``dim``."""
    return LogSoftmax.apply(x, dim=canonical_dim(dim, x.ndim))


class Softmax(Function):
    retain_outputs, saves_inputs = True, False

    def forward(self, x, dim):
        xp = array_module(x)
        if x.size == 0:
            return x.copy()
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)

    def backward(self, gy):
        y = self.output()
        return y * (gy - sum(gy * y, self.dim, keepdim=True))  # dx = y (g - <g, y>)


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``."""
    return Softmax.apply(x, dim=canonical_dim(dim, x.ndim))
