"""Figures with matplotlib: budgeted-batch curves, accuracy per exit, WPN weight against loss (Fig. 8).

Each function returns the Figure and, given ``path``, also saves it as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def _finish(fig, path: str | Path | None):
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def close(*figures) -> None:
    """Release saved figures (pyplot keeps every figure open until closed)."""
    for fig in figures:
        plt.close(fig)


def plot_dynamic(
    curves: Mapping[str, Sequence[dict]],
    path=None,
    title: str = "Budgeted batch classification",
    anytime: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
):
    """Accuracy against expected Mul-Adds, one line per method.

    Args:
        curves: label -> the list returned by ``dynamic_evaluate`` (dicts with ``mul_adds``, ``accuracy``).
        anytime: optional label -> (Mul-Adds per exit, accuracy per exit), drawn as markers.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, points in curves.items():
        ax.plot([p["mul_adds"] / 1e6 for p in points], [p["accuracy"] for p in points], label=label)
    for label, (mul_adds, acc) in (anytime or {}).items():
        ax.plot(np.asarray(mul_adds) / 1e6, acc, "o", label=f"{label}, each exit")
    ax.set_xlabel("average Mul-Adds per image (M)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _finish(fig, path)


def plot_exit_accuracy(
    accuracies: Mapping[str, Sequence[float]],
    path=None,
    title: str = "Accuracy of each exit",
    errors: Mapping[str, Sequence[float]] | None = None,
):
    """Grouped bars: the top-1 accuracy of every exit, one colour per method.

    Args:
        accuracies: label -> accuracy of each exit (percent).
        errors: optional label -> half-length of each exit's error bar (e.g. the std over seeds).
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    labels = list(accuracies)
    k = len(next(iter(accuracies.values())))
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        yerr = None if errors is None else errors[label]
        ax.bar(
            np.arange(1, k + 1) + (i - (len(labels) - 1) / 2) * width,
            accuracies[label],
            width,
            label=label,
            yerr=yerr,
            capsize=3,
        )
    ax.set_xticks(np.arange(1, k + 1))
    ax.set_xlabel("exit")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.legend()
    return _finish(fig, path)


def plot_mean_dynamic(
    budgets: Sequence[float],
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path=None,
    title: str = "Budgeted batch classification, mean over seeds",
    anytime: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]] | None = None,
):
    """Mean accuracy against expected Mul-Adds with a band of one standard deviation, one line per method.

    Args:
        budgets: the common grid of expected Mul-Adds the curves were interpolated at.
        curves: label -> (mean accuracy, std) at each budget.
        anytime: optional label -> (Mul-Adds per exit, mean accuracy per exit, std), drawn as error bars.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    x = np.asarray(budgets, dtype=float) / 1e6
    colours = {}
    for label, (mean, std) in curves.items():
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        (line,) = ax.plot(x, mean, label=label)
        colours[label] = line.get_color()
        ax.fill_between(x, mean - std, mean + std, color=colours[label], alpha=0.25, linewidth=0)
    for label, (mul_adds, mean, std) in (anytime or {}).items():
        ax.errorbar(
            np.asarray(mul_adds) / 1e6,
            mean,
            yerr=std,
            fmt="o",
            capsize=3,
            color=colours.get(label),
            label=f"{label}, each exit",
        )
    ax.set_xlabel("average Mul-Adds per image (M)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_weight_vs_loss(
    losses: np.ndarray, weights: np.ndarray, path=None, title: str = "WPN weight against loss (paper Fig. 8)"
):
    """Scatter of the predicted weight against the sample's loss, one panel per exit.

    Args:
        losses, weights: (N, K) arrays, as returned by ``L2WTrainer.step`` (``losses``, ``weights``).
    """
    losses, weights = np.asarray(losses), np.asarray(weights)
    if losses.shape != weights.shape or losses.ndim != 2:
        raise ValueError(f"losses {losses.shape} and weights {weights.shape} must be equal (N, K) arrays")
    k = losses.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.8), sharey=True, squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.scatter(losses[:, j], weights[:, j], s=4, alpha=0.4)
        ax.set_title(f"exit {j + 1}")
        ax.set_xlabel("loss")
    axes[0][0].set_ylabel("weight")
    fig.suptitle(title)
    return _finish(fig, path)
