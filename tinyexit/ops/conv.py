"""The convolution family: the convolution, its input gradient and its weight gradient.

The three are one closed family of bilinear maps: each one's derivatives are written with the
others, so derivatives of any order work. With <a, b> the sum of elementwise products:

    <conv(x, w), g> = <x, conv_input_grad(g, w)> = <w, conv_weight_grad(x, g)>

``conv_input_grad`` is the transposed convolution. Each op runs the backend kernel of its name
(``conv2d``, ``conv2d_input_grad``, ``conv2d_weight_grad``).
"""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels


class Conv(Function):
    """y = conv(x, w)."""

    def forward(self, x, w, stride, padding):
        return kernels(x).conv2d(x, w, stride, padding)

    def backward(self, gy):
        x, w = self.inputs
        s, p = self.stride, self.padding
        gx = conv_input_grad(gy, w, x.shape[2:], s, p) if x.requires_grad else None
        gw = conv_weight_grad(x, gy, w.shape[2:], s, p) if w.requires_grad else None
        return gx, gw


def conv(x: Tensor, w: Tensor, stride, padding) -> Tensor:
    """Bias-free convolution of validated NCHW ``x`` with OIHW ``w``."""
    return Conv.apply(x, w, stride=stride, padding=padding)


class ConvInputGrad(Function):
    """z = conv_input_grad(g, w): the adjoint of conv in x, shaped like x (``input_hw``)."""

    def forward(self, g, w, input_hw, stride, padding):
        return kernels(g).conv2d_input_grad(g, w, input_hw, stride, padding)

    def backward(self, gz):
        g, w = self.inputs
        s, p = self.stride, self.padding
        gg = conv(gz, w, s, p) if g.requires_grad else None  # <conv_input_grad(g, w), gz> = <g, conv(gz, w)>
        gw = conv_weight_grad(gz, g, w.shape[2:], s, p) if w.requires_grad else None
        return gg, gw


def conv_input_grad(g: Tensor, w: Tensor, input_hw, stride, padding) -> Tensor:
    """Gradient of conv with respect to its input, as an op of (g, w) (the transposed convolution)."""
    return ConvInputGrad.apply(g, w, input_hw=tuple(input_hw), stride=stride, padding=padding)


class ConvWeightGrad(Function):
    """v = conv_weight_grad(x, g): the gradient of <conv(x, w), g> in w."""

    def forward(self, x, g, kernel_hw, stride, padding):
        return kernels(x).conv2d_weight_grad(x, g, kernel_hw, stride, padding)

    def backward(self, gv):
        x, g = self.inputs
        s, p = self.stride, self.padding
        gx = (
            conv_input_grad(g, gv, x.shape[2:], s, p) if x.requires_grad else None
        )  # <v, gv> = <conv(x, gv), g>
        gg = conv(x, gv, s, p) if g.requires_grad else None
        return gx, gg


def conv_weight_grad(x: Tensor, g: Tensor, kernel_hw, stride, padding) -> Tensor:
    """Gradient of conv with respect to its weight, as an op of (x, g)."""
    return ConvWeightGrad.apply(x, g, kernel_hw=tuple(kernel_hw), stride=stride, padding=padding)
