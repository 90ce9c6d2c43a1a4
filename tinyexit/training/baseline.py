"""Conventional training of a multi-exit network (Eq. 3): the sum over exits of the mean losses."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd.tensor import Tensor
from ..l2w.losses import loss_matrix
from ..optim import Optimizer


def as_batch(model: nn.Module, images, labels) -> tuple[Tensor, np.ndarray]:
    """Images as a tensor on the model's device and dtype, labels as an int64 NumPy array; checked."""
    p = next(iter(model.parameters()))
    if not isinstance(images, Tensor):
        images = Tensor(np.asarray(images).astype(p.dtype, copy=False)).to(p.device)
    labels = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if images.ndim < 2 or labels.shape != (images.shape[0],):
        raise ValueError(f"images {images.shape} and labels {labels.shape} do not match: expected (N, ...) and (N,)")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    return images, labels


class BaselineTrainer:
    """One SGD step per loaded batch on L = Σ_k mean_i l_ik (Eq. 3)."""

    def __init__(self, model: nn.Module, optimizer: Optimizer):
        self.model, self.optimizer = model, optimizer

    def step(self, images, labels) -> dict:
        """Train on one batch; returns ``loss``, ``exit_losses`` and ``correct`` (last exit)."""
        images, labels = as_batch(self.model, images, labels)
        self.model.train()
        logits = self.model(images)
        losses = loss_matrix(logits, labels)
        loss = losses.mean(dim=0).sum()  # Eq. 3
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "exit_losses": losses.numpy().mean(axis=0).tolist(),
                "correct": int((logits[-1].numpy().argmax(1) == labels).sum())}
