"""MSDNet (Huang et al., ICLR 2018), built as the reference PyTorch code builds it.

The CIFAR network follows kalviny/MSDNet-PyTorch; the ImageNet one follows the copy in the L2W
authors' code (LeapLabTHU/L2W-DEN), which adds the ImageNet stem and head. The network keeps
``S = len(gr_factor)`` feature maps at once, scale 0 the finest and scale S-1 the coarsest: 32x32
to 8x8 in three scales on CIFAR, 56x56 to 7x7 in four on ImageNet. Each layer adds
``growth_rate * gr_factor[s]`` channels at every scale ``s``: a dense 3x3 bottleneck convolution
of that scale's map, plus (for s >= 1) a stride-2 one of the finer map, half the new channels
each. With ``prune="max"`` the finest scale is dropped every ``ceil(layers / S)`` layers and a 1x1
transition then shrinks the channels by ``reduction``. An exit (two stride-2 convolutions,
pooling, Linear) follows every block, on the coarsest scale.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence

import numpy as np

from ..autograd.tensor import Tensor
from ..nn import Module, ModuleList, Sequential
from ..nn import functional as F
from .blocks import (
    ClassifierHead,
    ConvBasic,
    ConvBN,
    ConvNormal,
    check_image,
    check_init,
    check_stem,
    check_width,
    first_conv,
    halve,
    init_weights,
    int_list,
    take_samples,
)


class ConvDownNormal(Module):
    """``cat([x, ConvBN_stride2(finer), ConvBN(x)])``: ``n_out`` new channels, half from each path."""

    def __init__(self, n_in_fine: int, n_in: int, n_out: int, bn_width_fine: int, bn_width: int):
        super().__init__()
        self.conv_down = ConvBN(n_in_fine, n_out // 2, True, bn_width_fine)
        self.conv_normal = ConvBN(n_in, n_out // 2, False, bn_width)

    def forward(self, finer: Tensor, x: Tensor) -> Tensor:
        return F.cat([x, self.conv_down(finer), self.conv_normal(x)], 1)


class MSDNFirstLayer(Module):
    """The stem: ``first_conv`` for the finest scale, then a 3x3 stride-2 ConvBasic for each next one."""

    def __init__(self, n_channels: int, gr_factor: Sequence[int], stem: str = "cifar"):
        super().__init__()
        self.layers = ModuleList([first_conv(n_channels * gr_factor[0], stem)])
        for g_finer, g in zip(gr_factor, gr_factor[1:]):
            self.layers.append(ConvBasic(n_channels * g_finer, n_channels * g, 3, 2, 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class MSDNLayer(Module):
    """One MSDNet layer from ``in_scales`` to ``out_scales`` scales (the coarsest ones are kept).

    ``n_in`` and ``n_out`` are per unit of ``gr_factor``: scale ``s`` has ``n_in * gr_factor[s]``
    channels in and gains ``n_out * gr_factor[s]``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        gr_factor: Sequence[int],
        bn_factor: Sequence[int],
        in_scales: int,
        out_scales: int,
    ):
        super().__init__()
        n_scales = len(gr_factor)
        self.discard = in_scales - out_scales
        offset = n_scales - out_scales
        self.layers = ModuleList()
        if self.discard > 0:
            self.layers.append(
                ConvDownNormal(
                    n_in * gr_factor[offset - 1],
                    n_in * gr_factor[offset],
                    n_out * gr_factor[offset],
                    bn_factor[offset - 1],
                    bn_factor[offset],
                )
            )
        else:
            self.layers.append(
                ConvNormal(n_in * gr_factor[offset], n_out * gr_factor[offset], bn_factor[offset])
            )
        for s in range(offset + 1, n_scales):
            self.layers.append(
                ConvDownNormal(
                    n_in * gr_factor[s - 1],
                    n_in * gr_factor[s],
                    n_out * gr_factor[s],
                    bn_factor[s - 1],
                    bn_factor[s],
                )
            )

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        if self.discard > 0:  # the finest input scale only feeds the stride-2 path of the next one
            return [layer(x[i], x[i + 1]) for i, layer in enumerate(self.layers)]
        return [self.layers[0](x[0])] + [
            layer(x[i - 1], x[i]) for i, layer in enumerate(self.layers) if i > 0
        ]


