"""Pooling as pairs of adjoint ops: average pooling and its adjoint; max pooling as gather/scatter.

Max pooling picks, per window, the position of the maximum (not differentiated); the values are
then a *gather* at those positions, whose adjoint is a *scatter-add*, and vice versa. Each op runs
the backend kernel of its name (``avg_pool2d``, ``avg_pool2d_adjoint``, ``max_pool2d_gather``,
``max_pool2d_scatter``).
"""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels


class AvgPool(Function):
    saves_inputs = False

    def forward(self, x, kernel_size, stride, padding):
        return kernels(x).avg_pool2d(x, kernel_size, stride, padding)

    def backward(self, gy):
        return avg_pool_adjoint(gy, self.inputs[0].shape[2:], self.kernel_size, self.stride, self.padding)


def avg_pool(x: Tensor, kernel_size, stride, padding) -> Tensor:
    """Average pooling of a validated NCHW tensor."""
    return AvgPool.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


class AvgPoolAdjoint(Function):
    saves_inputs = False

    def forward(self, gy, input_hw, kernel_size, stride, padding):
        return kernels(gy).avg_pool2d_adjoint(gy, input_hw, kernel_size, stride, padding)

    def backward(self, ggx):
        return avg_pool(ggx, self.kernel_size, self.stride, self.padding)


def avg_pool_adjoint(gy: Tensor, input_hw, kernel_size, stride, padding) -> Tensor:
    """The adjoint of ``avg_pool``: spreads each window's value evenly back over an ``input_hw`` map."""
    return AvgPoolAdjoint.apply(
        gy, input_hw=tuple(input_hw), kernel_size=kernel_size, stride=stride, padding=padding
    )


class MaxPoolGather(Function):
    """y[n, c, i, j] = x[n, c].flat[idx[n, c, i, j]]."""

    saves_inputs = False

    def forward(self, x, idx):
        return kernels(x).max_pool2d_gather(x, idx)

    def backward(self, gy):
        return max_pool_scatter(gy, self.idx, self.inputs[0].shape[2:])


def max_pool_gather(x: Tensor, idx) -> Tensor:
    """The values of ``x`` at the flat positions ``idx`` of each (n, c) plane."""
    return MaxPoolGather.apply(x, idx=idx)


class MaxPoolScatter(Function):
    """gx[n, c].flat[idx[n, c, i, j]] += gy[n, c, i, j]: the adjoint of the gather."""

    saves_inputs = False

    def forward(self, gy, idx, input_hw):
        return kernels(gy).max_pool2d_scatter(gy, idx, input_hw)

    def backward(self, ggx):
        return max_pool_gather(ggx, self.idx)


def max_pool_scatter(gy: Tensor, idx, input_hw) -> Tensor:
    """Zeros of spatial size ``input_hw`` with ``gy`` added at the flat positions ``idx``."""
    return MaxPoolScatter.apply(gy, idx=idx, input_hw=tuple(input_hw))


def max_pool(x: Tensor, kernel_size, stride, padding) -> Tensor:
    """Max pooling of a validated NCHW tensor: argmax positions, then a differentiable gather."""
    _, idx = kernels(x.data).max_pool2d(x.data, kernel_size, stride, padding)
    return max_pool_gather(x, idx)
