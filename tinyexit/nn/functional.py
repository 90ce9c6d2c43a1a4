"""Functional operations with PyTorch's names and signatures (``tinyexit.nn.functional``).

The wrappers here check tensors, dtypes and devices and then call the differentiable ops in
``tinyexit.ops``; the kernels check the window geometry (shapes, kernel, stride, padding, output
size) with ``tinyexit.backend.geometry``. One deliberate difference from PyTorch: ``interpolate``
defaults to ``align_corners=True``, the setting RANet uses (see docs/api.md).
"""

from __future__ import annotations

import math

from ..autograd.tensor import Tensor
from ..backend.geometry import pair
from ..ops import cat, cross_entropy, log_softmax, relu, sigmoid, softmax, tanh
from ..ops.batch_norm import batch_norm
from ..ops.conv import conv
from ..ops.pool import avg_pool, max_pool
from ..ops.resize import bilinear

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "cat",
    "conv2d",
    "cross_entropy",
    "interpolate",
    "linear",
    "log_softmax",
    "max_pool2d",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]


def _check_nchw(x: Tensor, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} expects a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{what} expects a 4-D input (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{what} expects a floating-point input, got dtype {x.dtype}")


def _check_same(x: Tensor, other, name: str, what: str) -> None:
    if not isinstance(other, Tensor):
        raise TypeError(
            f"{what}: {name} must be a Tensor, got {type(other).__name__}; wrap it with te.tensor()"
        )
    if other.dtype != x.dtype:
        raise TypeError(f"{what}: input is {x.dtype} but {name} is {other.dtype}; convert one with .to()")
    if other.device != x.device:
        raise ValueError(f"{what}: input is on {x.device} but {name} is on {other.device}")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C, H, W) by (O, C, kh, kw), as PyTorch's.

    Input, weight and bias must share one dtype and device (PyTorch also refuses a mix).
    """
    _check_nchw(input, "conv2d")
    _check_same(input, weight, "weight", "conv2d")
    pair(stride, "stride", minimum=1), pair(padding, "padding")
    if bias is not None:
        _check_same(input, bias, "bias", "conv2d")
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"conv2d: bias has shape {bias.shape}, expected {weight.shape[:1]}")
    y = conv(input, weight, stride, padding)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with W of shape (out_features, in_features), as PyTorch's.

    Input, weight and bias must share one dtype and device (PyTorch also refuses a mix).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"linear expects a Tensor input, got {type(input).__name__}")
    _check_same(input, weight, "weight", "linear")
    if input.ndim == 0:
        raise ValueError("linear: input must have at least one dimension, got a 0-d tensor")
    if weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input {input.shape} does not match weight {weight.shape} "
            f"(expects last dimension {weight.shape[-1] if weight.ndim else '?'})"
        )
    if bias is not None:
        _check_same(input, bias, "bias", "linear")
    y = input @ weight.T
    return y if bias is None else y + bias


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Average pooling (count_include_pad=True, as PyTorch's default)."""
    _check_nchw(input, "avg_pool2d")
    _check_pool_args(kernel_size, stride, padding)
    return avg_pool(input, kernel_size, stride, padding)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Max pooling; the gradient goes to the first maximum of each window."""
    _check_nchw(input, "max_pool2d")
    _check_pool_args(kernel_size, stride, padding)
    if input.numel() == 0:  # no window to search: the pooled shape, empty, through a differentiable op
        return avg_pool(input, kernel_size, stride, padding)
    return max_pool(input, kernel_size, stride, padding)


def _check_pool_args(kernel_size, stride, padding) -> None:
    pair(kernel_size, "kernel_size", minimum=1), pair(padding, "padding")
    if stride is not None:
        pair(stride, "stride", minimum=1)


def interpolate(
    input: Tensor, size=None, scale_factor=None, mode: str = "bilinear", align_corners: bool = True
) -> Tensor:
    """Bilinear resizing to ``size`` = (H, W) or by ``scale_factor``.

    Only ``mode="bilinear"`` is offered. ``align_corners`` defaults to True (PyTorch's default is
    False); both settings follow PyTorch's arithmetic. ``scale_factor`` gives the size
    floor(size · scale); with ``align_corners=False`` it must make a whole size (otherwise PyTorch
    maps coordinates by the scale, which the kernels do not, so ValueError asks for ``size``).
    """
    _check_nchw(input, "interpolate")
    if mode != "bilinear":
        raise ValueError(f"interpolate: unknown mode {mode!r}; only 'bilinear' is implemented")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate needs exactly one of size and scale_factor")
    if size is None:
        size = _scaled_size(input.shape[2:], scale_factor, bool(align_corners))
    return bilinear(input, pair(size, "size"), bool(align_corners))


def _scaled_size(hw: tuple[int, ...], scale_factor, align_corners: bool) -> tuple[int, int]:
    """floor(side · scale), as PyTorch. Without align_corners PyTorch maps coordinates by the scale
    itself; the kernels map by input/output size, the same numbers exactly when side · scale is an
    integer, so any other scale is refused rather than answered differently."""
    scales = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(scales) != 2 or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales):
        raise TypeError(
            f"interpolate: scale_factor must be a positive number or a pair, got {scale_factor!r}"
        )
    if not all(s > 0 and math.isfinite(s) for s in scales):
        raise ValueError(f"interpolate: scale_factor must be positive and finite, got {scale_factor!r}")
    size = tuple(int(math.floor(n * s)) for n, s in zip(hw, scales))
    if not align_corners and any(n * s != m for n, s, m in zip(hw, scales, size)):
        raise ValueError(
            f"interpolate: scale_factor={scale_factor!r} on an input of size {tuple(hw)} gives a fractional "
            f"size; with align_corners=False pass size= instead (PyTorch would map coordinates by the scale)"
        )
    return size
