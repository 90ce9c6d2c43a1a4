"""Stochastic gradient descent with momentum, weight decay and Nesterov, exactly as ``torch.optim.SGD``."""

from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD: d = g + wd·p; buf = momentum·buf + d (buf = d at the first step); p -= lr·buf.

    With ``nesterov``, p -= lr·(d + momentum·buf). Dampening is not offered (always 0).
    """

    def __init__(
        self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD needs lr, momentum and weight_decay >= 0, got {lr}, {momentum}, {weight_decay}"
            )
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    def update(self, p, g, state: dict, group: dict) -> tuple:
        """d = g + wd·p; buf = mom·buf + d; Δ = lr·buf (lr·(d + mom·buf) if Nesterov)."""
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        d = g + wd * p if wd else g
        if not mom:
            return lr * d, {}
        buf = state.get("momentum_buffer")
        buf = d if buf is None else mom * buf + d
        return lr * (d + mom * buf if group["nesterov"] else buf), {"momentum_buffer": buf}
