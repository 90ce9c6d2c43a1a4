"""Adam with coupled L2 weight decay, as ``torch.optim.Adam``."""

from __future__ import annotations

import math

from ..autograd.tensor import Tensor
from ..backend import array_module
from .optimizer import Optimizer


def _sqrt(x):
    return x.sqrt() if isinstance(x, Tensor) else array_module(x).sqrt(x)


class Adam(Optimizer):
    """Adam: g += wd·p; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; p -= lr·m̂ / (sqrt(v̂) + eps)."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"Adam needs lr, eps, weight_decay >= 0 and betas in [0, 1), got "
                f"{lr}, {eps}, {weight_decay}, {betas}"
            )
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def update(self, p, g, state: dict, group: dict) -> tuple:
        """One Adam step with bias correction and coupled L2 weight decay (as PyTorch)."""
        (b1, b2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        g = g + wd * p if wd else g
        t = state.get("step", 0) + 1
        m = (1 - b1) * g if not state else b1 * state["exp_avg"] + (1 - b1) * g
        v = (1 - b2) * g * g if not state else b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        # sqrt(v̂) + eps; the tiny shift keeps the derivative of sqrt finite at v = 0 (pseudo-update)
        denom = _sqrt(v + 1e-30) / math.sqrt(1 - b2**t) + eps
        return (lr / (1 - b1**t)) * m / denom, {"step": t, "exp_avg": m, "exp_avg_sq": v}
