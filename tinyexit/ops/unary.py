"""Elementwise functions of one tensor, selections (relu, abs, clamp, where, maximum) and casts."""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import array_module, kernels, to_device
from ._lift import promote
from .broadcast import sum_to


class Exp(Function):
    retain_outputs, saves_inputs = True, False

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
    retain_outputs, saves_inputs = True, False

    def forward(self, x):
        return array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1 - y * y)  # d tanh = 1 - tanh^2


def tanh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return Tanh.apply(x)


class Sigmoid(Function):
    retain_outputs, saves_inputs = True, False

    def forward(self, x):
        xp = array_module(x)
        e = xp.exp(-xp.abs(x))  # e^-|x| never overflows; 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, gy):
        y = self.output()
        return gy * y * (1 - y)


def sigmoid(x: Tensor) -> Tensor:
    """Elementwise logistic function 1 / (1 + e^-x), accurate for large negative x."""
    return Sigmoid.apply(x)


class Sqrt(Function):
    retain_outputs, saves_inputs = True, False

    def forward(self, x):
        return array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.output())


def sqrt(x: Tensor) -> Tensor:
    """Elementwise square root."""
    return Sqrt.apply(x)


class Masked(Function):
    """y = x where the constant boolean ``mask`` holds, else 0: a select, so an inf or NaN outside the
    mask never reaches y. The backbone of the gradients of relu, clamp, where, maximum and pow."""

    saves_inputs = False

    def forward(self, x, mask):
        return kernels(x).select(mask, x)

    def backward(self, gy):
        return sum_to(masked(gy, self.mask), self.inputs[0].shape)


def masked(x: Tensor, mask) -> Tensor:
    """``x`` where the constant boolean array ``mask`` is True, else 0 (broadcasting ``x`` to ``mask``)."""
    return Masked.apply(x, mask=mask)


class Relu(Function):
    retain_outputs, saves_inputs = True, False

    def forward(self, x):
        return array_module(x).maximum(x, 0)

    def backward(self, gy):
        return masked(gy, ~(self.output().data <= 0))  # passes where x > 0 and, as PyTorch, where x is NaN


def relu(x: Tensor) -> Tensor:
    """max(x, 0); its derivative is the constant mask x > 0 (1 at NaN, as PyTorch)."""
    return Relu.apply(x)


class Abs(Function):
    def forward(self, x):
        return array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        sign = (x > 0).astype(x.dtype) - (x < 0)  # 0 at 0 and at NaN, as PyTorch
        return gy * Tensor.wrap(sign)


def abs(x: Tensor) -> Tensor:
    """|x|; the gradient is sign(x), 0 at 0 and at NaN (as PyTorch)."""
    return Abs.apply(x)


class Where(Function):
    saves_inputs = False

    def forward(self, a, b, condition):
        return array_module(a).where(condition, a, b)

    def backward(self, gy):
        a, b = self.inputs
        cond = array_module(gy.data).broadcast_to(self.condition, gy.shape)
        ga = sum_to(masked(gy, cond), a.shape) if a.requires_grad else None
        gb = sum_to(masked(gy, ~cond), b.shape) if b.requires_grad else None
        return ga, gb


def where(condition, input, other) -> Tensor:
    """Elementwise ``input`` where ``condition`` else ``other``, as ``torch.where`` (condition is not
    differentiated; Python numbers are accepted for ``input`` and ``other``)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = Tensor.wrap(array_module(cond).asarray(input, dtype=_python_dtype(input)))
    a, b = promote(input, other)
    cond = array_module(a.data).asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where expects a boolean condition, got dtype {cond.dtype}")
    return Where.apply(a, b, condition=cond)


def _python_dtype(value):
    """PyTorch's dtype for a Python number: float32 for floats, int64 for ints, bool for bools."""
    if isinstance(value, bool):
        return np.bool_
    return np.int64 if isinstance(value, int) else np.float32


