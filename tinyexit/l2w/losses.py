"""The losses of L2W: the per-sample loss matrix, the weighted training loss (Eq. 5), the meta loss (Eq. 6)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd.tensor import Tensor
from ..ops import cross_entropy, stack


def loss_matrix(logits: Sequence[Tensor], labels) -> Tensor:
    """l_ik: cross entropy of exit k on sample i, shape (B, K)."""
    return stack([cross_entropy(z, labels, reduction="none") for z in logits], dim=1)


def weighted_loss(weights: Tensor, losses: Tensor) -> Tensor:
    """Eq. 5: L = Σ_k mean_i (w_ik · l_ik)."""
    return (weights * losses).mean(dim=0).sum()


def allocated_loss(logits: Sequence[Tensor], labels, subsets: Sequence[np.ndarray]) -> Tensor:
    """Eq. 6: Σ_k mean over exit k's allocated samples of l_k; empty subsets are skipped."""
    labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels)
    terms = [cross_entropy(z[idx], labels[idx]) for z, idx in zip(logits, subsets) if len(idx)]
    return sum(terms[1:], terms[0])
