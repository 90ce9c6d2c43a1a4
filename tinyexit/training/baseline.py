"""Conventional training of a multi-exit network (Eq. 3): the sum over exits of the mean losses."""

from __future__ import annotations

from .. import nn
from ..models import as_batch, exit_losses
from ..optim import Optimizer


class BaselineTrainer:
    """One SGD step per loaded batch on L = Σ_k mean_i l_ik (Eq. 3)."""

    def __init__(self, model: nn.Module, optimizer: Optimizer):
        self.model, self.optimizer = model, optimizer

    def step(self, images, labels) -> dict:
        """Train on one batch; returns ``loss``, ``exit_losses`` and ``correct`` (last exit)."""
        images, labels = as_batch(self.model, images, labels)
        self.model.train()
        logits = self.model(images)
        losses = exit_losses(logits, labels)
        loss = losses.mean(dim=0).sum()  # Eq. 3
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            "loss": loss.item(),
            "exit_losses": losses.numpy().mean(axis=0).tolist(),
            "correct": int((logits[-1].numpy().argmax(1) == labels).sum()),
        }
