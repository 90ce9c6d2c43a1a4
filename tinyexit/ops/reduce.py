"""Reductions over dimensions: sum, mean, max/min (values and indices), amax/amin, var, argmax."""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import array_module
from .broadcast import broadcast_to
from .shape import reshape
from .unary import masked

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"dimension {d} is out of range for a tensor with {ndim} dimensions")
        out.append(d % builtins.max(ndim, 1))
    return tuple(sorted(set(out))) if ndim else ()


def _kept_shape(shape: tuple[int, ...], dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def _expand_back(gy: Tensor, shape: tuple[int, ...], dims: tuple[int, ...]) -> Tensor:
    """Reshape a reduced gradient to keepdim form and broadcast it to the input's shape."""
    return broadcast_to(reshape(gy, _kept_shape(shape, dims)), shape)


class Sum(Function):
    def forward(self, x, dims, keepdim):
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, gy):
        return _expand_back(gy, self.inputs[0].shape, self.dims)


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (all dimensions when None)."""
    return Sum.apply(x, dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim`` (all dimensions when None)."""
    dims = normalize_dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    return sum(x, dims, keepdim) * (1.0 / builtins.max(count, 1))


def var(x: Tensor, dim=None, keepdim: bool = False, unbiased: bool = True) -> Tensor:
    """Variance over ``dim``; ``unbiased`` divides by n - 1 (PyTorch's default), else by n."""
    dims = normalize_dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    centred = x - mean(x, dims, keepdim=True)
    return sum(centred * centred, dims, keepdim) * (1.0 / builtins.max(count - int(unbiased), 1))


class Extremum(Function):
    """amax/amin: the gradient is shared equally among the tied extreme elements."""

    def forward(self, x, dims, keepdim, largest):
        xp = array_module(x)
        y = (x.max if largest else x.min)(axis=dims, keepdims=True)
        hit = (x == y).astype(x.dtype)
        self.mask = hit / hit.sum(axis=dims, keepdims=True)
        return y if keepdim else xp.squeeze(y, axis=dims)

    def backward(self, gy):
        return masked(_expand_back(gy, self.inputs[0].shape, self.dims), self.mask)


def _check_nonempty(x: Tensor, what: str) -> None:
    if x.data.size == 0:
        raise ValueError(f"{what} of an empty tensor (shape {x.shape}) is undefined")


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Largest value over ``dim``."""
    _check_nonempty(x, "amax")
    return Extremum.apply(x, dims=normalize_dims(dim, x.ndim), keepdim=keepdim, largest=True)


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Smallest value over ``dim``."""
    _check_nonempty(x, "amin")
    return Extremum.apply(x, dims=normalize_dims(dim, x.ndim), keepdim=keepdim, largest=False)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False):
    """As ``torch.max``: the largest value, or with ``dim`` a ``(values, indices)`` pair."""
    if dim is None:
        return amax(x)
    return MaxResult(amax(x, dim, keepdim), argmax(x, dim, keepdim))


def min(x: Tensor, dim: int | None = None, keepdim: bool = False):
    """As ``torch.min``: the smallest value, or with ``dim`` a ``(values, indices)`` pair."""
    if dim is None:
        return amin(x)
    return MaxResult(amin(x, dim, keepdim), argmin(x, dim, keepdim))


def _arg_extremum(x: Tensor, dim: int | None, keepdim: bool, name: str) -> Tensor:
    _check_nonempty(x, name)
    find = getattr(x.data, name)  # the array's own argmax/argmin
    if dim is None:
        return Tensor.wrap(array_module(x.data).asarray(find()))
    return Tensor.wrap(find(axis=normalize_dims(dim, x.ndim)[0], keepdims=keepdim))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (first on ties); not differentiable."""
    return _arg_extremum(x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (first on ties); not differentiable."""
    return _arg_extremum(x, dim, keepdim, "argmin")
