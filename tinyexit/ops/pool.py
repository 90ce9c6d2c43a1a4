"""Pooling as pairs of adjoint ops: average pooling and its adjoint; max pooling as gather/scatter.

Max pooling picks, per window, the position of the maximum (not differentiated); the values are
then a *gather* at those positions, whose adjoint is a *scatter-add*, and vice versa.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels


class AvgPool2d(Function):
    def forward(self, x, kernel_size, stride, padding):
        self.args = (kernel_size, stride, padding)
        self.in_hw = x.shape[2:]
        return kernels(x).avg_pool2d(x, kernel_size, stride, padding)

    def backward(self, gy):
        return AvgPool2dAdjoint.apply(gy, input_hw=self.in_hw, args=self.args)


class AvgPool2dAdjoint(Function):
    def forward(self, gy, input_hw, args):
        self.args = args
        return kernels(gy).avg_pool2d_adjoint(gy, input_hw, *args)

    def backward(self, ggx):
        return avg_pool(ggx, *self.args)


def avg_pool(x: Tensor, kernel_size, stride, padding) -> Tensor:
    """Average pooling of a validated NCHW tensor."""
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


class MaxPoolGather(Function):
    """y[n, c, i, j] = x[n, c].flat[idx[n, c, i, j]]."""

    def forward(self, x, idx):
        self.idx, self.in_hw = idx, x.shape[2:]
        return kernels(x).max_pool2d_gather(x, idx)

    def backward(self, gy):
        return MaxPoolScatter.apply(gy, idx=self.idx, input_hw=self.in_hw)


class MaxPoolScatter(Function):
    """gx[n, c].flat[idx[n, c, i, j]] += gy[n, c, i, j]: the adjoint of the gather."""

    def forward(self, gy, idx, input_hw):
        self.idx = idx
        return kernels(gy).max_pool2d_scatter(gy, idx, input_hw)

    def backward(self, ggx):
        return MaxPoolGather.apply(ggx, idx=self.idx)


def max_pool(x: Tensor, kernel_size, stride, padding) -> Tensor:
    """Max pooling of a validated NCHW tensor: argmax positions, then a differentiable gather."""
    _, idx = kernels(x.data).max_pool2d(x.data, kernel_size, stride, padding)
    return MaxPoolGather.apply(x, idx=idx)
