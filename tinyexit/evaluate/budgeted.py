"""Anytime and budgeted-batch (dynamic) evaluation of a multi-exit network, from saved outputs.

Everything here works on NumPy arrays of shape ``(K, N, classes)``: the softmax outputs of the K
exits, shallowest first, on N samples. Budgeted batch classification follows MSDNet's
``dynamic_eval_find_threshold`` / ``dynamic_eval_with_threshold``:

1. For a budget parameter ``q``, exit ``k`` (``k = 1..K``) is meant to take a share
   ``p_k = q**k / sum_j q**j`` of the samples.
2. On a held-out set, for ``k < K``: ``n_k = floor(N * p_k)``; walk exit k's samples by
   descending confidence (max softmax probability), skipping those taken by earlier exits; the
   ``n_k``-th one's confidence is the threshold ``T_k`` (``+inf`` if there is no ``n_k``-th one,
   MSDNet's 1e8: then nobody exits at k). Every sample with confidence ``>= T_k`` is then taken.
   ``T_K = -inf``. L2W allocates its meta samples with the same rule (``take_most_confident``).
3. On the test set a sample exits at the first k whose confidence is ``>= T_k``; report the
   accuracy and the expected cost ``sum_k (share exiting at k) * mul_adds[k]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_PROB_TOL = 1e-3


def default_qs() -> np.ndarray:
    """The 39 budget parameters ``0.05, 0.10, ..., 1.95`` of the MSDNet/L2W plots."""
    return np.round(np.arange(1, 40) * 0.05, 2)


def exit_shares(q: float, num_exits: int) -> np.ndarray:
    """Share of samples each exit should take: ``p_k`` proportional to ``q**k``, ``k = 1..K``.

    Args:
        q: Budget parameter, ``> 0``; ``q < 1`` favours early exits, ``q = 1`` is uniform.
        num_exits: ``K``.

    Returns:
        float64 ``(K,)`` summing to 1.
    """
    if not q > 0 or not math.isfinite(q):
        raise ValueError(f"the budget q must be a positive finite number, got {q}")
    if num_exits < 1:
        raise ValueError(f"num_exits must be at least 1, got {num_exits}")
    logits = np.arange(1, num_exits + 1) * math.log(q)
    shares = np.exp(logits - logits.max())
    return shares / shares.sum()


def _check_probs(probs: np.ndarray, name: str) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3:
        raise ValueError(f"{name} must have shape (K exits, N samples, classes), got {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if probs.size and (
        probs.min() < -_PROB_TOL
        or probs.max() > 1 + _PROB_TOL
        or np.abs(probs.sum(axis=2) - 1).max() > _PROB_TOL
    ):
        raise ValueError(
            f"{name} must hold probabilities in [0, 1] that sum to 1 over classes (found values "
            f"from {probs.min():.4g} to {probs.max():.4g}); if these are logits, apply softmax first"
        )
    return probs


def _check_targets(targets: np.ndarray, n: int, num_classes: int, name: str) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the outputs, got {targets.shape}")
    if n and (targets.dtype.kind not in "iu" or targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"{name} must be integer class indices in [0, {num_classes - 1}]")
    return targets


def find_thresholds(val_probs: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Confidence thresholds that make each exit take its share of the held-out samples.

    Args:
        val_probs: Softmax outputs on the held-out set, ``(K, N, classes)``.
        shares: ``(K,)`` target shares summing to 1, e.g. ``exit_shares(q, K)``.

    Returns:
        float64 ``(K,)`` thresholds; ``+inf`` for an exit that takes nobody, ``-inf`` last.
    """
    probs = _check_probs(val_probs, "val_probs")
    num_exits, n, _ = probs.shape
    shares = np.asarray(shares, dtype=np.float64)
    if shares.shape != (num_exits,):
        raise ValueError(f"shares must have one value per exit ({num_exits}), got shape {shares.shape}")
    if shares.min() < 0 or abs(shares.sum() - 1) > 1e-6:
        raise ValueError(f"shares must be non-negative and sum to 1, got {shares.tolist()}")
    return take_most_confident(probs.max(axis=2), shares, ties_leave=True)[1]


