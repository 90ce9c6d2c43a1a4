"""Adam with coupled L2 weight decay, exactly as ``torch.optim.Adam``."""
from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam: g += wd·p; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; p -= lr·m̂ / (sqrt(v̂) + eps)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam needs lr, eps, weight_decay >= 0 and betas in [0, 1), got "
                             f"{lr}, {eps}, {weight_decay}, {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        """One Adam step with bias correction and coupled L2 weight decay (as PyTorch)."""
        with no_grad():
            for group in self.param_groups:
                (b1, b2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.data + wd * p.data if wd else p.grad.data
                    state = self.state.setdefault(p, {})
                    if not state:
                        xp = array_module(p.data)
                        state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
                    state["step"] += 1
                    m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                    m *= b1
                    m += (1 - b1) * g
                    v *= b2
                    v += (1 - b2) * g * g
                    denom = array_module(v).sqrt(v) / math.sqrt(1 - b2 ** t) + eps  # sqrt(v̂) + eps
                    p.data -= (lr / (1 - b1 ** t)) * m / denom  # lr · m̂ / denom

    def virtual_step(self, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        """The parameters ``step`` would produce, as differentiable tensors (nothing is changed)."""
        by_id = {id(p): group for group in self.param_groups for p in group["params"]}
        updated = []
        for p, g in zip(params, grads):
            if id(p) not in by_id:
                raise ValueError("virtual_step got a parameter this optimizer does not hold")
            group = by_id[id(p)]
            (b1, b2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
            g = g + wd * p if wd else g
            state = self.state.get(p)
            t = (state["step"] if state else 0) + 1
            m = (1 - b1) * g if not state else b1 * Tensor.wrap(state["exp_avg"]) + (1 - b1) * g
            v = (1 - b2) * g * g if not state else b2 * Tensor.wrap(state["exp_avg_sq"]) + (1 - b2) * g * g
            denom = (v + 1e-30).sqrt() / math.sqrt(1 - b2 ** t) + eps  # tiny shift keeps d sqrt finite at v = 0
            updated.append(p - (lr / (1 - b1 ** t)) * m / denom)
        return updated
