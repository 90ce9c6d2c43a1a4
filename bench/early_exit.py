"""Wall-clock time of real early exit against the full forward pass, beside the predicted Mul-Add saving.

    python bench/early_exit.py [--presets msdnet4_tiny ranet4_tiny msdnet5 ranet6] [--images 512]
                               [--batch-sizes 512 128] [--val 1024] [--repeats 5] [--glibc-defaults]

For each preset (CIFAR-10 heads, float32, random weights from seed 0, eval mode) the thresholds of
each budget come from ``find_thresholds`` on the softmax outputs of ``--val`` synthetic images;
another ``--images`` synthetic images are then classified by the full forward pass (every exit)
and by ``early_exit_predict`` (each batch shrinking at every exit), both in batches of each of
``--batch-sizes``. Two batch sizes, because on CPU a smaller batch can cost less per image by
itself (less memory traffic): early exit's later stages run on smaller batches, and comparing
at one batch size alone would credit early exit with that saving too.

The networks are not trained: the time depends on how many images reach each exit, not on
whether they are classified correctly. Their batch-norm statistics are calibrated on 256 other
synthetic images (one train-mode pass with momentum 1); with the initial statistics (mean 0,
variance 1) the deeper exits of ranet6 saturate, most confidences are exactly 1.0 in float32 and
no threshold can split them. Calibrated, the confidences are near-uniform but distinct, and
``find_thresholds`` amounts to picking confidence quantiles of the validation outputs, so each exit
takes about its share of the images.

The predicted ratio is ``sum_k f_k * MulAdds(k) / MulAdds(K)``, with ``f_k`` the fraction of the
images that left at exit k and ``MulAdds`` from ``count_ops`` (cumulative, earlier heads
included). The measured ratio is the early-exit time over the full-forward time at the same batch
size, each the fastest of ``--repeats`` runs: the variants are timed in turn, after an untimed run
of each (which also checks that early exit gives every image the exit ``assign_exits`` gives).
The fastest run, not the median, because on a shared machine other processes only ever add time.

The script restarts itself with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` raised
unless ``--glibc-defaults`` is given: with glibc's defaults every map of
tens of MB is a fresh ``mmap`` whose pages fault in, and RANet's 32x32 flow at batch 512 then
swings by 2x from run to run, drowning the difference being measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable

import numpy as np

import tinyexit as te
from tinyexit import models
from tinyexit.data import CIFAR10_MEAN, CIFAR10_STD, normalize, synthetic_dataset
from tinyexit.evaluate import assign_exits, early_exit_predict, exit_shares, find_thresholds, predict_probs

#: malloc settings that keep freed memory in the process (see the module docstring)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000"}


def budgets(num_exits: int) -> list[tuple[str, np.ndarray]]:
    """(label, exit shares): four budget parameters q, and half of the images leaving at exits 1-2.

    The latter is left out with four exits, where ``q = 1`` already does it, and below three.
    """
    out = [(f"q = {q}", exit_shares(q, num_exits)) for q in (0.05, 0.5, 1.0, 1.95)]
    if num_exits < 3 or num_exits == 4:
        return out
    return out + [("half at exits 1-2", np.array([0.25, 0.25] + [0.5 / (num_exits - 2)] * (num_exits - 2)))]


def calibrate_batch_norm(model: te.nn.Module, images: np.ndarray) -> None:
    """Set every batch norm's running statistics to those of ``images``, then leave the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, te.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with te.no_grad():
        model(te.tensor(images))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, images: int, batch_sizes: list[int], val: int, repeats: int) -> list[dict]:
    """Time the full forward and early exit of preset ``name`` at every budget and batch size; one dict per budget."""
    te.manual_seed(0)
    model = models.create(name, num_classes=10)
    calibrate_batch_norm(model, normalize(synthetic_dataset(256, seed=1)[0], CIFAR10_MEAN, CIFAR10_STD))
    x = normalize(synthetic_dataset(val + images, seed=0)[0], CIFAR10_MEAN, CIFAR10_STD)
    val_probs, test = predict_probs(model, x[:val]), x[val:]
    mul_adds = np.array(models.count_ops(model).mul_adds)
    plans = [(label, find_thresholds(val_probs, shares)) for label, shares in budgets(model.num_exits)]

    def full(batch_size: int) -> list[list[te.Tensor]]:
        with te.no_grad():
            return [model(te.tensor(test[i : i + batch_size])) for i in range(0, images, batch_size)]

    def early(thresholds: np.ndarray, batch_size: int) -> np.ndarray:
        return early_exit_predict(model, test, thresholds, batch_size=batch_size).exits

    full_probs = np.stack([te.softmax(z, dim=1).numpy() for z in full(images)[0]])
    fractions = {}
    for label, thresholds in plans:  # the check that early exit leaves where assign_exits says
        exits = assign_exits(full_probs, thresholds)
        fractions[label] = np.bincount(exits, minlength=model.num_exits) / images
        if not all(np.array_equal(early(thresholds, b), exits) for b in batch_sizes):
            raise AssertionError(
                f"{name}, {label}: early exit disagrees with assign_exits on the full outputs"
            )
    times = {(what, b): [] for b in batch_sizes for what in ["full"] + [label for label, _ in plans]}
    for b in batch_sizes:
        full(b)  # untimed
    for _ in range(repeats):  # alternate, so that slow spells of the machine hit every variant alike
        for b in batch_sizes:
            times["full", b].append(_seconds(lambda: full(b)))
            for label, thresholds in plans:
                times[label, b].append(_seconds(lambda: early(thresholds, b)))
    best = {key: min(t) for key, t in times.items()}
    return [
        {
            "model": name,
            "budget": label,
            "fractions": fractions[label],
            "predicted": float(fractions[label] @ mul_adds / mul_adds[-1]),
            "measured": [best[label, b] / best["full", b] for b in batch_sizes],
            "ms_full": [1e3 * best["full", b] / images for b in batch_sizes],
        }
        for label, _ in plans
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["msdnet4_tiny", "ranet4_tiny", "msdnet5", "ranet6"])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--val", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--glibc-defaults", action="store_true", help="keep glibc's malloc thresholds")
    args = parser.parse_args()
    if not args.glibc_defaults and MALLOC_ENV.keys() - os.environ.keys():
        os.execve(sys.executable, [sys.executable, *sys.argv], {**MALLOC_ENV, **os.environ})
    sizes = args.batch_sizes
    print(
        f"{datetime.date.today()}, CPU, float32, {args.images} images, thresholds from {args.val} validation "
        f"images, fastest of {args.repeats} runs, "
        + (
            "glibc malloc defaults"
            if args.glibc_defaults
            else ", ".join(f"{k}={os.environ[k]}" for k in MALLOC_ENV)
        )
        + "\n"
    )
    print(
        "| model | budget | leaving at each exit (%) | Mul-Adds early / full (predicted) | "
        + " | ".join(f"time early / full, batch {b}" for b in sizes)
        + f" | full forward, ms per image (batch {' / '.join(map(str, sizes))}) |"
    )
    print("|---" * (5 + len(sizes)) + "|")
    for name in args.presets:
        for r in measure(name, args.images, sizes, args.val, args.repeats):
            shares = " ".join(f"{100 * f:.0f}" for f in r["fractions"])
            measured = " | ".join(f"{m:.2f}" for m in r["measured"])
            print(
                f"| {r['model']} | {r['budget']} | {shares} | {r['predicted']:.2f} | {measured} | "
                + " / ".join(f"{t:.2f}" for t in r["ms_full"])
                + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
