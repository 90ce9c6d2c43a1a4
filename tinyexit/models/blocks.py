"""Building blocks shared by MSDNet and RANet: Conv-BN-ReLU units, the dense layer, stems and heads.

Attribute names (``net``, ``conv_normal``, ``m``, ``linear``) follow the reference PyTorch code, so
parameter names match the keys of its ``state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential, init
from ..nn import functional as F


@dataclass(frozen=True)
class StemGeometry:
    """Sizes a stem implies: the image it takes, its finest map, and the map every exit's head takes.

    Attributes:
        image_size: side of the input image.
        first_scale: side of the finest feature map the stem makes.
        head_input: side of the coarsest map, the one the classifier head needs (two stride-2
            convolutions and a 2x2 average pool take it to 1x1).
    """

    image_size: int
    first_scale: int
    head_input: int


#: ``stem`` value -> its geometry: ``"cifar"`` is a 3x3 stride-1 ConvBasic on 32x32 images;
#: ``"imagenet"`` a 7x7 stride-2 convolution (with bias) -> BN -> ReLU -> 3x3 stride-2 max pool
#: on 224x224 images, as the reference ImageNet networks begin.
STEMS = {
    "cifar": StemGeometry(image_size=32, first_scale=32, head_input=8),
    "imagenet": StemGeometry(image_size=224, first_scale=56, head_input=7),
}


def check_stem(stem: str) -> StemGeometry:
    """Return the geometry of ``stem``, or raise a ValueError naming the valid stems."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}: expected one of {', '.join(STEMS)}")
    return STEMS[stem]


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


def check_image(x: Tensor, model: Module, stem: str) -> None:
    """Raise a ValueError naming the expected size when ``x`` is not a batch of the stem's images."""
    geometry = STEMS[stem]
    side, head = geometry.image_size, geometry.head_input
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, side, side):
        raise ValueError(
            f"{type(model).__name__} with the {stem} stem takes images of shape (N, 3, {side}, {side}) "
            f"(its classifier heads need the {head}x{head} map the stem and scales make of them), "
            f"got {tuple(x.shape)}"
        )


def first_conv(n_out: int, stem: str) -> Module:
    """The stem's first unit, from the RGB image to the finest map with ``n_out`` channels.

    ``"cifar"``: a 3x3 ConvBasic. ``"imagenet"``: Conv 7x7 stride 2 (with bias, as in the
    reference) -> BN -> ReLU -> MaxPool 3x3 stride 2, a quarter of the image's side.
    """
    if check_stem(stem) is STEMS["cifar"]:
        return ConvBasic(3, n_out, 3, 1, 1)
    return Sequential(Conv2d(3, n_out, 7, 2, 3), BatchNorm2d(n_out), ReLU(), MaxPool2d(3, 2, 1))


class ClassifierHead(Module):
    """An exit: two 3x3 stride-2 ConvBasic to ``head_channels``, AvgPool 2, Linear.

    It takes the coarsest map of its stem's image: 8x8 for CIFAR (8 -> 4 -> 2 -> 1), 7x7 for
    ImageNet (7 -> 4 -> 2 -> 1). ``head_channels=None`` keeps the input's width, as the reference
    ImageNet head does; the CIFAR networks use 128.
    """

    def __init__(self, n_in: int, num_classes: int, head_channels: int | None = 128, stem: str = "cifar"):
        super().__init__()
        self.geometry = check_stem(stem)
        width = n_in if head_channels is None else head_channels
        self.m = Sequential(ConvBasic(n_in, width, 3, 2, 1), ConvBasic(width, width, 3, 2, 1), AvgPool2d(2))
        self.linear = Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        size, image = self.geometry.head_input, self.geometry.image_size
        if tuple(x.shape[2:]) != (size, size):
            raise ValueError(
                f"the classifier head needs a {size}x{size} feature map (the coarsest scale of a "
                f"{image}x{image} image), got {x.shape[2]}x{x.shape[3]}"
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
