"""Elementwise functions of one tensor, masks (relu, abs, clamp, where, maximum) and casts."""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import array_module, to_device
from ._lift import promote
from .broadcast import sum_to


class Exp(Function):
    retain_outputs = True

    def forward(self, x):
        return array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()  # d e^x = e^x


def exp(x: Tensor) -> Tensor:
    """Elementwise e^x."""
    return Exp.apply(x)


class Log(Function):
    def forward(self, x):
        return array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


def log(x: Tensor) -> Tensor:
    """Elementwise natural logarithm."""
    return Log.apply(x)


class Tanh(Function):
    retain_outputs = True

    def forward(self, x):
        return array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1 - y * y)  # d tanh = 1 - tanh^2


def tanh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return Tanh.apply(x)


class Sigmoid(Function):
    retain_outputs = True

    def forward(self, x):
        xp = array_module(x)
        return (xp.tanh(x * 0.5) + 1) * 0.5  # stable form of 1 / (1 + e^-x)

    def backward(self, gy):
        y = self.output()
        return gy * y * (1 - y)


def sigmoid(x: Tensor) -> Tensor:
    """Elementwise logistic function 1 / (1 + e^-x)."""
    return Sigmoid.apply(x)


class Sqrt(Function):
    retain_outputs = True

    def forward(self, x):
        return array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.output())


def sqrt(x: Tensor) -> Tensor:
    """Elementwise square root."""
    return Sqrt.apply(x)


class MaskedIdentity(Function):
    """y = x * m for a constant (float or bool) mask m; the backbone of relu, abs, clamp, where and maximum."""

    def forward(self, x, mask):
        return x * mask

    def backward(self, gy):
        return sum_to(masked(gy, self.mask), self.inputs[0].shape)


def masked(x: Tensor, mask) -> Tensor:
    """x * mask with a constant (non-differentiated) array ``mask``."""
    return MaskedIdentity.apply(x, mask=mask)


class Relu(Function):
    retain_outputs = True

    def forward(self, x):
        return array_module(x).maximum(x, 0)

    def backward(self, gy):
        return masked(gy, self.output().data > 0)  # the constant mask x > 0, read off the output


def relu(x: Tensor) -> Tensor:
    """max(x, 0); its derivative is the constant mask x > 0."""
    return Relu.apply(x)


def abs(x: Tensor) -> Tensor:
    """|x| = x * sign(x), sign treated as a constant (0 at 0, as PyTorch)."""
    return masked(x, array_module(x.data).sign(x.data))


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clip to [min, max]; the gradient passes where x lies inside (bounds included, as PyTorch)."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    xp = array_module(x.data)
    inside = xp.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x.data >= min
    if max is not None:
        inside &= x.data <= max
    clipped = xp.clip(x.data, min, max)
    return masked(x, inside.astype(x.dtype)) + Tensor.wrap(xp.where(inside, 0, clipped).astype(x.dtype))


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` else ``b`` (condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    a, b = promote(a, b)
    m = array_module(a.data).asarray(cond, dtype=bool).astype(a.dtype)
    return masked(a, m) + masked(b, 1 - m)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; on ties the gradient goes to ``a``."""
    a, b = promote(a, b)
    return where(a.data >= b.data, a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum; on ties the gradient goes to ``a``."""
    a, b = promote(a, b)
    return where(a.data <= b.data, a, b)


class Cast(Function):
    def forward(self, x, dtype):
        return x.astype(dtype)

    def backward(self, gy):
        return cast(gy, self.inputs[0].dtype)


def cast(x: Tensor, dtype) -> Tensor:
    """Convert to ``dtype``; gradients come back in the input's dtype."""
    return x if x.dtype == np.dtype(dtype) else Cast.apply(x, dtype=np.dtype(dtype))


class ToDevice(Function):
    def forward(self, x, device):
        return to_device(x, device)

    def backward(self, gy):
        return to_device_op(gy, self.inputs[0].device)


def to_device_op(x: Tensor, device: str) -> Tensor:
    """Copy to ``device``; gradients are copied back."""
    return x if x.device == device else ToDevice.apply(x, device=device)
