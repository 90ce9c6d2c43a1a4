"""PyTorch mirror of tinyexit's MSDNet, RANet, WPN and training steps (the peer of bench/train_step.py).

The modules are ported line by line from ``tinyexit/models`` and ``tinyexit/l2w/wpn.py`` with the
same attribute names, so ``named_parameters()`` gives the same names and shapes and tinyexit's
weights load into the mirror unchanged (``load_from``). The steps follow ``BaselineTrainer.step``
and ``L2WTrainer.step``: two halves, the pseudo-update θ̂ = θ − lr·(momentum·buf + ∇θ L_tr + wd·θ)
taken with ``torch.autograd.grad(create_graph=True)``, the meta forward with
``torch.func.functional_call`` on copies of the running statistics, Adam on the WPN, SGD on θ.
Only bench/ and the tests import PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as TF

from tinyexit.l2w.allocation import allocate
from tinyexit.models.blocks import int_list
from tinyexit.models.presets import PRESETS


class ConvBasic(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(n_in, n_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(n_out), nn.ReLU()
        )

    def forward(self, x):
        return self.net(x)


class ConvBN(nn.Module):
    def __init__(self, n_in: int, n_out: int, down: bool, bn_width: int):
        super().__init__()
        inner = min(n_in, bn_width * n_out)
        self.net = nn.Sequential(
            nn.Conv2d(n_in, inner, 1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(),
            nn.Conv2d(inner, n_out, 3, 2 if down else 1, 1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(x)


class ConvNormal(nn.Module):
    def __init__(self, n_in: int, n_out: int, bn_width: int):
        super().__init__()
        self.conv_normal = ConvBN(n_in, n_out, False, bn_width)

    def forward(self, x):
        return torch.cat([x, self.conv_normal(x)], 1)


class ClassifierHead(nn.Module):
    def __init__(self, n_in: int, num_classes: int, head_channels: int | None = 128):
        super().__init__()
        width = n_in if head_channels is None else head_channels
        self.m = nn.Sequential(
            ConvBasic(n_in, width, 3, 2, 1), ConvBasic(width, width, 3, 2, 1), nn.AvgPool2d(2)
        )
        self.linear = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.linear(self.m(x).flatten(1))


def first_conv(n_out: int, stem: str) -> nn.Module:
    if stem == "cifar":
        return ConvBasic(3, n_out, 3, 1, 1)
    return nn.Sequential(
        nn.Conv2d(3, n_out, 7, 2, 3), nn.BatchNorm2d(n_out), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
    )


# --- MSDNet ------------------------------------------------------------------------------------


class ConvDownNormal(nn.Module):
    def __init__(self, n_in_fine, n_in, n_out, bn_width_fine, bn_width):
        super().__init__()
        self.conv_down = ConvBN(n_in_fine, n_out // 2, True, bn_width_fine)
        self.conv_normal = ConvBN(n_in, n_out // 2, False, bn_width)

    def forward(self, finer, x):
        return torch.cat([x, self.conv_down(finer), self.conv_normal(x)], 1)


class MSDNFirstLayer(nn.Module):
    def __init__(self, n_channels, gr_factor, stem="cifar"):
        super().__init__()
        self.layers = nn.ModuleList([first_conv(n_channels * gr_factor[0], stem)])
        for g_finer, g in zip(gr_factor, gr_factor[1:]):
            self.layers.append(ConvBasic(n_channels * g_finer, n_channels * g, 3, 2, 1))

    def forward(self, x):
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class MSDNLayer(nn.Module):
    def __init__(self, n_in, n_out, gr_factor, bn_factor, in_scales, out_scales):
        super().__init__()
        n_scales = len(gr_factor)
        self.discard = in_scales - out_scales
        offset = n_scales - out_scales
        self.layers = nn.ModuleList()
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

    def forward(self, x):
        if self.discard > 0:
            return [layer(x[i], x[i + 1]) for i, layer in enumerate(self.layers)]
        return [self.layers[0](x[0])] + [
            layer(x[i - 1], x[i]) for i, layer in enumerate(self.layers) if i > 0
        ]


class Transition(nn.Module):
    def __init__(self, n_in, n_out, gr_factor):
        super().__init__()
        self.m = nn.ModuleList(ConvBasic(n_in * g, n_out * g, 1, 1, 0) for g in gr_factor)

    def forward(self, x):
        return [m(xi) for m, xi in zip(self.m, x)]


class MSDNet(nn.Module):
    """tinyexit.models.MSDNet with the same arguments (no validation: tinyexit's checks the config)."""

    def __init__(
        self,
        num_classes,
        n_blocks,
        step_mode,
        step,
        base,
        n_channels,
        growth_rate,
        gr_factor,
        bn_factor,
        prune,
        reduction,
        head_channels=128,
        stem="cifar",
    ):
        super().__init__()
        gr, bn = int_list(gr_factor, "gr_factor"), int_list(bn_factor, "bn_factor")
        self.n_scales = len(gr)
        steps = [base] + [step if step_mode == "even" else step * i + 1 for i in range(1, n_blocks)]
        n_layers_all, n_layer_curr, n_in = sum(steps), 0, n_channels
        self.blocks, self.classifier = nn.ModuleList(), nn.ModuleList()
        for n_layers in steps:
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
                    n_out = math.floor(reduction * n_in)
                    layers.append(Transition(n_in, n_out, gr[self.n_scales - out_scales :]))
                    n_in = n_out
            self.blocks.append(nn.Sequential(*layers))
            self.classifier.append(ClassifierHead(n_in * gr[-1], num_classes, head_channels))

    def _scales(self, prune, n_layers_all, n_layer_curr):
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

    def forward(self, x):
        logits = []
        for block, head in zip(self.blocks, self.classifier):
            x = block(x)
            logits.append(head(x[-1]))
        return logits


# --- RANet -------------------------------------------------------------------------------------


def _resize(x, size):
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return TF.interpolate(x, tuple(size), mode="bilinear", align_corners=True)


def _transition(n_in, reduction):
    return ConvBasic(n_in, math.floor(reduction * n_in), 1, 1, 0)


class ConvUpNormal(nn.Module):
    def __init__(self, n_in, n_in_low, n_out, bn_width, bn_width_low, compress_factor, down):
        super().__init__()
        n_up = math.floor(n_out * compress_factor)
        self.conv_up = ConvBN(n_in_low, n_up, False, bn_width_low)
        self.conv_normal = ConvBN(n_in, n_out - n_up, down, bn_width)

    def forward(self, low, x):
        new = self.conv_normal(x)
        size = new.shape[2:]
        return torch.cat([_resize(x, size), _resize(self.conv_up(low), size), new], 1)


class DenseBlock(nn.Module):
    def __init__(self, num_layers, n_in, growth_rate, reduction, trans, bn_width):
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNormal(n_in + i * growth_rate, growth_rate, bn_width) for i in range(num_layers)
        )
        n_out = n_in + num_layers * growth_rate
        self.trans = _transition(n_out, reduction) if trans else None
        self.out_channels = self.trans.net[0].out_channels if trans else n_out

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return (x if self.trans is None else self.trans(x)), features