class Transition(Module):
    """A 1x1 ConvBasic per scale (the reference's ``ParallelModule``)."""

    def __init__(self, n_in: int, n_out: int, gr_factor: Sequence[int]):
        super().__init__()
        self.m = ModuleList(ConvBasic(n_in * g, n_out * g, 1, 1, 0) for g in gr_factor)

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        return [m(xi) for m, xi in zip(self.m, x)]


class MSDNet(Module):
    """Multi-scale dense network for 32x32 or 224x224 images; ``forward`` returns the list of exit logits.

    Args:
        num_classes: classes of every exit.
        n_blocks: number of blocks, hence of exits (``nBlocks``).
        step_mode: ``"even"`` (every block after the first has ``step`` layers) or ``"lin_grow"``
            (block i has ``step * i + 1``).
        step: layers per block, see ``step_mode``.
        base: layers of the first block.
        n_channels: channels of the finest scale after the stem (``nChannels``); scale s has
            ``n_channels * gr_factor[s]``.
        growth_rate: channels each layer adds, per unit of ``gr_factor``.
        gr_factor: width multiplier per scale, a list or ``"1-2-4"``; its length is the number of
            scales: 3 with the CIFAR stem (32 -> 8), 4 with the ImageNet one (56 -> 7).
        bn_factor: bottleneck factor per scale, same length.
        prune: ``"max"`` drops scales evenly over the depth, ``"min"`` only in the last layers.
        reduction: transition compression (0 disables transitions).
        head_channels: width of the two convolutions of each exit: 128 on CIFAR in the paper;
            ``None`` keeps the width of the exit's input, as the reference ImageNet head does.
        stem: ``"cifar"`` (32x32 images, a 3x3 convolution) or ``"imagenet"`` (224x224 images,
            7x7 stride-2 convolution and 3x3 stride-2 max pool); see ``blocks.STEMS``.
        init: ``"official"`` (default): PyTorch's default init, which the paper's MSDNets trained
            from (conv and Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Linear bias the same, BN 1/0);
            the reference code defines a He init but its loop only ever reaches container modules.
            ``"he"``: that intended init, conv N(0, sqrt(2 / (k*k*Cout))), BN 1/0, Linear bias 0.

    Raises:
        ValueError: for an inconsistent configuration, naming the problem.
    """

    def __init__(
        self,
        num_classes: int,
        n_blocks: int,
        step_mode: str,
        step: int,
        base: int,
        n_channels: int,
        growth_rate: int,
        gr_factor: str | Sequence[int],
        bn_factor: str | Sequence[int],
        prune: str,
        reduction: float,
        head_channels: int | None = 128,
        init: str = "official",
        stem: str = "cifar",
    ):
        super().__init__()
        check_init(init)
        gr, bn = int_list(gr_factor, "gr_factor"), int_list(bn_factor, "bn_factor")
        if min(num_classes, n_channels, 1 if head_channels is None else head_channels) < 1:
            raise ValueError(
                f"num_classes, n_channels and head_channels must be positive, got {num_classes}, "
                f"{n_channels}, {head_channels}"
            )
        self._check(n_blocks, step_mode, step, base, growth_rate, gr, bn, prune, reduction, stem)
        self.n_scales, self.num_exits = len(gr), n_blocks
        self.stem, self.image_size = stem, check_stem(stem).image_size
        self.steps = [base] + [step if step_mode == "even" else step * i + 1 for i in range(1, n_blocks)]
        n_layers_all, n_layer_curr, n_in = sum(self.steps), 0, n_channels
        if prune == "min" and n_layers_all < self.n_scales - 1:
            raise ValueError(
                f"prune='min' drops one scale per layer at the end and needs at least "
                f"{self.n_scales - 1} layers, got {n_layers_all}"
            )
        self.blocks, self.classifier = ModuleList(), ModuleList()
        for n_layers in self.steps:
            layers = [MSDNFirstLayer(n_channels, gr, stem)] if n_layer_curr == 0 else []
            for _ in range(n_layers):
                n_layer_curr += 1
                in_scales, out_scales = self._scales(prune, n_layers_all, n_layer_curr)
                layers.append(MSDNLayer(n_in, growth_rate, gr, bn, in_scales, out_scales))
                n_in += growth_rate
                if reduction > 0 and (
                    in_scales > out_scales
                    if prune == "max"
                    else n_layer_curr in (n_layers_all // 3, 2 * n_layers_all // 3)
                ):
                    n_out = check_width(
                        math.floor(reduction * n_in), f"the transition after layer {n_layer_curr}"
                    )
                    layers.append(Transition(n_in, n_out, gr[self.n_scales - out_scales :]))
                    n_in = n_out
            self.blocks.append(Sequential(*layers))
            self.classifier.append(ClassifierHead(n_in * gr[-1], num_classes, head_channels, stem))
        if init == "he":
            init_weights(self)

    @staticmethod
    def _check(n_blocks, step_mode, step, base, growth_rate, gr, bn, prune, reduction, stem) -> None:
        """Raise a ValueError naming the first problem of the configuration."""
        geometry = check_stem(stem)
        sizes = [geometry.first_scale]
        while sizes[-1] > geometry.head_input:
            sizes.append(halve(sizes[-1]))
        if len(gr) != len(sizes):
            image, head = geometry.image_size, geometry.head_input
            raise ValueError(
                f"MSDNet's {stem} classifier head needs a {head}x{head} coarsest scale, and a "
                f"{image}x{image} image reaches {head}x{head} after exactly {len(sizes)} scales "
                f"({' -> '.join(map(str, sizes))}): gr_factor needs {len(sizes)} entries, got {gr}"
            )
        if len(bn) != len(gr):
            raise ValueError(f"bn_factor needs one entry per scale ({len(gr)}), got {bn}")
        if step_mode not in ("even", "lin_grow"):
            raise ValueError(f"step_mode must be 'even' or 'lin_grow', got {step_mode!r}")
        if prune not in ("min", "max"):
            raise ValueError(f"prune must be 'min' or 'max', got {prune!r}")
        if n_blocks < 1 or base < 1 or step < 0 or (step_mode == "even" and n_blocks > 1 and step < 1):
            raise ValueError(
                f"every block needs at least one layer: got n_blocks={n_blocks}, base={base}, "
                f"step={step} ({step_mode})"
            )
        odd = [s for s in range(1, len(gr)) if growth_rate * gr[s] % 2]
        if growth_rate < 1 or odd:
            raise ValueError(
                f"growth_rate * gr_factor[s] must be a positive even number for every scale s >= 1 "
                f"(half the new channels come from each of two convolutions); got growth_rate="
                f"{growth_rate}, gr_factor={gr}"
            )
        if not 0 <= reduction <= 1:
            raise ValueError(f"reduction must lie in [0, 1], got {reduction}")

    def _scales(self, prune: str, n_layers_all: int, n_layer_curr: int) -> tuple[int, int]:
        """(in_scales, out_scales) of the ``n_layer_curr``-th layer (1-based), as the reference prunes."""
        if prune == "min":
            return (
                min(self.n_scales, n_layers_all - n_layer_curr + 2),
                min(self.n_scales, n_layers_all - n_layer_curr + 1),
            )
        interval = math.ceil(n_layers_all / self.n_scales)
        return (
            self.n_scales - max(0, n_layer_curr - 2) // interval,
            self.n_scales - (n_layer_curr - 1) // interval,
        )

    def iter_exits(self, x: Tensor) -> Generator[Tensor, np.ndarray | None, None]:
        """Run the network exit by exit, yielding each exit's logits, shallowest first.

        After receiving exit k's logits the caller may ``send`` the positions (in the current
        batch) of the samples that go on; the next blocks then run on those samples only, and the
        next logits have one row per kept sample. ``next`` (or iterating) keeps every sample.
        The state carried between exits is the list of feature maps, one per remaining scale.
        """
        check_image(x, self, self.stem)
        for block, head in zip(self.blocks, self.classifier):
            x = block(x)
            keep = yield head(x[-1])
            if keep is not None:
                x = take_samples(x, keep)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the logits of every exit, shallowest first, each of shape (N, num_classes)."""
        return list(self.iter_exits(x))
