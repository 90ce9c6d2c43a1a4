"""Bilinear resizing and its adjoint, each the other's derivative."""
from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels


class Bilinear(Function):
    def forward(self, x, size, align_corners):
        self.in_hw, self.align_corners = x.shape[2:], align_corners
        return kernels(x).interpolate_bilinear(x, size, align_corners)

    def backward(self, gy):
        return BilinearAdjoint.apply(gy, input_hw=self.in_hw, align_corners=self.align_corners)


class BilinearAdjoint(Function):
    def forward(self, gy, input_hw, align_corners):
        self.out_hw, self.align_corners = gy.shape[2:], align_corners
        return kernels(gy).interpolate_bilinear_adjoint(gy, input_hw, align_corners)

    def backward(self, ggx):
        return Bilinear.apply(ggx, size=self.out_hw, align_corners=self.align_corners)


def bilinear(x: Tensor, size, align_corners: bool) -> Tensor:
    """Bilinear resizing of a validated NCHW tensor to ``size`` = (H, W)."""
    return Bilinear.apply(x, size=tuple(size), align_corners=align_corners)
