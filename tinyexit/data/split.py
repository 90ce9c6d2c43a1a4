"""A held-out validation split of a training set.

Budgeted (dynamic) evaluation tunes its exit thresholds on such a split by default; MSDNet holds
out 5,000 of CIFAR's 50,000 training images for this.
"""

from __future__ import annotations

import numpy as np


def train_val_split(n: int, val_size: int | float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into disjoint training and validation indices.

    Args:
        n: Number of samples.
        val_size: Validation samples: a count (int, ``0 <= val_size <= n``) or a fraction
            (float in ``[0, 1]``, rounded to the nearest count).
        seed: Seed of the random permutation (``np.random.default_rng(seed)``).

    Returns:
        ``(train_idx, val_idx)``, each sorted ascending (int64); together they cover
        ``range(n)`` exactly once.
    """
    if isinstance(val_size, (float, np.floating)):
        if not 0.0 <= val_size <= 1.0:
            raise ValueError(f"a fractional val_size must lie in [0, 1], got {val_size}")
        n_val = int(round(val_size * n))
    else:
        n_val = int(val_size)
        if not 0 <= n_val <= n:
            raise ValueError(f"val_size must lie in [0, {n}], got {val_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