class FusionBlock(nn.Module):
    def __init__(
        self,
        num_layers,
        n_in,
        n_in_low,
        growth_rate,
        reduction,
        trans,
        down,
        compress_factor,
        bn_width,
        bn_width_low,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
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
        n_last = math.floor(n_out * compress_factor)
        self.conv_last = ConvBasic(n_in_low[num_layers], n_last, 1, 1, 0)
        n_out += n_last
        self.trans = _transition(n_out, reduction) if trans else None
        self.out_channels = self.trans.net[0].out_channels if trans else n_out

    def forward(self, x, low):
        features = [x]
        for layer, low_j in zip(self.layers, low):
            x = layer(low_j, x)
            features.append(x)
        x = torch.cat([x, _resize(self.conv_last(low[len(self.layers)]), x.shape[2:])], 1)
        return (x if self.trans is None else self.trans(x)), features


class RAFirstLayer(nn.Module):
    def __init__(self, n_channels, gr_factor, scale_list, stem="cifar"):
        super().__init__()
        gr, scales = list(gr_factor)[::-1], list(scale_list)[::-1]
        self.strides = [1] + [1 if scales[i] == scales[i - 1] else 2 for i in range(1, len(scales))]
        self.layers = nn.ModuleList([first_conv(n_channels * gr[0], stem)])
        for i in range(1, len(gr)):
            self.layers.append(ConvBasic(n_channels * gr[i - 1], n_channels * gr[i], 3, self.strides[i], 1))

    def forward(self, x):
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out[::-1]


class RANet(nn.Module):
    """tinyexit.models.RANet with the same arguments (no validation: tinyexit's checks the config)."""

    def __init__(
        self,
        num_classes,
        n_blocks,
        block_step,
        step,
        step_mode,
        n_channels,
        growth_rate,
        scale_list,
        gr_factor,
        bn_factor,
        compress_factor,
        reduction,
        head_channels=128,
        stem="cifar",
    ):
        super().__init__()
        scales = int_list(scale_list, "scale_list")
        gr, bn = int_list(gr_factor, "gr_factor"), int_list(bn_factor, "bn_factor")
        self.n_scales = len(scales)
        flow_end = [0] + [n_blocks + block_step * i for i in range(self.n_scales)]
        self.n_fused = flow_end[:-1]
        self.FirstLayer = RAFirstLayer(n_channels, gr, scales, stem)
        self.scale_flows, self.classifier = nn.ModuleList(), nn.ModuleList()
        low_channels: list[list[int]] = []
        for ii in range(self.n_scales):
            flow, channels = nn.ModuleList(), []
            n_in, rate, n_blocks_ii = n_channels * gr[ii], growth_rate * gr[ii], flow_end[ii + 1]
            downs = set(flow_end[1 : ii + 1][-(scales[ii] - 1) :]) if scales[ii] > 1 else set()
            for i in range(n_blocks_ii):
                n_layers = step if step_mode == "even" else step * (i + 1)
                trans = any(i + 1 == (t + 1) * n_blocks_ii // scales[ii] for t in range(scales[ii] - 1))
                if i < self.n_fused[ii]:
                    block = FusionBlock(
                        n_layers,
                        n_in,
                        low_channels[i],
                        rate,
                        reduction,
                        trans,
                        i + 1 in downs,
                        compress_factor,
                        bn[ii],
                        bn[ii - 1],
                    )
                else:
                    block = DenseBlock(n_layers, n_in, rate, reduction, trans, bn[ii])
                channels.append([n_in + j * rate for j in range(n_layers + 1)])
                n_in = block.out_channels
                flow.append(block)
                if i >= self.n_fused[ii]:
                    self.classifier.append(ClassifierHead(n_in, num_classes, head_channels))
            low_channels = channels
            self.scale_flows.append(flow)

    def forward(self, x):
        inputs = self.FirstLayer(x)
        logits, low = [], []
        for ii, flow in enumerate(self.scale_flows):
            h, features = inputs[ii], []
            for i, block in enumerate(flow):
                h, f = block(h, low[i]) if isinstance(block, FusionBlock) else block(h)
                features.append(f)
                if i >= self.n_fused[ii]:
                    logits.append(self.classifier[len(logits)](h))
            low = features
        return logits


def create(name: str, num_classes: int = 10, **overrides) -> nn.Module:
    """The mirror of ``tinyexit.models.create(name, num_classes, **overrides)`` (same configuration)."""
    kwargs = dict(PRESETS[name], **overrides)
    arch = kwargs.pop("arch")
    return {"msdnet": MSDNet, "ranet": RANet}[arch](num_classes=num_classes, **kwargs)


def load_from(mirror: nn.Module, module) -> None:
    """Copy a tinyexit module's parameters and buffers into its mirror; names and shapes must match."""
    state = {name: torch.from_numpy(np.array(t.numpy())) for name, t in module.state_dict().items()}
    own = mirror.state_dict()
    own_keys = {k for k in own if not k.endswith("num_batches_tracked")}
    if own_keys != set(state):
        raise KeyError(
            f"names differ: only in the mirror {sorted(own_keys - set(state))[:5]}, "
            f"only in tinyexit {sorted(set(state) - own_keys)[:5]}"
        )
    mirror.load_state_dict(state, strict=False)


# --- WPN and the training steps ----------------------------------------------------------------


class WeightPredictionNet(nn.Module):
    """The CIFAR WPN: Linear(K, hidden) -> ReLU -> Linear(hidden, K) -> tanh; w = 1 + δ (t − mean_k t)."""

    def __init__(self, num_exits: int, hidden: int = 500, delta: float = 0.8):
        super().__init__()
        self.delta = delta
        self.mlp = nn.Sequential(nn.Linear(num_exits, hidden), nn.ReLU(), nn.Linear(hidden, num_exits))

    def forward(self, losses):
        t = torch.tanh(self.mlp(losses.detach()))
        return 1 + self.delta * (t - t.mean(dim=1, keepdim=True))


def loss_matrix(logits: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    return torch.stack([TF.cross_entropy(z, labels, reduction="none") for z in logits], dim=1)


def confidences(logits: Sequence[torch.Tensor]) -> np.ndarray:
    """(K, B) max softmax probabilities, as NumPy (copied from the GPU if there), without gradient."""
    with torch.no_grad():
        return np.stack([TF.softmax(z, dim=1).amax(dim=1).cpu().numpy() for z in logits])


class BaselineStep:
    """``tinyexit.training.BaselineTrainer.step`` in PyTorch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.SGD):
        self.model, self.optimizer = model, optimizer

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        self.model.train()
        loss = loss_matrix(self.model(images), labels).mean(dim=0).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()


class L2WStep:
    """``tinyexit.l2w.L2WTrainer.step`` (weighting "wpn", allocated meta objective) in PyTorch."""

    def __init__(
        self,
        model: nn.Module,
        wpn: WeightPredictionNet,
        optimizer: torch.optim.SGD,
        wpn_optimizer: torch.optim.Adam,
        q: float = 0.75,
    ):
        self.model, self.wpn, self.optimizer, self.wpn_optimizer, self.q = (
            model,
            wpn,
            optimizer,
            wpn_optimizer,
            q,
        )

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        self.model.train()
        n = len(labels)
        first, second = slice(0, n // 2), slice(n // 2, n)
        losses = [
            self._half_step(images[tr], labels[tr], images[me], labels[me])
            for tr, me in ((first, second), (second, first))
        ]
        return float(np.mean(losses))

    def _virtual_step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """θ̂ = θ − lr·(momentum·buf + g + wd·θ), the step SGD would take (buf = d on the first step)."""
        group = self.optimizer.param_groups[0]
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        out = []
        for p, g in zip(params, grads):
            d = g + wd * p
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            out.append(p - lr * (d if buf is None else d + mom * buf))
        return out

    def _half_step(self, x_tr, y_tr, x_me, y_me) -> float:
        logits = self.model(x_tr)
        losses = loss_matrix(logits, y_tr)
        # the meta step: pseudo-update with create_graph, meta loss on θ̂, Adam step on the WPN
        names, params = zip(*self.model.named_parameters())
        train_loss = (self.wpn(losses) * losses).mean(dim=0).sum()
        grads = torch.autograd.grad(train_loss, params, create_graph=True)
        theta_hat = dict(zip(names, self._virtual_step(list(params), grads)))
        scratch = {name: b.clone() for name, b in self.model.named_buffers()}
        meta_logits = torch.func.functional_call(self.model, {**theta_hat, **scratch}, (x_me,))
        subsets = [torch.from_numpy(s).to(y_me.device) for s in allocate(confidences(meta_logits), self.q)]
        terms = [TF.cross_entropy(z[idx], y_me[idx]) for z, idx in zip(meta_logits, subsets) if len(idx)]
        meta_loss = sum(terms[1:], terms[0])
        wpn_params = list(self.wpn.parameters())
        self.wpn_optimizer.zero_grad()
        for p, g in zip(wpn_params, torch.autograd.grad(meta_loss, wpn_params)):
            p.grad = g
        self.wpn_optimizer.step()
        del meta_logits, meta_loss, theta_hat, grads, train_loss, terms
        # the real step with the updated WPN
        with torch.no_grad():
            w = self.wpn(losses)
        real_loss = (w * losses).mean(dim=0).sum()
        self.optimizer.zero_grad()
        real_loss.backward()
        self.optimizer.step()
        return real_loss.item()