def take_most_confident(
    confidence: np.ndarray, shares: Sequence[float], ties_leave: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """The greedy rule of budgeted-batch evaluation and of L2W's meta-data allocation.

    Exits 1..K−1 in turn take their ``floor(n * p_k)`` most confident samples among those no earlier
    exit took (1e-9 keeps a product that is an integer on paper from rounding down); the last exit
    takes the rest. Exit k's threshold ``T_k`` is the confidence of the last sample it takes, ``+inf``
    when its quota is 0 or more than the samples left (then it takes nobody).

    Args:
        confidence: ``(K, n)`` max softmax probability of each exit for each sample.
        shares: ``(K,)`` shares ``p_k``, e.g. ``exit_shares(q, K)``.
        ties_leave: mark as taken every free sample whose confidence reaches ``T_k`` (test time,
            where only the thresholds are kept and ties with ``T_k`` exit too), instead of exactly the
            quota (training-time allocation).

    Returns:
        K index arrays (exit k's samples; most confident first when ``ties_leave`` is False, else in
        index order; the last exit's in index order) and K thresholds, the last ``-inf``.
    """
    num_exits, n = confidence.shape
    free = np.ones(n, dtype=bool)
    subsets, thresholds = [], np.full(num_exits, np.inf)
    for k in range(num_exits - 1):
        quota = math.floor(n * shares[k] + 1e-9)
        order = np.argsort(-confidence[k], kind="stable")
        chosen = order[free[order]][:quota]
        if 1 <= quota == chosen.size:
            thresholds[k] = confidence[k][chosen[-1]]
        if ties_leave:  # with T_k = +inf nobody leaves
            chosen = np.flatnonzero(free & (confidence[k] >= thresholds[k]))
        free[chosen] = False
        subsets.append(chosen)
    subsets.append(np.flatnonzero(free))
    thresholds[-1] = -np.inf
    return subsets, thresholds


def confident_enough(probs: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """Whether each sample may leave at its exit: its confidence (max softmax probability) ``>=`` the threshold.

    The one exit rule shared by ``assign_exits`` (on saved outputs) and ``early_exit_predict``
    (while the network runs).

    Args:
        probs: Softmax outputs ``(..., N, classes)``.
        thresholds: A threshold, or an array that broadcasts against ``(..., N)``.

    Returns:
        bool ``(..., N)``.
    """
    return np.asarray(probs).max(axis=-1) >= thresholds


def assign_exits(probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Exit index (0-based) of each sample: the first k whose confidence is ``>= thresholds[k]``.

    The last exit takes every sample that no earlier exit took, whatever its threshold.

    Args:
        probs: Softmax outputs ``(K, N, classes)``.
        thresholds: ``(K,)``, as from ``find_thresholds`` (the last is ``-inf``).

    Returns:
        int64 ``(N,)``.
    """
    probs = np.asarray(probs)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if probs.ndim != 3 or thresholds.shape != (probs.shape[0],):
        raise ValueError(
            f"need probs (K, N, classes) and K thresholds, got {probs.shape} and {thresholds.shape}"
        )
    exits_here = confident_enough(probs, thresholds[:, None])
    exits_here[-1] = True
    return exits_here.argmax(axis=0).astype(np.int64)


def dynamic_evaluate(
    val_probs: np.ndarray,
    val_targets: np.ndarray,
    test_probs: np.ndarray,
    test_targets: np.ndarray,
    mul_adds: Sequence[float],
    qs: Sequence[float] | None = None,
) -> list[dict]:
    """Budgeted batch classification: accuracy against expected cost, one point per ``q``.

    Args:
        val_probs: Softmax outputs on the held-out set the thresholds are tuned on, ``(K, N, C)``.
        val_targets: Its labels, ``(N,)``; only checked, the thresholds do not use them.
        test_probs: Softmax outputs on the test set, ``(K, M, C)``.
        test_targets: Its labels, ``(M,)``.
        mul_adds: Cumulative cost of reaching each exit, ``(K,)`` (any unit; the result uses it).
        qs: Budget parameters; default ``default_qs()``, 0.05 to 1.95 in steps of 0.05.

    Returns:
        One dict per q with ``q``, ``accuracy`` (percent on the test set), ``mul_adds`` (expected
        per test sample), ``exit_fractions`` (K floats, share of test samples leaving at each
        exit) and ``thresholds`` (K floats, possibly ``inf``/``-inf``).
    """
    val = _check_probs(val_probs, "val_probs")
    test = _check_probs(test_probs, "test_probs")
    if val.shape[0] != test.shape[0] or val.shape[2] != test.shape[2]:
        raise ValueError(
            f"val_probs and test_probs must have the same number of exits and classes, got "
            f"{val.shape} and {test.shape}"
        )
    num_exits, _, num_classes = test.shape
    _check_targets(val_targets, val.shape[1], num_classes, "val_targets")
    targets = _check_targets(test_targets, test.shape[1], num_classes, "test_targets")
    costs = np.asarray(mul_adds, dtype=np.float64)
    if costs.shape != (num_exits,) or not np.isfinite(costs).all() or (costs < 0).any():
        raise ValueError(
            f"mul_adds must hold {num_exits} non-negative numbers, got {np.asarray(mul_adds).tolist()}"
        )
    qs = default_qs() if qs is None else qs
    n = test.shape[1]
    correct = test.argmax(axis=2) == targets[None, :]
    results = []
    for q in qs:
        thresholds = find_thresholds(val, exit_shares(float(q), num_exits))
        exits = assign_exits(test, thresholds)
        fractions = np.bincount(exits, minlength=num_exits) / max(n, 1)
        hits = correct[exits, np.arange(n)]
        results.append(
            {
                "q": float(q),
                "accuracy": 100.0 * float(hits.mean()) if n else float("nan"),
                "mul_adds": float(fractions @ costs),
                "exit_fractions": fractions.tolist(),
                "thresholds": thresholds.tolist(),
            }
        )
    return results


def anytime_accuracy(probs_or_logits: np.ndarray, targets: np.ndarray) -> list[float]:
    """Top-1 accuracy (percent) of every exit on the whole set.

    Args:
        probs_or_logits: ``(K, N, classes)``; softmax outputs or logits (argmax is the same).
        targets: ``(N,)`` class indices.

    Returns:
        K accuracies in percent, shallowest exit first.
    """
    outputs = np.asarray(probs_or_logits)
    if outputs.ndim != 3:
        raise ValueError(f"outputs must have shape (K exits, N samples, classes), got {outputs.shape}")
    targets = _check_targets(targets, outputs.shape[1], outputs.shape[2], "targets")
    if outputs.shape[1] == 0:
        raise ValueError("cannot compute accuracy on zero samples")
    return (100.0 * (outputs.argmax(axis=2) == targets[None, :]).mean(axis=1)).tolist()
