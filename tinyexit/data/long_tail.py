"""Long-tailed subsets of a balanced dataset (CIFAR-10-LT, CIFAR-100-LT).

Class ``c`` (0-based, ``C`` classes) keeps ``N_max * mu**c`` images with
``mu = (1 / imbalance_factor) ** (1 / (C - 1))``: the first class keeps ``N_max``, the last
``N_max / imbalance_factor``. The count is truncated to an integer as in the public code of
LDAM-DRW and Meta-Weight-Net, so the usual subset sizes come out (12,406 images for CIFAR-10 with
factor 100, 10,847 for CIFAR-100). The paper's long-tailed experiments use CIFAR-100 and cite
Cui et al. (2019) for the construction; which code made its split is not stated.
"""

from __future__ import annotations

import numpy as np


def long_tailed_counts(
    num_per_class: int, num_classes: int, imbalance_factor: float, rounding: str = "floor"
) -> list[int]:
    """Return how many images each class keeps.

    Args:
        num_per_class: ``N_max``, the images of the largest class.
        num_classes: ``C``.
        imbalance_factor: Largest over smallest class size, at least 1 (e.g. 200, 100, 50, 20).
        rounding: ``"floor"`` (the reference code's ``int()``) or ``"round"`` (nearest integer).

    Returns:
        ``C`` counts, non-increasing, the first equal to ``num_per_class``.
    """
    if imbalance_factor < 1:
        raise ValueError(f"imbalance_factor must be >= 1 (largest / smallest), got {imbalance_factor}")
    if rounding not in ("floor", "round"):
        raise ValueError(f"rounding must be 'floor' or 'round', got {rounding!r}")
    if num_classes == 1:
        return [num_per_class]
    to_int = int if rounding == "floor" else round
    ratio = 1.0 / imbalance_factor
    return [to_int(num_per_class * ratio ** (c / (num_classes - 1.0))) for c in range(num_classes)]


def long_tailed_indices(
    labels: np.ndarray,
    imbalance_factor: float,
    seed: int = 0,
    num_classes: int | None = None,
    rounding: str = "floor",
) -> np.ndarray:
    """Choose the images of a long-tailed subset.

    Each class's images are shuffled with ``np.random.RandomState(seed)``, class after class in
    label order, and the first ``count`` kept: with the official CIFAR files this selects the
    same images as LDAM-DRW's ``IMBALANCECIFAR10/100(rand_number=seed)``.

    Args:
        labels: Integer class labels of the full dataset, shape ``(N,)``.
        imbalance_factor: Largest over smallest class size, at least 1.
        seed: Seed of the selection.
        num_classes: ``C``; default ``labels.max() + 1``.
        rounding: ``"floor"`` (default, as the reference code) or ``"round"``.

    Returns:
        The kept indices into ``labels``, sorted ascending (int64).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {labels.shape}, dtype {labels.dtype}"
        )
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    per_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    n_max = max(len(idx) for idx in per_class)
    counts = long_tailed_counts(n_max, num_classes, imbalance_factor, rounding)
    rng = np.random.RandomState(seed)
    kept = []
    for idx, count in zip(per_class, counts):
        rng.shuffle(idx)
        kept.append(idx[:count])
    return np.sort(np.concatenate(kept)).astype(np.int64)
