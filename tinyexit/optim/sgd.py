"""Stochastic gradient descent with momentum, weight decay and Nesterov, exactly as ``torch.optim.SGD``."""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
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
        """One step, as PyTorch: d = grad + wd·p; buf = mom·buf + d; p -= lr·buf (lr·(d + mom·buf) if Nesterov)."""
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

    def virtual_step(self, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        """The parameters ``step`` would produce, as differentiable tensors (nothing is changed).

        θ̂ = θ - lr·(momentum·buf + g + wd·θ): the L2W pseudo-update (Eq. 7), using the current lr,
        the real momentum buffers and weight decay. ``grads`` may carry a graph (``create_graph=True``).
        """
        by_id = {id(p): (group, p) for group in self.param_groups for p in group["params"]}
        updated = []
        for p, g in zip(params, grads):
            if id(p) not in by_id:
                raise ValueError("virtual_step got a parameter this optimizer does not hold")
            group = by_id[id(p)][0]
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            d = g + wd * p if wd else g
            buf = self.state.get(p, {}).get("momentum_buffer")
            if mom:
                new_buf = d if buf is None else d + mom * Tensor.wrap(buf)
                d = d + mom * new_buf if group["nesterov"] else new_buf
            updated.append(p - lr * d)
        return updated
