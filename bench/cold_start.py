"""Time the first convolution forward and backward from an empty Numba cache, as a new user sees it.

Runs a fresh Python process with its own empty ``NUMBA_CACHE_DIR``; that process builds a
float32 input (64 images 3x32x32, the first layer of the MSDNet presets) and a 3x3 weight, runs
``conv2d`` forward and a backward pass through the autograd, and prints the wall and CPU seconds
of the import and of that first pass. CPU seconds matter on a shared machine: wall time there
also counts the time other processes held the cores.

    python bench/cold_start.py [--repo PATH]   # PATH: a checkout to measure (default: this one)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

FIRST_PASS = textwrap.dedent("""
    import time
    t0, c0 = time.perf_counter(), time.process_time()
    import numpy as np
    import tinyexit as te
    from tinyexit.nn import functional as F
    t1, c1 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    x = te.tensor(rng.standard_normal((64, 3, 32, 32)), dtype=np.float32, requires_grad=True)
    w = te.tensor(rng.standard_normal((16, 3, 3, 3)), dtype=np.float32, requires_grad=True)
    y = F.conv2d(x, w, stride=1, padding=1)
    (y * y).sum().backward()
    t2, c2 = time.perf_counter(), time.process_time()
    print(f"import {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU; "
          f"first conv forward + backward {t2 - t1:.2f} s wall, {c2 - c1:.2f} s CPU")
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo",
        default=str(Path(__file__).resolve().parents[1]),
        help="the checkout whose tinyexit to import",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": args.repo}
        env.setdefault("NUMBA_NUM_THREADS", "2")
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"{args.repo}; NUMBA_NUM_THREADS={env['NUMBA_NUM_THREADS']}; 1-minute load average {load}")
        subprocess.run([sys.executable, "-c", FIRST_PASS], env=env, cwd=args.repo, check=True)


if __name__ == "__main__":
    main()
