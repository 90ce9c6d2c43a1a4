"""Reductions over dimensions: sum, mean, max/min (values and indices), amax/amin, var, argmax."""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import array_module
from ._dims import canonical_dims
from .broadcast import broadcast_to
from .shape import reshape
from .unary import masked, maximum, minimum

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _kept_shape(shape: tuple[int, ...], dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def _expand_back(gy: Tensor, shape: tuple[int, ...], dims: tuple[int, ...]) -> Tensor:
    """Reshape a reduced gradient to keepdim form and broadcast it to the input's shape."""
    return broadcast_to(reshape(gy, _kept_shape(shape, dims)), shape)


class Sum(Function):
    saves_inputs = False

    def forward(self, x, dims, keepdim):
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, gy):
        return _expand_back(gy, self.inputs[0].shape, self.dims)


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (all dimensions when None or ``()``, as PyTorch)."""
    return Sum.apply(x, dims=canonical_dims(dim, x.ndim), keepdim=keepdim)


def _count_scale(count: int) -> float:
    """1/count, or NaN for an empty reduction (0 · NaN = NaN, as PyTorch's mean of nothing)."""
    return 1.0 / count if count > 0 else float("nan")


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim`` (all dimensions when None or ``()``); NaN over zero elements, as PyTorch."""
    dims = canonical_dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    return sum(x, dims, keepdim) * _count_scale(count)


def var(
    x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *, correction=None
) -> Tensor:
    """Variance over ``dim``: the sum of squared deviations divided by max(0, n - correction).

    As ``torch.var(input, dim=None, *, correction=1, keepdim=False)``, and PyTorch's older forms
    ``var(x, unbiased)`` and ``var(x, dim, unbiased, keepdim)``: ``unbiased=False`` is
    ``correction=0``. With no degrees of freedom left the result is NaN (or inf), as PyTorch.
    """
    if x.dtype.kind != "f":
        raise TypeError(f"var needs a floating-point tensor, got dtype {x.dtype} (as PyTorch)")
    if isinstance(dim, bool):  # torch.var(x, False): the positional bool is ``unbiased``
        if unbiased is not None:
            raise TypeError("var: got a bool as dim and also unbiased; pass dim as an int or a tuple")
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError("var: pass either unbiased or correction, not both")
    if unbiased is not None and not isinstance(unbiased, bool):
        raise TypeError(f"var: unbiased must be a bool, got {unbiased!r}")
    correction = (1 if unbiased is None else int(unbiased)) if correction is None else correction
    dims = canonical_dims(dim, x.ndim)
    count = math.prod(x.shape[d] for d in dims)
    dof = builtins.max(count - correction, 0)
    return Var.apply(x, dims=dims, keepdim=keepdim, scale=1.0 / dof if dof > 0 else math.inf)


class Var(Function):
    """v = scale · Σ (x - mean x)² over ``dims``, scale = 1 / (n - correction)."""

    def forward(self, x, dims, keepdim, scale):
        centred = x - x.mean(axis=dims, keepdims=True) if x.size else x
        with np.errstate(invalid="ignore"):  # 0 · inf: no degrees of freedom left gives NaN
            return (centred * centred).sum(axis=dims, keepdims=keepdim) * x.dtype.type(scale)

    def backward(self, gy):  # dv/dx = 2·scale·(x - mean x), the centring's own term summing to zero
        x = self.inputs[0]
        centred = x - mean(x, self.dims, keepdim=True)
        return _expand_back(gy, x.shape, self.dims) * centred * (2 * self.scale)


class Extremum(Function):
    """Largest (or smallest) value over ``dims``; the gradient rule is PyTorch's for each caller:

    - ``"share"`` (``amax``): tied extremes share it equally; a NaN extreme makes it NaN;
    - ``"share_nan"`` (``max()`` of everything): the same, a NaN counting as the extreme;
    - ``"first"`` (``max(x, dim)``): all of it goes to the first extreme, the index returned.
    """

    saves_inputs = False

    def forward(self, x, dims, keepdim, largest, rule):
        xp = array_module(x)
        y = (x.max if largest else x.min)(axis=dims, keepdims=True)
        self.share = None
        if rule == "first" and dims:
            idx = (x.argmax if largest else x.argmin)(axis=dims[0], keepdims=True)
            self.hit = xp.arange(x.shape[dims[0]]).reshape((-1,) + (1,) * (x.ndim - dims[0] - 1)) == idx
        else:
            self.hit = x == y
            if rule == "share_nan":
                self.hit |= xp.isnan(x) & xp.isnan(y)
            with np.errstate(divide="ignore"):
                self.share = 1.0 / self.hit.sum(axis=dims, keepdims=True).astype(x.dtype)
        return y if keepdim else y.reshape(tuple(n for i, n in enumerate(x.shape) if i not in dims))

    def backward(self, gy):
        g = masked(_expand_back(gy, self.inputs[0].shape, self.dims), self.hit)
        return g if self.share is None else g * Tensor.wrap(self.share)


def _check_nonempty(x: Tensor, what: str, dims) -> None:
    if x.data.size == 0 and (x.ndim == 0 or builtins.any(x.shape[d] == 0 for d in dims)):
        raise IndexError(
            f"{what}: the reduced dimensions of a tensor of shape {x.shape} are empty (no value to pick)"
        )


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Largest value over ``dim``; tied maxima share the gradient equally (as ``torch.amax``)."""
    dims = canonical_dims(dim, x.ndim)
    _check_nonempty(x, "amax", dims)
    return Extremum.apply(x, dims=dims, keepdim=keepdim, largest=True, rule="share")


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Smallest value over ``dim``; tied minima share the gradient equally (as ``torch.amin``)."""
    dims = canonical_dims(dim, x.ndim)
    _check_nonempty(x, "amin", dims)
    return Extremum.apply(x, dims=dims, keepdim=keepdim, largest=False, rule="share")


def _max_or_min(x: Tensor, dim, keepdim: bool, largest: bool, name: str):
    if isinstance(dim, Tensor):  # torch.max(x, other): the elementwise binary form
        return (maximum if largest else minimum)(x, dim)
    if dim is None:
        _check_nonempty(x, name, tuple(range(x.ndim)))
        return Extremum.apply(x, dims=tuple(range(x.ndim)), keepdim=False, largest=largest, rule="share_nan")
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{name}: dim must be an int (use amax/amin for several dims), got {dim!r}")
    dims = canonical_dims(dim, x.ndim)
    _check_nonempty(x, name, dims)
    values = Extremum.apply(x, dims=dims, keepdim=keepdim, largest=largest, rule="first")
    return MaxResult(values, _arg_extremum(x, dim, keepdim, "argmax" if largest else "argmin"))


def max(x: Tensor, dim=None, keepdim: bool = False):
    """As ``torch.max``: the largest value; with an int ``dim`` a ``(values, indices)`` pair whose
    gradient goes to the returned index; with a Tensor, the elementwise ``maximum``."""
    return _max_or_min(x, dim, keepdim, True, "max")


def min(x: Tensor, dim=None, keepdim: bool = False):
    """As ``torch.min``: the smallest value; with an int ``dim`` a ``(values, indices)`` pair whose
    gradient goes to the returned index; with a Tensor, the elementwise ``minimum``."""
    return _max_or_min(x, dim, keepdim, False, "min")


def _arg_extremum(x: Tensor, dim, keepdim: bool, name: str) -> Tensor:
    xp = array_module(x.data)
    if dim is None:
        _check_nonempty(x, name, tuple(range(x.ndim)))
        flat = xp.asarray(getattr(x.data.reshape(-1), name)())
        return Tensor.wrap(flat.reshape((1,) * x.ndim) if keepdim else flat)
    dims = canonical_dims(dim, x.ndim)
    _check_nonempty(x, name, dims)
    if x.ndim == 0:
        return Tensor.wrap(xp.zeros((), dtype=np.int64))
    return Tensor.wrap(getattr(x.data, name)(axis=dims[0], keepdims=keepdim))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (first on ties, NaN counts as largest), as ``torch.argmax``."""
    return _arg_extremum(x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (first on ties, NaN counts as smallest), as ``torch.argmin``."""
    return _arg_extremum(x, dim, keepdim, "argmin")
