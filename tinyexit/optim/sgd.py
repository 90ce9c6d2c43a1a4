"""Stochastic gradient descent with momentum, weight decay and Nesterov, exactly as ``torch.optim.SGD``."""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD: d = g + wd·p; buf = momentum·buf + d (buf = d at the first step); p -= lr·buf.

    With ``nesterov``, p -= lr·(d + momentum·buf). Dampening is not offered (always 0).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD needs lr, momentum and weight_decay >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        with no_grad():
            for group in self.param_groups:
                lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    d = p.grad.data + wd * p.data if wd else p.grad.data
                    if mom:
                        state = self.state.setdefault(p, {})
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = state["momentum_buffer"] = d.copy()
                        else:
                            buf *= mom
                            buf += d
                        d = d + mom * buf if group["nesterov"] else buf
                    p.data -= lr * d
