"""Time and peak memory of one L2W step (both halves) against one baseline step, same model and batch.

    python bench/l2w_step.py [--arch msdnet5] [--batch 64] [--steps 3]

Each measurement runs in a fresh process: a warm-up step on 4 images compiles the Numba kernels;
the time is the median of ``--steps`` full-batch steps; the memory is the peak resident set size
during them minus the resident size before them (model, data and compiled kernels excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(method: str, arch: str, batch: int, steps: int) -> dict:
    """Run in this process: build, warm up, time ``steps`` steps, report time and peak memory."""
    import numpy as np

    import tinyexit as te
    from tinyexit import l2w, models, optim
    from tinyexit.training import BaselineTrainer

    te.manual_seed(0)
    model = models.create(arch, num_classes=100)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "l2w":
        wpn = l2w.WeightPredictionNet(len(models.count_ops(model).mul_adds))
        trainer = l2w.L2WTrainer(model, wpn, opt, optim.Adam(wpn.parameters(), lr=1e-4, weight_decay=1e-4))
    else:
        trainer = BaselineTrainer(model, opt)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 100, batch)
    trainer.step(x[:4], y[:4])  # compiles the kernels while keeping the high-water mark low
    before = _rss_mb()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step(x, y)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": statistics.median(times), "peak_mb": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="msdnet5")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", choices=("baseline", "l2w"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.arch, args.batch, args.steps)))
        return
    results = {}
    for method in ("baseline", "l2w"):
        out = subprocess.run([sys.executable, __file__, "--one", method, "--arch", args.arch, "--batch",
                              str(args.batch), "--steps", str(args.steps)], capture_output=True, text=True, check=True)
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    b, m = results["baseline"], results["l2w"]
    print(f"{args.arch}, batch {args.batch}, CPU, float32, median of {args.steps} steps\n")
    print("| step | time (s) | peak memory above the model (MB) |")
    print("|---|---|---|")
    print(f"| baseline (Eq. 3) | {b['seconds']:.2f} | {b['peak_mb']:.0f} |")
    print(f"| L2W (both halves) | {m['seconds']:.2f} | {m['peak_mb']:.0f} |")
    print(f"| ratio L2W / baseline | {m['seconds'] / b['seconds']:.2f}x | {m['peak_mb'] / max(b['peak_mb'], 1):.2f}x |")


if __name__ == "__main__":
    main()
