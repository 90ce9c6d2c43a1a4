"""In-place initialisation of parameters (``tinyexit.nn.init``), drawing from the global generator."""

from __future__ import annotations

import math

from ..autograd.creation import default_generator
from ..autograd.tensor import Tensor
from ..backend import array_module


def _fill(t: Tensor, values) -> Tensor:
    t.data[...] = array_module(t.data).asarray(values, dtype=t.dtype)
    return t


def fan_in_out(t: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or Conv2d (out, in, kh, kw) weight."""
    if t.ndim < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {t.shape}")
    receptive = 1
    for n in t.shape[2:]:
        receptive *= n
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(t, default_generator().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _fill(t, default_generator().normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    """Fill ``t`` with ``value`` in place; returns ``t``."""
    return _fill(t, value)


def zeros_(t: Tensor) -> Tensor:
    """Fill ``t`` with zeros in place; returns ``t``."""
    return _fill(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fill ``t`` with ones in place; returns ``t``."""
    return _fill(t, 1.0)


def kaiming_normal_(t: Tensor, mode: str = "fan_in") -> Tensor:
    """N(0, 2 / fan) for ReLU networks; ``mode="fan_out"`` gives MSDNet's N(0, sqrt(2 / (k*k*Cout)))."""
    fan_in, fan_out = fan_in_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"unknown mode {mode!r}: expected 'fan_in' or 'fan_out'")
    return normal_(t, 0.0, math.sqrt(2.0 / (fan_in if mode == "fan_in" else fan_out)))


def default_uniform_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    fan_in = fan_in_out(weight)[0]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0  # a layer with no inputs: bias 0, as PyTorch
    uniform_(weight, -bound, bound)
    if bias is not None:
        uniform_(bias, -bound, bound)
