"""What every multi-exit model shares: its input batch, its loss per exit, its confidence per exit.

The baseline and L2W trainers, ``predict_probs`` and ``early_exit_predict`` all prepare batches with
``as_batch``; both trainers take their per-exit losses from ``exit_losses``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import Module
from ..ops import cross_entropy, softmax, stack


def as_batch(model: Module, images, labels=None) -> tuple[Tensor, np.ndarray | None]:
    """Images as a tensor in the model's dtype on its device; labels as an int64 NumPy array, checked.

    Args:
        model: the model the batch is for (its first parameter gives the dtype and device).
        images: ``(N, ...)`` NumPy or CuPy array, cast to the model's dtype, or a Tensor, used as it is.
        labels: ``(N,)`` integer class indices, or None when there are none (inference).

    Returns:
        ``(images, labels)``; ``labels`` is None when none were given.
    """
    p = next(iter(model.parameters()))
    if not isinstance(images, Tensor):
        data = images if hasattr(images, "astype") else np.asarray(images)  # NumPy or CuPy
        images = Tensor(data.astype(p.dtype, copy=False)).to(p.device)
    if labels is None:
        return images, None
    labels = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if images.ndim < 2 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"images {images.shape} and labels {labels.shape} do not match: expected (N, ...) and (N,)"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    return images, labels


def exit_losses(logits: Sequence[Tensor], labels) -> Tensor:
    """l_ik: cross entropy of exit k on sample i, shape (B, K)."""
    return stack([cross_entropy(z, labels, reduction="none") for z in logits], dim=1)


def exit_confidences(logits: Sequence[Tensor]) -> Tensor:
    """Max softmax probability of each exit for each sample, (B, K), without gradient."""
    xp = array_module(logits[0].data)
    with no_grad():
        return Tensor.wrap(xp.stack([softmax(z, dim=1).data.max(axis=1) for z in logits], axis=1))
