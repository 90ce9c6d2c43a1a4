"""Comparing budgeted-batch curves over seeds and methods: read every curve at the same expected
Mul-Adds, summarise seeds by mean and standard deviation, and difference two methods seed by seed.

Standard deviations over seeds are population standard deviations (``numpy.std``, ``ddof=0``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: ``ddof`` of every standard deviation over seeds.
STD_DDOF = 0


def interpolate_curve(curve: Sequence[Mapping], budgets: Sequence[float]) -> np.ndarray:
    """Accuracy of a budgeted-batch curve at given expected Mul-Adds, by linear interpolation.

    Args:
        curve: points with ``mul_adds`` and ``accuracy``, as ``dynamic_evaluate`` returns them, in any
            order; points of equal cost are averaged.
        budgets: the expected Mul-Adds to read the curve at.

    Returns:
        float64 accuracies, one per budget; NaN outside the curve's range (no extrapolation).
    """
    if not curve:
        raise ValueError("cannot interpolate an empty curve")
    cost = np.array([p["mul_adds"] for p in curve], dtype=np.float64)
    accuracy = np.array([p["accuracy"] for p in curve], dtype=np.float64)
    xs, group = np.unique(cost, return_inverse=True)
    ys = np.bincount(group, weights=accuracy) / np.bincount(group)
    budgets = np.asarray(budgets, dtype=np.float64)
    values = np.interp(budgets, xs, ys)
    values[(budgets < xs[0]) | (budgets > xs[-1])] = np.nan
    return values


def common_budgets(curves: Iterable[Sequence[Mapping]], num: int = 20) -> np.ndarray:
    """``num`` evenly spaced expected Mul-Adds that every curve covers (the overlap of their ranges).

    Returns:
        The grid, ascending; one point if the ranges meet in one cost, empty if they do not overlap.
    """
    ranges = [(min(p["mul_adds"] for p in c), max(p["mul_adds"] for p in c)) for c in curves]
    if not ranges:
        raise ValueError("no curves given")
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if high < low:
        return np.empty(0)
    return np.linspace(low, high, num) if high > low else np.array([low])


def mean_std(per_run: Sequence) -> dict:
    """Mean and standard deviation over runs (the first axis), with the per-run values.

    Returns:
        ``{"mean", "std", "per_run"}`` as plain floats or lists (JSON-ready).
    """
    values = np.asarray(per_run, dtype=np.float64)
    return {
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0, ddof=STD_DDOF).tolist(),
        "per_run": values.tolist(),
    }


def paired_differences(a_per_run: Sequence, b_per_run: Sequence) -> np.ndarray:
    """Method a − method b for each seed, averaged over the budgets where both are defined.

    A seed fixes the initial weights and the batch order of every method, so each pair differs
    only in the method.

    Args:
        a_per_run, b_per_run: ``(seeds, budgets)`` accuracies of the two methods, the same seeds in
            the same order (as ``mean_std(...)["per_run"]`` of ``interpolate_curve`` results).

    Returns:
        float64 ``(seeds,)``.
    """
    a, b = np.asarray(a_per_run, dtype=np.float64), np.asarray(b_per_run, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (seeds, budgets) arrays of one shape, got {a.shape} and {b.shape}")
    return np.nanmean(a - b, axis=1)