class Extremum2(Function):
    """Elementwise maximum (``largest``) or minimum, with PyTorch's gradient: the chosen operand gets
    the gradient, a tie splits it in halves, and a NaN operand passes it to both."""

    def forward(self, a, b, largest):
        xp = array_module(a)
        return (xp.maximum if largest else xp.minimum)(a, b)

    def backward(self, gy):
        a, b = self.inputs
        xp = array_module(gy.data)
        lose_a = a.data < b.data if self.largest else a.data > b.data
        lose_b = a.data > b.data if self.largest else a.data < b.data
        tie = xp.broadcast_to(a.data == b.data, gy.shape)
        half = masked(gy, tie) * 0.5
        ga = sum_to(masked(gy, xp.broadcast_to(~(lose_a | tie), gy.shape)) + half, a.shape)
        gb = sum_to(masked(gy, xp.broadcast_to(~(lose_b | tie), gy.shape)) + half, b.shape)
        return ga if a.requires_grad else None, gb if b.requires_grad else None


def maximum(input, other) -> Tensor:
    """Elementwise maximum, as ``torch.maximum`` (NaN propagates; a tie splits the gradient)."""
    a, b = promote(input, other)
    return Extremum2.apply(a, b, largest=True)


def minimum(input, other) -> Tensor:
    """Elementwise minimum, as ``torch.minimum`` (NaN propagates; a tie splits the gradient)."""
    a, b = promote(input, other)
    return Extremum2.apply(a, b, largest=False)


class Clamp(Function):
    """y = min(max(x, lo), hi) with PyTorch's gradients: x where lo <= x <= hi (0 at NaN), lo where
    x < lo < hi, hi where x > hi or hi < lo."""

    def forward(self, x, lo, hi):
        xp = array_module(x)
        return xp.minimum(xp.maximum(x, lo), hi)

    def backward(self, gy):
        x, lo, hi = self.inputs
        xp = array_module(gy.data)

        def select(mask, t):
            return sum_to(masked(gy, xp.broadcast_to(mask, gy.shape)), t.shape) if t.requires_grad else None

        inside = (x.data >= lo.data) & (x.data <= hi.data)
        below = (x.data < lo.data) & (lo.data < hi.data)
        above = (x.data > hi.data) | (hi.data < lo.data)
        return select(inside, x), select(below, lo), select(above, hi)


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    """Clip to [min, max], as ``torch.clamp``; bounds are numbers or tensors (broadcast, differentiable).

    The gradient passes where the input lies inside, bounds included; when min > max every value is max.
    """
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    if not isinstance(input, Tensor):
        raise TypeError(f"clamp expects a Tensor input, got {type(input).__name__}")
    bounds = []
    for name, bound, default in (("min", min, -np.inf), ("max", max, np.inf)):
        if bound is None:
            bound = default
        elif not isinstance(bound, (Tensor, int, float)) or isinstance(bound, bool):
            raise TypeError(f"clamp: {name} must be a number or a Tensor, got {type(bound).__name__}")
        bounds.append(bound)
    x, lo = promote(input, bounds[0])
    x, hi = promote(x, bounds[1])
    x, lo = promote(x, lo)
    return Clamp.apply(x, lo, hi)


class Cast(Function):
    saves_inputs = False

    def forward(self, x, dtype):
        return x.astype(dtype)

    def backward(self, gy):
        return cast(gy, self.inputs[0].dtype)


def cast(x: Tensor, dtype) -> Tensor:
    """Convert to ``dtype``; gradients come back in the input's dtype."""
    return x if x.dtype == np.dtype(dtype) else Cast.apply(x, dtype=np.dtype(dtype))


class ToDevice(Function):
    saves_inputs = False

    def forward(self, x, device):
        return to_device(x, device)

    def backward(self, gy):
        return to_device_op(gy, self.inputs[0].device)


def to_device_op(x: Tensor, device: str) -> Tensor:
    """Copy to ``device``; gradients are copied back."""
    return x if x.device == device else ToDevice.apply(x, device=device)
