"""Measure this machine's float32 fused multiply-add peak with a Numba loop, on 1 and 2 threads.

Each thread applies ``x = x * a + b`` sixteen times in a row to every value of its own block of
``LANES`` float32 values (L1-resident), pass after pass. LLVM vectorises the loop over the block
and interleaves several vectors, so there are 16 multiply-adds per load and store and enough
independent chains to hide their latency: the loop is bound by the FMA units. A multiply-add
counts as two floating-point operations, as in ``bench/kernels.py``'s GF/s.

    python bench/peak.py [--seconds 0.5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
from numba import njit, prange

LANES = 1024
"""float32 values per thread (4 KiB: stays in the level-1 cache)."""

CHAIN = 16
"""Multiply-adds applied to a value between its load and its store."""


@njit(fastmath=True, cache=True)
def _fma_block(x, a, b, reps):
    q = LANES // 4  # four independent chains per iteration, each vectorised over j
    for _ in range(reps):
        for j in range(q):
            y0, y1, y2, y3 = x[j], x[j + q], x[j + 2 * q], x[j + 3 * q]
            for _ in range(CHAIN):  # unrolled by LLVM: the trip count is a constant
                y0 = y0 * a + b
                y1 = y1 * a + b
                y2 = y2 * a + b
                y3 = y3 * a + b
            x[j], x[j + q], x[j + 2 * q], x[j + 3 * q] = y0, y1, y2, y3


@njit(fastmath=True, parallel=True, cache=True)
def _fma_threads(xs, a, b, reps):
    for t in prange(xs.shape[0]):
        _fma_block(xs[t], a, b, reps)


def measure(threads: int, seconds: float) -> tuple[float, float]:
    """GF/s of ``threads`` threads running the FMA loop for about ``seconds`` (best of 5): per
    second of wall time, and per second of CPU time times ``threads`` (what the cores do while
    they run this process, the better figure on a machine other processes share)."""
    numba.set_num_threads(threads)
    xs = np.ones((threads, LANES), np.float32)
    a, b = np.float32(0.999999), np.float32(1e-6)  # x stays near 1: no overflow, no denormals
    _fma_threads(xs, a, b, 1)
    reps = 100
    while True:
        start = time.perf_counter()
        _fma_threads(xs, a, b, reps)
        if time.perf_counter() - start > seconds / 5:
            break
        reps *= 2
    wall, cpu = zip(*(_timed(xs, a, b, reps) for _ in range(5)))
    flops = 2 * CHAIN * threads * LANES * reps
    return flops / min(wall) / 1e9, flops * threads / min(cpu) / 1e9


def _timed(xs, a, b, reps) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    _fma_threads(xs, a, b, reps)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure")
    args = parser.parse_args()
    print(f"numba {numba.__version__}; {os.cpu_count()} CPUs; float32 FMA, best of 5 runs")
    for t in args.threads:
        if t > numba.config.NUMBA_NUM_THREADS:
            print(f"{t} threads: skipped (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})")
            continue
        wall, cpu = measure(t, args.seconds)
        print(
            f"{t} thread{'s' if t > 1 else ''}: {wall:.0f} GF/s per wall second, {cpu:.0f} GF/s per CPU second"
        )


if __name__ == "__main__":
    main()
