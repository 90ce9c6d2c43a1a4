"""Meta-data allocation (Sec. 3.2): which meta samples each exit is judged on.

Exit k gets a share p_k ∝ q^k of the meta batch (k = 1..K). Exits 1..K−1 in turn take their
floor(n·p_k) most confident samples among those not taken yet; the last exit takes the rest.
This is the rule budgeted-batch evaluation tunes its thresholds with (``take_most_confident``):
easy (confident) samples leave early, hard ones go deep, in training as at test time.
"""

from __future__ import annotations

import numpy as np

from ..evaluate.budgeted import exit_shares, take_most_confident


def allocate(confidences: np.ndarray, q: float) -> list[np.ndarray]:
    """Split the samples among the exits by confidence.

    Args:
        confidences: (K, n) array, the max softmax probability of each exit for each sample.
        q: the budget; q < 1 sends more samples to early exits, q > 1 to late ones.

    Returns:
        K disjoint index arrays covering 0..n−1; array k lists exit k's samples, most confident first
        (the last exit's in increasing index order).
    """
    confidences = np.asarray(confidences)
    if confidences.ndim != 2:
        raise ValueError(f"allocate expects a (num_exits, n) confidence array, got shape {confidences.shape}")
    return take_most_confident(confidences, exit_shares(q, confidences.shape[0]))[0]
