"""Losses: cross entropy with integer class targets."""

from __future__ import annotations

from ..autograd.tensor import Tensor
from ..backend import array_module
from .softmax import log_softmax

REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross entropy between logits ``input`` (N, C) and class indices ``target`` (N,).

    Args:
        input: unnormalised scores, shape (N, C).
        target: integer class indices in [0, C), shape (N,); a Tensor or an array.
        reduction: "mean" (average over N), "sum", or "none" (per-sample losses, shape (N,)).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: expected one of {REDUCTIONS}")
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects input of shape (N, C), got {input.shape}")
    t = target.data if isinstance(target, Tensor) else array_module(input.data).asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy expects integer class targets, got dtype {t.dtype}")
    n, c = input.shape
    if t.shape != (n,):
        raise ValueError(
            f"cross_entropy: target has shape {t.shape}, expected ({n},) to match input {input.shape}"
        )
    if n and (int(t.min()) < 0 or int(t.max()) >= c):
        raise ValueError(
            f"cross_entropy: target values must lie in [0, {c}), got range [{int(t.min())}, {int(t.max())}]"
        )
    xp = array_module(input.data)
    losses = -log_softmax(input, dim=1)[xp.arange(n), t]  # l_i = -log p_i[y_i]
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()
