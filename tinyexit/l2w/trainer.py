"""One L2W training step (Algorithm 1 of the paper), readable top to bottom in ``_half_step``."""

from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd.engine import grad
from ..autograd.grad_mode import enable_grad, no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..models import as_batch, exit_confidences, exit_losses
from ..optim import Optimizer
from .allocation import allocate
from .losses import allocated_loss, weighted_loss
from .wpn import WeightPredictionNet

WEIGHTINGS = ("wpn", "frozen", "fixed_increasing", "fixed_decreasing", "selection")
META_OBJECTIVES = ("allocated", "vanilla")


class L2WTrainer:
    """Trains a multi-exit model with sample weights predicted by a meta-learned WPN.

    Args:
        model: any Module whose forward returns a list of K exit logits.
        wpn: the WeightPredictionNet (ignored for the fixed and selection ablations).
        optimizer: the backbone optimiser (SGD in the paper); its ``virtual_step`` gives θ̂.
        wpn_optimizer: the WPN optimiser (Adam, lr 1e-4, weight decay 1e-4 in the paper).
        q: budget of the meta-data allocation (0.75 on CIFAR).
        meta_interval: run the meta step on the batches of an epoch whose index (from 0) is a
            multiple of this (1 on CIFAR, 100 on ImageNet); ``start_epoch`` restarts the count,
            as the official code counts batches within the epoch.
        weighting: "wpn" (L2W), or an ablation of the paper: "frozen" (a WPN never updated),
            "fixed_increasing"/"fixed_decreasing" (weights 0.6..1.4 linear in the exit index, or the
            reverse), "selection" (each exit trained only on its allocated training samples).
        meta_objective: "allocated" (Eq. 6) or "vanilla" (every exit on the whole meta half).
    """

    def __init__(
        self,
        model: nn.Module,
        wpn: WeightPredictionNet | None,
        optimizer: Optimizer,
        wpn_optimizer: Optimizer | None,
        q: float = 0.75,
        meta_interval: int = 1,
        weighting: str = "wpn",
        meta_objective: str = "allocated",
    ):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}: expected one of {WEIGHTINGS}")
        if meta_objective not in META_OBJECTIVES:
            raise ValueError(f"unknown meta objective {meta_objective!r}: expected one of {META_OBJECTIVES}")
        if weighting in ("wpn", "frozen") and wpn is None:
            raise ValueError(f"weighting={weighting!r} needs a WPN")
        if weighting == "wpn" and wpn_optimizer is None:
            raise ValueError("weighting='wpn' needs a wpn_optimizer")
        if not hasattr(optimizer, "virtual_step"):
            raise TypeError(f"{type(optimizer).__name__} has no virtual_step: the pseudo-update needs one")
        if meta_interval < 1:
            raise ValueError(f"meta_interval must be at least 1, got {meta_interval}")
        self.model, self.wpn, self.optimizer, self.wpn_optimizer = model, wpn, optimizer, wpn_optimizer
        self.q, self.meta_interval = q, meta_interval
        self.weighting, self.meta_objective = weighting, meta_objective
        self.iteration = 0

    def start_epoch(self) -> None:
        """Restart the batch count of ``meta_interval``: the first batch of an epoch has a meta step."""
        self.iteration = 0

    def step(self, images, labels) -> dict:
        """Train on one loaded batch: two half-steps, (train, meta) = (1st, 2nd) half then (2nd, 1st).

        Returns:
            dict with ``loss`` (mean real weighted loss), ``meta_loss`` (mean meta loss, or None when
            no meta step ran), ``exit_losses`` (mean loss per exit), ``losses`` and ``weights`` (the
            (B, K) loss matrix and the weights applied, as NumPy), ``allocation`` (meta samples
            per exit) and ``correct`` (training samples the last exit got right).
        """
        images, labels = as_batch(self.model, images, labels)
        self.model.train()
        n = len(labels)
        if n < 2:
            raise ValueError(
                f"an L2W step splits the batch in two halves and needs at least 2 samples, got {n}"
            )
        first, second = np.arange(n // 2), np.arange(n // 2, n)
        meta_step = self.weighting == "wpn" and self.iteration % self.meta_interval == 0
        parts = [
            self._half_step(images[tr], labels[tr], images[me], labels[me], meta_step)
            for tr, me in ((first, second), (second, first))
        ]
        self.iteration += 1
        meta = [p["meta_loss"] for p in parts if p["meta_loss"] is not None]
        return {
            "loss": float(np.mean([p["loss"] for p in parts])),
            "meta_loss": float(np.mean(meta)) if meta else None,
            "exit_losses": np.concatenate([p["losses"] for p in parts]).mean(axis=0).tolist(),
            "losses": np.concatenate([p["losses"] for p in parts]),
            "weights": np.concatenate([p["weights"] for p in parts]),
            "allocation": np.sum([p["allocation"] for p in parts], axis=0).tolist(),
            "correct": sum(p["correct"] for p in parts),
        }

    def _half_step(self, x_tr: Tensor, y_tr, x_me: Tensor, y_me, meta_step: bool) -> dict:
        """Algorithm 1 on one (train half, meta half) pair."""
        # Forward the train half with θ. Its graph serves the pseudo-update and the real update
        # (θ does not change in between, so a second forward would give the same outputs).
        logits = self.model(x_tr)
        losses = exit_losses(logits, y_tr)  # l_ik, (B, K)
        conf = exit_confidences(logits)

        meta_loss, allocation = None, [0] * len(logits)
        if meta_step:
            meta_loss, allocation = self._wpn_step(losses, conf, x_me, y_me)

        # Eq. 9: θ ← SGD step on the loss weighted by the (updated) WPN, without gradient to φ.
        with no_grad():
            w = self._weights(losses, conf)
        if self.weighting == "selection":
            real_loss = allocated_loss(logits, y_tr, allocate(conf.numpy().T, self.q))
        else:
            real_loss = weighted_loss(w, losses)
        self.optimizer.zero_grad()
        real_loss.backward()
        self.optimizer.step()
        return {
            "loss": real_loss.item(),
            "meta_loss": meta_loss,
            "losses": losses.numpy().copy(),
            "weights": w.numpy().copy(),
            "allocation": allocation,
            "correct": int((logits[-1].numpy().argmax(1) == y_tr).sum()),
        }

    def _wpn_step(self, losses: Tensor, conf: Tensor, x_me: Tensor, y_me) -> tuple[float, list[int]]:
        """Eq. 8: φ ← Adam step on ∇φ L_meta(θ̂(φ)); returns the meta loss and the allocation sizes.

        The meta graph (meta forward, pseudo-update, second-order terms) dies when this returns,
        so the real update's backward does not hold it.
        """
        meta_loss, subsets = self.meta_loss(losses, conf, x_me, y_me)
        wpn_params = list(self.wpn.parameters())
        self.wpn_optimizer.zero_grad()
        for p, g in zip(wpn_params, grad(meta_loss, wpn_params)):
            p.grad = g
        self.wpn_optimizer.step()
        return meta_loss.item(), [len(s) for s in subsets]

    def meta_loss(self, losses: Tensor, conf: Tensor, x_me: Tensor, y_me) -> tuple[Tensor, list]:
        """L_meta(θ̂(φ)) as a tensor differentiable in the WPN parameters φ, and the allocation used.

        ``losses`` is the (B, K) loss matrix of the train half under the current θ (with its graph).
        """
        with enable_grad():  # the pseudo-update differentiates, even when called under no_grad
            params = list(self.model.parameters())
            names = [name for name, _ in self.model.named_parameters()]
            # Eq. 5: the weighted training loss, keeping its dependence on φ.
            w = self.wpn(losses, conf)
            train_loss = weighted_loss(w, losses)
            # Eq. 7: θ̂(φ) = the step the backbone optimiser would take, differentiable in φ.
            grads = grad(train_loss, params, create_graph=True)
            theta_hat = self.optimizer.virtual_step(params, grads)
            # Eq. 6: the meta loss of θ̂ on the meta half, each exit on the samples allocated to it.
            # BN uses batch statistics; copies of the running statistics absorb this pass's update.
            scratch = {name: Tensor(b.data.copy()) for name, b in self.model.named_buffers()}
            meta_logits = nn.functional_call(self.model, {**dict(zip(names, theta_hat)), **scratch}, x_me)
            subsets = self._meta_subsets(meta_logits)
            return allocated_loss(meta_logits, y_me, subsets), subsets

    def _meta_subsets(self, meta_logits: list[Tensor]) -> list[np.ndarray]:
        n = meta_logits[0].shape[0]
        if self.meta_objective == "vanilla":
            return [np.arange(n)] * len(meta_logits)
        return allocate(exit_confidences(meta_logits).numpy().T, self.q)

    def _weights(self, losses: Tensor, conf: Tensor) -> Tensor:
        """The weights of the real update for the chosen weighting."""
        k = losses.shape[1]
        if self.weighting in ("wpn", "frozen"):
            return self.wpn(losses, conf).detach()
        if self.weighting == "selection":
            ramp = np.ones(k)
        else:
            ramp = np.linspace(0.6, 1.4, k) if k > 1 else np.ones(1)  # the paper's fixed-weight ablation
            ramp = ramp[::-1] if self.weighting == "fixed_decreasing" else ramp
        xp = array_module(losses.data)
        return Tensor.wrap(xp.broadcast_to(xp.asarray(ramp, dtype=losses.dtype), losses.shape))
