"""RANet (Yang et al., CVPR 2020), built as yangle15/RANet-pytorch builds it (CIFAR and ImageNet).

The stem makes one feature map per *scale flow*, flow 0 the coarsest. Flows run one after
another; flow ``i`` has ``n_blocks + block_step * i`` dense blocks. Flow 0 uses plain dense
blocks; in every later flow the first blocks are *fusion* blocks that, layer by layer, also
read the features of the same block of the previous (coarser) flow, resized bilinearly
(``align_corners=True``), and some of them downsample their flow to the next coarser scale.
The remaining blocks of a flow are plain dense blocks, each followed by an exit.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence

import numpy as np

from ..autograd.tensor import Tensor
from ..nn import Module, ModuleList
from ..nn import functional as F
from .blocks import (
    ClassifierHead,
    ConvBasic,
    ConvBN,
    ConvNormal,
    Deferred,
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


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with ``align_corners=True``; a no-op (exactly so) when the size is unchanged."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, tuple(size), mode="bilinear", align_corners=True)


class ConvUpNormal(Module):
    """Fusion layer: ``cat([x, up(ConvBN(low)), ConvBN(x)])``, resized to the new resolution.

    Of the ``n_out`` new channels, ``floor(n_out * compress_factor)`` come from the coarser
    flow's feature ``low``; with ``down`` the layer halves the resolution of ``x``.
    """

    def __init__(
        self,
        n_in: int,
        n_in_low: int,
        n_out: int,
        bn_width: int,
        bn_width_low: int,
        compress_factor: float,
        down: bool,
    ):
        super().__init__()
        n_up = check_width(math.floor(n_out * compress_factor), "a fusion layer's path from the coarser flow")
        self.conv_up = ConvBN(n_in_low, n_up, False, bn_width_low)
        self.conv_normal = ConvBN(
            n_in, check_width(n_out - n_up, "a fusion layer's own path"), down, bn_width
        )

    def forward(self, low: Tensor, x: Tensor) -> Tensor:
        new = self.conv_normal(x)
        size = new.shape[2:]
        return F.cat([_resize(x, size), _resize(self.conv_up(low), size), new], 1)


class DenseBlock(Module):
    """``num_layers`` dense layers, then an optional 1x1 transition (the reference's ``_BlockNormal``).

    ``forward(x)`` returns ``(y, features)``: the block output and the list of the block input
    and every layer's output, which the next flow's fusion block reads.
    """

    def __init__(
        self, num_layers: int, n_in: int, growth_rate: int, reduction: float, trans: bool, bn_width: int
    ):
        super().__init__()
        self.layers = ModuleList(
            ConvNormal(n_in + i * growth_rate, growth_rate, bn_width) for i in range(num_layers)
        )
        n_out = n_in + num_layers * growth_rate
        self.trans = _transition(n_out, reduction) if trans else None
        self.out_channels = self.trans.net[0].out_channels if trans else n_out

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = [x]
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return (x if self.trans is None else self.trans(x)), features


class FusionBlock(Module):
    """Dense block fused with the coarser flow (the reference's ``_BlockUpNormal``).

    Layer ``j`` reads the ``j``-th feature of the coarser flow's block; a final 1x1 ConvBasic of
    that block's last feature adds ``floor(C * compress_factor)`` channels (C the dense output
    width); with ``down`` the last layer halves the resolution.

    Args:
        n_in_low: channels of the coarser block's features (``num_layers + 1`` entries).
        bn_width, bn_width_low: bottleneck factors of this flow and of the coarser one.
    """

    def __init__(
        self,
        num_layers: int,
        n_in: int,
        n_in_low: Sequence[int],
        growth_rate: int,
        reduction: float,
        trans: bool,
        down: bool,
        compress_factor: float,
        bn_width: int,
        bn_width_low: int,
    ):
        super().__init__()
        # built per layer, so that a one-layer block works (the reference fails on it)
        self.layers = ModuleList(
            ConvUpNormal(
                n_in + j * growth_rate,
                n_in_low[j],
                growth_rate,
                bn_width,
                bn_width_low,
                compress_factor,
                down and j == num_layers - 1,
            )
            for j in range(num_layers)
        )
        n_out = n_in + num_layers * growth_rate
        n_last = check_width(
            math.floor(n_out * compress_factor), "a fusion block's last path from the coarser flow"
        )
        self.conv_last = ConvBasic(n_in_low[num_layers], n_last, 1, 1, 0)
        n_out += n_last
        self.trans = _transition(n_out, reduction) if trans else None
        self.out_channels = self.trans.net[0].out_channels if trans else n_out

    def forward(self, x: Tensor, low: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        features = [x]
        for layer, low_j in zip(self.layers, low):
            x = layer(low_j, x)
            features.append(x)
        x = F.cat([x, _resize(self.conv_last(low[len(self.layers)]), x.shape[2:])], 1)
        return (x if self.trans is None else self.trans(x)), features


def _transition(n_in: int, reduction: float) -> ConvBasic:
    return ConvBasic(n_in, check_width(math.floor(reduction * n_in), "a transition"), 1, 1, 0)


class RAFirstLayer(Module):
    """The stem, finest flow first: ``first_conv``, then a 3x3 ConvBasic per flow, stride 2 where
    ``scale_list`` changes.

    ``forward`` returns the maps coarsest first (flow order).
    """

    def __init__(
        self, n_channels: int, gr_factor: Sequence[int], scale_list: Sequence[int], stem: str = "cifar"
    ):
        super().__init__()
        gr, scales = list(gr_factor)[::-1], list(scale_list)[::-1]
        self.strides = [1] + [1 if scales[i] == scales[i - 1] else 2 for i in range(1, len(scales))]
        self.layers = ModuleList([first_conv(n_channels * gr[0], stem)])
        for i in range(1, len(gr)):
            self.layers.append(ConvBasic(n_channels * gr[i - 1], n_channels * gr[i], 3, self.strides[i], 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out[::-1]


class RANet(Module):
    """Resolution adaptive network for 32x32 or 224x224 images; ``forward`` returns the list of exit logits.

    Args:
        num_classes: classes of every exit.
        n_blocks: blocks of the coarsest flow (``nBlocks``); flow i has ``n_blocks + block_step * i``.
        block_step: extra blocks per flow (``block-step``).
        step: layers per block; with ``step_mode="lg"`` the i-th block of a flow (0-based) has
            ``step * (i + 1)`` layers, with ``"even"`` every block has ``step``.
        step_mode: ``"even"`` or ``"lg"``.
        n_channels: base width of the stem (``nChannels``); flow i starts with ``n_channels * gr_factor[i]``.
        growth_rate: channels each layer adds, per unit of ``gr_factor``.
        scale_list: scale of each flow, coarsest first, a list or ``"1-2-3"``; flow i downsamples
            ``scale_list[i] - 1`` times, at the ends of earlier flows.
        gr_factor, bn_factor: width and bottleneck factor of each flow (``"4-2-1"``).
        compress_factor: share of a fusion layer's new channels taken from the coarser flow.
        reduction: compression of the transitions.
        head_channels: width of the two convolutions of each exit: 128 on CIFAR in the paper;
            ``None`` keeps the width of the exit's input, as the reference ImageNet head does.
        init: ``"official"`` (default), as the reference applies it: conv N(0, sqrt(2 / (k*k*Cout))),
            BN 1/0, Linear bias 0, except the first layer, which keeps PyTorch's default
            U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``"he"``: that init on every convolution.
        stem: ``"cifar"`` (32x32 images, a 3x3 convolution) or ``"imagenet"`` (224x224 images,
            7x7 stride-2 convolution and 3x3 stride-2 max pool); see ``blocks.STEMS``.

    Raises:
        ValueError: for an inconsistent configuration, naming the problem.
    """

    def __init__(
        self,
        num_classes: int,
        n_blocks: int,
        block_step: int,
        step: int,
        step_mode: str,
        n_channels: int,
        growth_rate: int,
        scale_list: str | Sequence[int],
        gr_factor: str | Sequence[int],
        bn_factor: str | Sequence[int],
        compress_factor: float,
        reduction: float,
        head_channels: int | None = 128,
        init: str = "official",
        stem: str = "cifar",
    ):
        super().__init__()
        check_init(init)
        geometry = check_stem(stem)
        scales = int_list(scale_list, "scale_list")
        gr, bn = int_list(gr_factor, "gr_factor"), int_list(bn_factor, "bn_factor")
        self._check(
            num_classes,
            n_blocks,
            block_step,
            step,
            step_mode,
            n_channels,
            growth_rate,
            scales,
            gr,
            bn,
            compress_factor,
            reduction,
            head_channels,
        )
        self.n_scales, self.stem, self.image_size = len(scales), stem, geometry.image_size
        flow_end = [0] + [n_blocks + block_step * i for i in range(self.n_scales)]
        self.n_fused = flow_end[:-1]  # flow i fuses its first flow_end[i] blocks with flow i - 1
        self.num_exits = flow_end[-1]
        self.FirstLayer = RAFirstLayer(n_channels, gr, scales, stem)
        sizes = [geometry.first_scale]
        for stride in self.FirstLayer.strides[1:]:
            sizes.append(halve(sizes[-1]) if stride == 2 else sizes[-1])
        sizes = sizes[::-1]
        self.scale_flows, self.classifier = ModuleList(), ModuleList()
        low_channels: list[list[int]] = []
        for ii in range(self.n_scales):
            flow, channels = ModuleList(), []
            n_in, size, rate, n_blocks_ii = (
                n_channels * gr[ii],
                sizes[ii],
                growth_rate * gr[ii],
                flow_end[ii + 1],
            )
            # the flow halves its resolution at the ends of the last scales[ii] - 1 earlier flows
            downs = set(flow_end[1 : ii + 1][-(scales[ii] - 1) :]) if scales[ii] > 1 else set()
            for i in range(n_blocks_ii):
                n_layers = step if step_mode == "even" else step * (i + 1)
                # transitions after blocks floor(t * n / scale), t = 1 .. scale - 1 (1-based)
                trans = any(i + 1 == (t + 1) * n_blocks_ii // scales[ii] for t in range(scales[ii] - 1))
                if i < self.n_fused[ii]:
                    down = i + 1 in downs
                    block = FusionBlock(
                        n_layers,
                        n_in,
                        low_channels[i],
                        rate,
                        reduction,
                        trans,
                        down,
                        compress_factor,
                        bn[ii],
                        bn[ii - 1],
                    )
                    size = halve(size) if down else size
                else:
                    block = DenseBlock(n_layers, n_in, rate, reduction, trans, bn[ii])
                channels.append([n_in + j * rate for j in range(n_layers + 1)])
                n_in = block.out_channels
                flow.append(block)
                if i >= self.n_fused[ii]:
                    if size != geometry.head_input:
                        head, image, first = geometry.head_input, geometry.image_size, geometry.first_scale
                        n_halvings = round(math.log2(first / head))
                        raise ValueError(
                            f"RANet's {stem} classifier head needs a {head}x{head} map, but exit "
                            f"{len(self.classifier) + 1} (flow {ii}, block {i}) sits on {size}x{size} for a "
                            f"{image}x{image} image; scale_list {scales} must start at 1 (the {head}x{head} "
                            f"flow), end at {n_halvings + 1} ({first}x{first}) and grow by 0 or 1 from one "
                            f"flow to the next"
                        )
                    self.classifier.append(ClassifierHead(n_in, num_classes, head_channels, stem))
            low_channels = channels
            self.scale_flows.append(flow)
        init_weights(self, skip=self.FirstLayer if init == "official" else None)

    @staticmethod
    def _check(
        num_classes,
        n_blocks,
        block_step,
        step,
        step_mode,
        n_channels,
        growth_rate,
        scales,
        gr,
        bn,
        compress_factor,
        reduction,
        head_channels,
    ) -> None:
        """Raise a ValueError naming the first problem of the configuration."""
        if min(num_classes, n_channels, 1 if head_channels is None else head_channels) < 1:
            raise ValueError(
                f"num_classes, n_channels and head_channels must be positive, got {num_classes}, "
                f"{n_channels}, {head_channels}"
            )
        if not len(scales) == len(gr) == len(bn):
            raise ValueError(
                f"scale_list, gr_factor and bn_factor need one entry per scale flow, got {scales}, {gr}, {bn}"
            )
        if step_mode not in ("even", "lg"):
            raise ValueError(f"step_mode must be 'even' or 'lg', got {step_mode!r}")
        if n_blocks < 1 or block_step < 0 or step < 1 or growth_rate < 1:
            raise ValueError(
                f"need n_blocks >= 1, block_step >= 0, step >= 1 and growth_rate >= 1; got "
                f"{n_blocks}, {block_step}, {step}, {growth_rate}"
            )
        if not (0 < compress_factor < 1 and 0 < reduction <= 1):
            raise ValueError(
                f"need 0 < compress_factor < 1 and 0 < reduction <= 1, got {compress_factor}, {reduction}"
            )

    def iter_exits(self, x: Tensor) -> Generator[Tensor, np.ndarray | None, None]:
        """Run the network exit by exit, yielding each exit's logits, shallowest first.

        After receiving exit k's logits the caller may ``send`` the positions (in the current
        batch) of the samples that go on; the rest of the network then runs on those samples only,
        and the next logits have one row per kept sample. ``next`` (or iterating) keeps every sample.

        At an exit of flow ``ii`` the state that later exits need is the flow's current map ``h``,
        the features of its blocks so far (the next flow's fusion blocks read them; the last flow
        keeps none) and the stem's maps of the flows not started yet. ``h`` is cut down at once;
        the other two are ``Deferred``, cut down once, when read. The previous flow's features
        (``low``) are left alone: only fusion blocks read them, and a flow's fusion blocks all come
        before its first exit.
        """
        check_image(x, self, self.stem)
        inputs = [Deferred(m) for m in self.FirstLayer(x)]
        low, n_exits = [], 0
        for ii, flow in enumerate(self.scale_flows):
            h, features = inputs[ii].get(), []
            read_by_next_flow = ii + 1 < len(self.scale_flows)
            for i, block in enumerate(flow):
                h, f = block(h, low[i].get()) if isinstance(block, FusionBlock) else block(h)
                if read_by_next_flow:
                    features.append(Deferred(f))
                if i >= self.n_fused[ii]:
                    keep = yield self.classifier[n_exits](h)
                    n_exits += 1
                    if keep is not None:
                        h = take_samples(h, keep)
                        for later in features + inputs[ii + 1 :]:
                            later.keep(keep)
            low = features

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the logits of every exit, shallowest first, each of shape (N, num_classes)."""
        return list(self.iter_exits(x))
