"""The weight prediction network (WPN): per-sample, per-exit loss weights from the loss matrix."""

from __future__ import annotations

from .. import nn
from ..autograd.tensor import Tensor
from ..ops import cat

CENTRES = ("col", "mat", "none")
WPN_INPUTS = ("loss", "confidence", "both")


class WeightPredictionNet(nn.Module):
    """g_φ: Linear(K·m, hidden) -> ReLU -> ... -> Linear(hidden, K) -> tanh, then centred weights.

    w = 1 + δ·(t − mean(t)), with the mean over the K exits of each sample ("col", CIFAR: each
    sample's weights sum to K), over the whole B×K matrix ("mat", ImageNet), or no centring ("none":
    w = 1 + δ·t). No clipping.

    Args:
        num_exits: K.
        hidden: width of the hidden layers (500 in the paper).
        depth: number of hidden layers (1 in the paper).
        delta: δ, the size of the perturbation (0.8 on CIFAR, 0.3 on ImageNet).
        centre: "col", "mat" or "none".
        input: what the WPN sees: "loss" (B×K losses, the paper's default), "confidence" (B×K max
            softmax probabilities) or "both" (their concatenation, B×2K).
    """

    def __init__(
        self,
        num_exits: int,
        hidden: int = 500,
        depth: int = 1,
        delta: float = 0.8,
        centre: str = "col",
        input: str = "loss",
    ):
        super().__init__()
        if centre not in CENTRES:
            raise ValueError(f"unknown centre {centre!r}: expected one of {CENTRES}")
        if input not in WPN_INPUTS:
            raise ValueError(f"unknown WPN input {input!r}: expected one of {WPN_INPUTS}")
        if num_exits < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"num_exits, hidden and depth must be positive, got {num_exits}, {hidden}, {depth}"
            )
        self.num_exits, self.delta, self.centre, self.input = num_exits, delta, centre, input
        width_in = num_exits * (2 if input == "both" else 1)
        layers = []
        for _ in range(depth):
            layers += [nn.Linear(width_in, hidden), nn.ReLU()]
            width_in = hidden
        layers.append(nn.Linear(width_in, num_exits))
        self.mlp = nn.Sequential(*layers)

    def features(self, losses: Tensor, confidences: Tensor | None) -> Tensor:
        """The WPN's input for the chosen ``input`` kind, detached from the backbone."""
        if self.input != "loss" and confidences is None:
            raise ValueError(f"a WPN with input={self.input!r} needs the confidences")
        if self.input == "loss":
            return losses.detach()
        if self.input == "confidence":
            return confidences.detach()
        return cat([losses.detach(), confidences.detach()], dim=1)

    def forward(self, losses: Tensor, confidences: Tensor | None = None) -> Tensor:
        """Weights (B, K) for the per-sample losses (B, K) (and confidences (B, K) if used)."""
        if losses.ndim != 2 or losses.shape[1] != self.num_exits:
            raise ValueError(f"the WPN expects a (batch, {self.num_exits}) loss matrix, got {losses.shape}")
        t = self.mlp(self.features(losses, confidences)).tanh()
        if self.centre == "col":
            t = t - t.mean(dim=1, keepdim=True)
        elif self.centre == "mat":
            t = t - t.mean()
        return 1 + self.delta * t  # w = 1 + δ (t − mean t)
