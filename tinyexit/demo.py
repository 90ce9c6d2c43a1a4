"""``python -m tinyexit demo``: baseline and L2W side by side on a small multi-exit network.

It trains the ``msdnet4_tiny`` preset twice under the same schedule and seed, once with the
conventional objective (Eq. 3) and once with L2W (Algorithm 1), on a CIFAR-10 subset when a copy
is found under the data root (``TINYEXIT_DATA``), else on the embedded synthetic dataset (no
download): ten shapes whose outlines only the deeper exits resolve well, with a per-image class
tint and contrast that make some images easy at any depth, so that late exits are clearly better
than early ones and the budgeted-batch curve rises with Mul-Adds. It prints the accuracy of every
exit, a few points of the budgeted-batch curve, and the difference between the two methods at
every exit with its standard error over the test images.

On a CPU with two cores or more, L2W trains in a second process while the baseline trains in this
one (each with half of the cores): the two runs are independent and seeded alike, so this changes
nothing but the wall time.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numba
import numpy as np

from . import experiment, models
from .data import cifar_available
from .evaluate import anytime_accuracy, dynamic_evaluate, predict_probs
from .experiment import RunConfig


def run(
    epochs: int = 2,
    n_train: int = 1280,
    arch: str = "msdnet4_tiny",
    seed: int = 0,
    device: str = "cpu",
    n_test: int = 1000,
    parallel: bool = True,
) -> dict:
    """Train both methods on ``device`` and print the comparison; returns {method: metrics}.

    ``n_test`` test images are evaluated, and half as many held-out ones set the exit thresholds.
    With ``parallel`` on a CPU of two cores or more, L2W trains in a second process meanwhile.
    """
    data = "cifar10" if cifar_available("cifar10") else "synthetic"
    if data == "synthetic":
        print("no CIFAR-10 copy under the data root (set TINYEXIT_DATA to use one): using synthetic images")
    common = dict(
        arch=arch,
        data=data,
        epochs=epochs,
        train_subset=n_train,
        val_size=max(n_test // 2, 1),
        test_subset=n_test,
        batch_size=32,
        augment=data == "cifar10",  # the synthetic shapes are mirror-symmetric and already placed at random
        lr=0.1,
        half_step_lr="scaled",  # L2W's halves of 16 step at 0.05: the official code's lr per sample
        init="official",
        seed=seed,
        wpn_hidden=100,
        meta_lr=1e-3,
        device=device,
    )
    for method in ("baseline", "l2w"):  # bad settings fail here, before any process starts
        RunConfig(**common, method=method).validate()
    print(f"tinyexit demo: {arch} on {n_train} {data} training images, {epochs} epochs, baseline vs L2W")
    cores = os.cpu_count() or 1
    in_background = parallel and device == "cpu" and cores >= 2
    results = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        l2w_job = None
        if in_background:
            pool = stack.enter_context(
                ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), _use_threads, (cores // 2,))
            )
            l2w_job = pool.submit(_train_collecting_lines, common, "l2w", tmp / "l2w")
            print("(L2W trains in a second process meanwhile; its lines follow the baseline's)")
            stack.callback(numba.set_num_threads, numba.get_num_threads())
            numba.set_num_threads(min(numba.get_num_threads(), cores - cores // 2))
        print("--- baseline")
        results["baseline"] = _train(common, "baseline", tmp / "baseline", lambda line: print("  " + line))
        lines, results["l2w"] = (
            l2w_job.result() if l2w_job else _train_collecting_lines(common, "l2w", tmp / "l2w")
        )
        print("--- l2w")
        for line in lines:
            print("  " + line)
    _print_comparison(results)
    return results


def _use_threads(n: int) -> None:
    """Numba's thread count in the worker process."""
    numba.set_num_threads(max(1, min(n, numba.get_num_threads())))


def _train(common: dict, method: str, folder: Path, log: Callable[[str], None]) -> dict:
    """Train and evaluate one method, logging each epoch, the test accuracies and the seconds."""
    start = time.perf_counter()
    r = experiment.train(RunConfig(**common, method=method), folder, progress=False, log=log)
    result = _evaluate(r, log)
    log(f"{time.perf_counter() - start:.0f} s")
    return result


def _train_collecting_lines(common: dict, method: str, folder: Path) -> tuple[list[str], dict]:
    """:func:`_train` with its log lines returned instead of printed (for a worker process)."""
    lines: list[str] = []
    return lines, _train(common, method, folder, lines.append)


def _evaluate(r: experiment.Run, log: Callable[[str], None]) -> dict:
    """Anytime accuracy, budgeted-batch curve and per-image correctness, one forward pass per split."""
    norm = r.data["normalization"]
    (val_images, val_labels), (test_images, test_labels) = r.data["val"], r.data["test"]
    val_probs = predict_probs(r.model, val_images, normalization=norm)
    test_probs = predict_probs(r.model, test_images, normalization=norm)
    anytime = anytime_accuracy(test_probs, test_labels)
    log("anytime accuracy per exit: " + ", ".join(f"{a:.1f}%" for a in anytime))
    mul_adds = models.count_ops(r.model).mul_adds
    return {
        "anytime_accuracy": anytime,
        "dynamic": dynamic_evaluate(val_probs, val_labels, test_probs, test_labels, mul_adds),
        "correct": test_probs.argmax(axis=2) == test_labels,  # (exits, test images)
    }


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """Accuracy difference b - a in points over the same test images, and its standard error.

    Each image contributes ``d_i = correct_b[i] - correct_a[i]`` in {-1, 0, 1}; the difference is
    the mean of ``d_i`` and its standard error ``std(d) / sqrt(n)``. Pairing cancels the spread of
    image difficulty shared by both models, so this is tighter than two binomial errors combined.
    """
    d = correct_b.astype(np.float64) - correct_a.astype(np.float64)
    if d.size < 2:
        raise ValueError(f"need at least 2 test images for a standard error, got {d.size}")
    return 100 * d.mean(), 100 * d.std(ddof=1) / np.sqrt(d.size)


def _print_comparison(results: dict) -> None:
    k = len(results["baseline"]["anytime_accuracy"])
    print("\naccuracy per exit (%)   " + "  ".join(f"exit {i + 1:<2d}" for i in range(k)))
    for method, m in results.items():
        print(f"  {method:<21s} " + "  ".join(f"{a:7.1f}" for a in m["anytime_accuracy"]))
    print("\nbudgeted batch: accuracy (%) at expected Mul-Adds (M)")
    for q_index in (0, 9, 19, 38):  # q = 0.05, 0.5, 1.0, 1.95
        row = "  ".join(
            f"{method} {m['dynamic'][q_index]['accuracy']:5.1f} @ "
            f"{m['dynamic'][q_index]['mul_adds'] / 1e6:.2f}"
            for method, m in results.items()
        )
        print(f"  q={results['baseline']['dynamic'][q_index]['q']:<5} {row}")
    n = results["baseline"]["correct"].shape[1]
    print(f"\nL2W - baseline (points, +- standard error, paired over {n} test images)")
    for i in range(k):
        diff, se = paired_difference(results["baseline"]["correct"][i], results["l2w"]["correct"][i])
        print(f"  exit {i + 1}: {diff:+5.1f} +- {se:.1f}")
    print(
        "\nnote: L2W takes two SGD steps per loaded batch (one per half, each at half the lr, as the official"
        "\ncode), the baseline one; on a schedule this short that alone can change the result"
        "\n(docs/algorithm.md, 'Two halves per batch')."
    )
