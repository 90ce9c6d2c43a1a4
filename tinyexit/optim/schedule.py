"""A per-iteration cosine learning-rate schedule (``CosineAnnealingLR`` stepped every iteration)."""

from __future__ import annotations

import math

from .optimizer import Optimizer


class CosineAnnealingLR:
    """lr_t = eta_min + (lr_0 - eta_min) · (1 + cos(pi · t / T_max)) / 2, for every group.

    Call ``step()`` once per iteration (L2W's CIFAR runs anneal per iteration, without warm-up).
    Several optimisers may share one schedule (the official L2W code anneals the WPN's lr too).
    """

    def __init__(self, optimizers: Optimizer | list[Optimizer], T_max: int, eta_min: float = 0.0):
        if T_max <= 0:
            raise ValueError(f"T_max must be positive, got {T_max}")
        self.optimizers = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]
        self.T_max, self.eta_min, self.last_step = T_max, eta_min, 0
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]

    def factor(self, t: int) -> float:
        """(1 + cos(pi t / T_max)) / 2, held at 0 after T_max."""
        return 0.5 * (1 + math.cos(math.pi * min(t, self.T_max) / self.T_max))

    def step(self) -> None:
        """Advance one iteration and set every group's lr on the cosine curve."""
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        f = self.factor(self.last_step)
        for opt, bases in zip(self.optimizers, self.base_lrs):
            for g, base in zip(opt.param_groups, bases):
                g["lr"] = self.eta_min + (base - self.eta_min) * f

    def get_last_lr(self) -> list[float]:
        """The learning rate of every parameter group."""
        return [g["lr"] for opt in self.optimizers for g in opt.param_groups]

    def state_dict(self) -> dict:
        """The schedule's position, for checkpoints."""
        return {
            "T_max": self.T_max,
            "eta_min": self.eta_min,
            "last_step": self.last_step,
            "base_lrs": [list(b) for b in self.base_lrs],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the position saved by ``state_dict``."""
        self.T_max, self.eta_min, self.last_step = state["T_max"], state["eta_min"], state["last_step"]
        self.base_lrs = [list(b) for b in state["base_lrs"]]
        self._apply()
