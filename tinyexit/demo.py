"""``python -m tinyexit demo``: baseline and L2W side by side on a small multi-exit network.

It trains the ``msdnet4_tiny`` preset twice under the same schedule and seed, once with the
conventional objective (Eq. 3) and once with L2W (Algorithm 1), on a CIFAR-10 subset when a copy
is found under the data root (``TINYEXIT_DATA``), else on a small synthetic dataset (no download),
and prints the accuracy of every exit and a few points of the budgeted-batch curve.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from . import experiment
from .data import cifar_available
from .experiment import RunConfig


def run(epochs: int = 3, n_train: int = 2000, arch: str = "msdnet4_tiny", seed: int = 0) -> dict:
    """Train both methods and print the comparison; returns {method: metrics}."""
    data = "cifar10" if cifar_available("cifar10") else "synthetic"
    if data == "synthetic":
        print("no CIFAR-10 copy under the data root (set TINYEXIT_DATA to use one): using synthetic images")
    common = dict(arch=arch, data=data, epochs=epochs, train_subset=n_train, val_size=1000, test_subset=2000,
                  batch_size=64, lr=0.1, seed=seed, wpn_hidden=100, meta_lr=1e-3)
    print(f"tinyexit demo: {arch} on {n_train} {data} training images, {epochs} epochs, baseline vs L2W")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("baseline", "l2w"):
            start = time.perf_counter()
            print(f"--- {method}")
            r = experiment.train(RunConfig(**common, method=method), Path(tmp) / method, progress=False,
                                 log=lambda line: print("  " + line))
            results[method] = experiment.evaluate(r, log=lambda line: print("  " + line))
            print(f"  {time.perf_counter() - start:.0f} s")
    _print_comparison(results)
    return results


def _print_comparison(results: dict) -> None:
    k = len(results["baseline"]["anytime_accuracy"])
    print("\naccuracy per exit (%)   " + "  ".join(f"exit {i + 1:<2d}" for i in range(k)))
    for method, m in results.items():
        print(f"  {method:<21s} " + "  ".join(f"{a:7.1f}" for a in m["anytime_accuracy"]))
    print("\nbudgeted batch: accuracy (%) at expected Mul-Adds (M)")
    for q_index in (0, 9, 19, 38):  # q = 0.05, 0.5, 1.0, 1.95
        row = "  ".join(f"{method} {m['dynamic'][q_index]['accuracy']:5.1f} @ "
                        f"{m['dynamic'][q_index]['mul_adds'] / 1e6:.2f}" for method, m in results.items())
        print(f"  q={results['baseline']['dynamic'][q_index]['q']:<5} {row}")
    print("\nnote: L2W takes two SGD steps per loaded batch (one per half, as the official code), the baseline"
          "\none; on a schedule this short that alone helps L2W (docs/algorithm.md, 'Two halves per batch').")
