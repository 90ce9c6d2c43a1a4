"""Bilinear resizing and its adjoint, each the other's derivative (backend kernels
``interpolate_bilinear`` and ``interpolate_bilinear_adjoint``)."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels


class Bilinear(Function):
    saves_inputs = False

    def forward(self, x, size, align_corners):
        return kernels(x).interpolate_bilinear(x, size, align_corners)

    def backward(self, gy):
        return bilinear_adjoint(gy, self.inputs[0].shape[2:], self.align_corners)


def bilinear(x: Tensor, size, align_corners: bool) -> Tensor:
    """Bilinear resizing of a validated NCHW tensor to ``size`` = (H, W)."""
    return Bilinear.apply(x, size=tuple(size), align_corners=align_corners)


class BilinearAdjoint(Function):
    saves_inputs = False

    def forward(self, gy, input_hw, align_corners):
        return kernels(gy).interpolate_bilinear_adjoint(gy, input_hw, align_corners)

    def backward(self, ggx):
        return bilinear(ggx, self.inputs[0].shape[2:], self.align_corners)


def bilinear_adjoint(gy: Tensor, input_hw, align_corners: bool) -> Tensor:
    """The adjoint of ``bilinear``: the gradient with respect to an input of spatial size ``input_hw``."""
    return BilinearAdjoint.apply(gy, input_hw=tuple(input_hw), align_corners=align_corners)
