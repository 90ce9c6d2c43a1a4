"""+ - * / ** and negation, with NumPy broadcasting (gradients summed back to each input's shape)."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ._lift import promote
from .broadcast import sum_to
from .unary import masked


class Add(Function):
    saves_inputs = False

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(gy, b.shape)


def add(a, b) -> Tensor:
    """a + b."""
    return Add.apply(*promote(a, b))


class Sub(Function):
    saves_inputs = False

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(-gy, b.shape)


def sub(a, b) -> Tensor:
    """a - b."""
    return Sub.apply(*promote(a, b))


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * b, a.shape) if a.requires_grad else None
        gb = sum_to(gy * a, b.shape) if b.requires_grad else None
        return ga, gb


def mul(a, b) -> Tensor:
    """a * b."""
    return Mul.apply(*promote(a, b))


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy / b, a.shape) if a.requires_grad else None
        gb = (
            sum_to(-gy * (a / b / b), b.shape) if b.requires_grad else None
        )  # d(a/b)/db = -a/b/b, no b² overflow
        return ga, gb


def div(a, b) -> Tensor:
    """a / b (true division)."""
    return Div.apply(*promote(a, b))


class Neg(Function):
    saves_inputs = False

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x: Tensor) -> Tensor:
    """-x."""
    return Neg.apply(x)


class PowScalar(Function):
    def forward(self, x, p):
        return x**p

    def backward(self, gy):
        (x,) = self.inputs
        if self.p == 0:
            return gy * 0
        return gy * (self.p * pow_scalar(x, self.p - 1))  # d(x^p) = p x^(p-1)


def pow_scalar(x: Tensor, p: float) -> Tensor:
    """x ** p for a constant number p."""
    return PowScalar.apply(x, p=p)


class Pow(Function):
    def forward(self, a, b):
        return a**b

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if a.requires_grad:  # d(a^b)/da = b a^(b-1), taken as 0 where b = 0 (as PyTorch)
            ga = sum_to(masked(gy * (b * a ** (b - 1)), b.data != 0), a.shape)
        if b.requires_grad:  # d(a^b)/db = a^b ln a, taken as 0 where a = 0 and b >= 0 (as PyTorch)
            gb = sum_to(masked(gy * (a**b * a.log()), ~((a.data == 0) & (b.data >= 0))), b.shape)
        return ga, gb


def pow(a, b) -> Tensor:
    """a ** b; a Python number as exponent is a constant power."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return pow_scalar(a, b)
    a, b = promote(a, b)
    return Pow.apply(a, b)
