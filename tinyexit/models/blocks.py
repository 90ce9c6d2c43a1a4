"""Building blocks shared by MSDNet and RANet: Conv-BN-ReLU units, the dense layer, the CIFAR head.

Attribute names (``net``, ``conv_normal``, ``m``, ``linear``) follow the reference PyTorch code, so
parameter names match the keys of its ``state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import AvgPool2d, BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential, init
from ..nn import functional as F

#: Spatial size the CIFAR classifier head expects: the coarsest scale of a 32x32 image.
HEAD_INPUT_SIZE = 8


def int_list(value: str | Sequence[int], name: str) -> list[int]:
    """Return a list of positive ints from a list or the CLI form ``"1-2-4"``.

    Raises:
        ValueError: if an entry is not a positive int, or the list is empty.
    """
    try:
        items = value.split("-") if isinstance(value, str) else list(value)
        out = [int(v) for v in items]
    except (TypeError, ValueError):
        out = []
    if not out or min(out) < 1 or any(not isinstance(v, str) and v != int(v) for v in items):
        raise ValueError(f"{name} must be a list of positive ints or a string like '1-2-4', got {value!r}")
    return out


def check_width(width: int, what: str) -> int:
    """Raise a ValueError naming ``what`` when a computed layer width is below one channel."""
    if width < 1:
        raise ValueError(
            f"{what} has {width} channels; widen the network (n_channels, growth_rate) "
            f"or raise the factor that shrinks it"
        )
    return width


class ConvBasic(Module):
    """Conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.net = Sequential(
            Conv2d(n_in, n_out, kernel, stride, padding, bias=False), BatchNorm2d(n_out), ReLU()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvBN(Module):
    """Bottleneck unit: 1x1 Conv-BN-ReLU to ``min(n_in, bn_width * n_out)`` channels, then 3x3 Conv-BN-ReLU.

    Args:
        n_in, n_out: input and output channels.
        down: the 3x3 convolution has stride 2 (halves the resolution) instead of 1.
        bn_width: bottleneck factor: the 1x1 convolution has at most ``bn_width * n_out`` outputs.
    """

    def __init__(self, n_in: int, n_out: int, down: bool, bn_width: int):
        super().__init__()
        inner = min(n_in, bn_width * n_out)
        self.net = Sequential(
            Conv2d(n_in, inner, 1, bias=False),
            BatchNorm2d(inner),
            ReLU(),
            Conv2d(inner, n_out, 3, 2 if down else 1, 1, bias=False),
            BatchNorm2d(n_out),
            ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvNormal(Module):
    """Dense layer: ``cat([x, ConvBN(x)])``, adding ``n_out`` channels at the same resolution."""

    def __init__(self, n_in: int, n_out: int, bn_width: int):
        super().__init__()
        self.conv_normal = ConvBN(n_in, n_out, False, bn_width)

    def forward(self, x: Tensor) -> Tensor:
        return F.cat([x, self.conv_normal(x)], 1)


class ClassifierHead(Module):
    """The CIFAR exit: two 3x3 stride-2 ConvBasic to ``head_channels``, AvgPool 2, Linear.

    It takes an 8x8 feature map (8 -> 4 -> 2 -> 1), the coarsest scale of a 32x32 image.
    """

    def __init__(self, n_in: int, num_classes: int, head_channels: int = 128):
        super().__init__()
        self.m = Sequential(
            ConvBasic(n_in, head_channels, 3, 2, 1),
            ConvBasic(head_channels, head_channels, 3, 2, 1),
            AvgPool2d(2),
        )
        self.linear = Linear(head_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[2:]) != (HEAD_INPUT_SIZE, HEAD_INPUT_SIZE):
            raise ValueError(
                f"the CIFAR classifier head needs an {HEAD_INPUT_SIZE}x{HEAD_INPUT_SIZE} feature "
                f"map (the coarsest scale of a 32x32 image), got {x.shape[2]}x{x.shape[3]}"
            )
        return self.linear(self.m(x).flatten(1))


#: ``init`` values of the models: "official" = the initialisation the paper's runs trained from,
#: "he" = the reference code's intended init applied to every convolution
INITS = ("official", "he")


def check_init(init: str) -> str:
    """Return ``init`` when it is one of :data:`INITS`, else raise a ValueError naming them."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {INITS}")
    return init


def init_weights(module: Module, skip: Module | None = None) -> None:
    """The reference init: conv N(0, sqrt(2 / (k*k*Cout))), BN weight 1 and bias 0, Linear bias 0.

    Linear weights keep PyTorch's default uniform init, as in the reference code. The submodules
    of ``skip`` (RANet's first layer under the official init) keep their default init.
    """
    skipped = {id(m) for m in skip.modules()} if skip is not None else set()
    for m in module.modules():
        if id(m) in skipped:
            continue
        if isinstance(m, Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, BatchNorm2d):
            init.ones_(m.weight)
            init.zeros_(m.bias)
        elif isinstance(m, Linear) and m.bias is not None:
            init.zeros_(m.bias)


def take_samples(state: Any, index: np.ndarray) -> Any:
    """Keep the samples ``index`` (positions along dim 0) of every tensor in a nested list or tuple.

    Early-exit inference uses this to shrink the state a network carries from one exit to the next.
    A tensor that appears several times in ``state`` is indexed once and stays shared.
    """
    done: dict[int, Tensor] = {}

    def take(item: Any) -> Any:
        if isinstance(item, Tensor):
            if id(item) not in done:
                done[id(item)] = item[array_module(item.data).asarray(index)]
            return done[id(item)]
        return type(item)(take(part) for part in item)

    return take(state)


class Deferred:
    """State read later on: it tracks which of its samples are still in the batch and is indexed once, when read.

    Early exit cuts the batch down at every exit; state that waits for a later stage (RANet's
    features for the next flow) would otherwise be copied again at each exit on the way.
    """

    def __init__(self, state: Any):
        self.state, self.rows = state, None

    def keep(self, index: np.ndarray) -> None:
        """Record that the batch was cut down to the samples ``index`` (positions in the current batch)."""
        self.rows = index if self.rows is None else self.rows[index]

    def get(self) -> Any:
        """The state, restricted to the samples still in the batch."""
        return self.state if self.rows is None else take_samples(self.state, self.rows)


def halve(size: int) -> int:
    """Output size of a 3x3 stride-2 convolution with padding 1."""
    return math.ceil(size / 2)
