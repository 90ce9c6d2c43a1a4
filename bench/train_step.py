"""Time and peak memory of one baseline step and one L2W step (both halves), tinyexit against PyTorch.

    python bench/train_step.py [--archs msdnet5,ranet6,...] [--batch 64] [--steps 2] [--threads 2]

Every (implementation, step, model) triple runs in a fresh process with ``--threads`` threads for
every library: a warm-up step on 4 images compiles the Numba kernels while keeping the high-water
mark low, then one untimed full-batch step pays the page faults of fresh memory; the time is the
median of the next ``--steps`` steps; the memory is the peak resident set size over the full-batch
steps minus the resident size before them (model, data and compiled kernels excluded). The PyTorch peer is
``bench/torch_mirror.py``: the
same model (parameter names and counts checked equal, tinyexit's weights copied in and the
forward outputs compared before timing) and the same algorithm. Prints a markdown table.
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
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent)
)  # this checkout's tinyexit, not an installed one

ARCHS = ("msdnet5", "ranet6", "msdnet3_small", "ranet4_small", "msdnet4_tiny", "ranet4_tiny")
NUM_CLASSES = 100


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _batch(batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, NUM_CLASSES, batch)


def _ours(method: str, arch: str):
    """tinyexit's trainer for ``method`` and its step function on NumPy arrays."""
    import tinyexit as te
    from tinyexit import l2w, models, optim
    from tinyexit.training import BaselineTrainer

    te.manual_seed(0)
    model = models.create(arch, num_classes=NUM_CLASSES)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "l2w":
        wpn = l2w.WeightPredictionNet(len(models.count_ops(model).mul_adds))
        trainer = l2w.L2WTrainer(model, wpn, opt, optim.Adam(wpn.parameters(), lr=1e-4, weight_decay=1e-4))
    else:
        trainer = BaselineTrainer(model, opt)
    return trainer.step


def _check_mirror(arch: str, model, mirror) -> None:
    """Assert equal parameter names and counts, copy tinyexit's weights, compare a forward pass."""
    import numpy as np
    import torch
    from torch_mirror import load_from

    import tinyexit as te

    ours = {n: p.shape for n, p in model.named_parameters()}
    theirs = {n: tuple(p.shape) for n, p in mirror.named_parameters()}
    assert ours == theirs, f"{arch}: parameter names or shapes differ from the PyTorch mirror"
    assert sum(p.numel() for p in mirror.parameters()) == sum(p.numel() for p in model.parameters())
    load_from(mirror, model)
    x, _ = _batch(8)
    with te.no_grad():
        expected = [z.numpy() for z in model(te.tensor(x))]
    with torch.no_grad():
        got = [z.numpy() for z in mirror(torch.from_numpy(x))]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(
            g, e, rtol=1e-3, atol=1e-3, err_msg=f"{arch}: forward differs from the mirror"
        )


def _theirs(method: str, arch: str):
    """The PyTorch mirror's step for ``method``, with tinyexit's initial weights, on NumPy arrays."""
    import torch
    import torch_mirror as tm

    import tinyexit as te
    from tinyexit import models

    te.manual_seed(0)
    model = models.create(arch, num_classes=NUM_CLASSES)
    mirror = tm.create(arch, num_classes=NUM_CLASSES)
    _check_mirror(arch, model, mirror)  # the running statistics it updates do not enter a training step
    opt = torch.optim.SGD(mirror.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "l2w":
        wpn = tm.WeightPredictionNet(len(models.count_ops(model).mul_adds))
        step = tm.L2WStep(
            mirror, wpn, opt, torch.optim.Adam(wpn.parameters(), lr=1e-4, weight_decay=1e-4)
        ).step
    else:
        step = tm.BaselineStep(mirror, opt).step
    return lambda x, y: step(torch.from_numpy(x), torch.from_numpy(y))


def measure(impl: str, method: str, arch: str, batch: int, steps: int) -> dict:
    """Run in this process: build, warm up, time ``steps`` steps, report time and peak memory."""
    if impl == "torch":
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
    step = (_theirs if impl == "torch" else _ours)(method, arch)
    x, y = _batch(batch)
    step(x[:4], y[:4])
    before = _rss_mb()
    step(x, y)  # the first full step pays the page faults of fresh memory; steady training does not
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": statistics.median(times), "peak_mb": peak - before}


def _run_one(impl: str, method: str, arch: str, args) -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(args.threads),
        OPENBLAS_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        NUMBA_NUM_THREADS=str(args.threads),
    )
    cmd = [
        sys.executable,
        __file__,
        "--one",
        impl,
        method,
        "--archs",
        arch,
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{impl} {method} {arch} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated presets")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, default=2, help="timed steps per measurement (the median is shown)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="baseline,l2w", help="comma-separated: baseline, l2w")
    parser.add_argument("--impls", default="ours,torch", help="comma-separated: ours, torch")
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.archs, args.batch, args.steps)))
        return
    archs, methods, impls = (a.split(",") for a in (args.archs, args.methods, args.impls))
    res = {(i, m, a): _run_one(i, m, a, args) for a in archs for m in methods for i in impls}
    print(
        f"batch {args.batch}, CPU, float32, {args.threads} threads, median of {args.steps} steps; "
        f"memory = peak RSS above the resident size before the timed steps\n"
    )
    print(
        "| model | step | ours (s) | torch (s) | time ours/torch | ours (MB) | torch (MB) | memory ours/torch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for a in archs:
        for m in methods:
            o, t = res.get(("ours", m, a)), res.get(("torch", m, a))
            cells = [
                f"{o['seconds']:.2f}" if o else "-",
                f"{t['seconds']:.2f}" if t else "-",
                f"{o['seconds'] / t['seconds']:.2f}x" if o and t else "-",
                f"{o['peak_mb']:.0f}" if o else "-",
                f"{t['peak_mb']:.0f}" if t else "-",
                f"{o['peak_mb'] / max(t['peak_mb'], 1):.2f}x" if o and t else "-",
            ]
            print(f"| {a} | {m} | " + " | ".join(cells) + " |")
    if "baseline" in methods and "l2w" in methods:
        print("\n| model | impl | time L2W/baseline | memory L2W/baseline |")
        print("|---|---|---|---|")
        for a in archs:
            for i in impls:
                b, m = res[(i, "baseline", a)], res[(i, "l2w", a)]
                print(
                    f"| {a} | {i} | {m['seconds'] / b['seconds']:.2f}x | "
                    f"{m['peak_mb'] / max(b['peak_mb'], 1):.2f}x |"
                )


if __name__ == "__main__":
    main()
