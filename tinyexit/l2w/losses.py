"""The losses of L2W: the weighted training loss (Eq. 5) and the meta loss (Eq. 6).

The per-sample loss matrix l_ik they weight is ``tinyexit.models.exit_losses``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd.tensor import Tensor
from ..ops import cross_entropy


def weighted_loss(weights: Tensor, losses: Tensor) -> Tensor:
    """Eq. 5: L = Σ_k mean_i (w_ik · l_ik)."""
    return (weights * losses).mean(dim=0).sum()


def allocated_loss(logits: Sequence[Tensor], labels, subsets: Sequence[np.ndarray]) -> Tensor:
    """Eq. 6: Σ_k mean over exit k's allocated samples of l_k; empty subsets are skipped."""
    labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels)
    terms = [cross_entropy(z[idx], labels[idx]) for z, idx in zip(logits, subsets) if len(idx)]
    return sum(terms[1:], terms[0])
