"""Matrix product with NumPy's batching rules (``@``)."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import kernels
from ._lift import promote
from .broadcast import sum_to
from .shape import reshape, transpose


class MatMul(Function):
    def forward(self, a, b):
        return kernels(a).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(matmul(gy, transpose(b, -1, -2)), a.shape) if a.requires_grad else None  # dA = G B^T
        gb = sum_to(matmul(transpose(a, -1, -2), gy), b.shape) if b.requires_grad else None  # dB = A^T G
        return ga, gb


def matmul(a, b) -> Tensor:
    """``a @ b``: 1-D operands are promoted to matrices as NumPy does, batch dims broadcast."""
    a, b = promote(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    if a.ndim == 1 and b.ndim == 1:
        return reshape(MatMul.apply(reshape(a, 1, -1), reshape(b, -1, 1)), ())
    if a.ndim == 1:
        out = MatMul.apply(reshape(a, 1, -1), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        return reshape(MatMul.apply(a, reshape(b, -1, 1)), a.shape[:-1])
    return MatMul.apply(a, b)
