"""Benchmark the 2-D convolution kernels against PyTorch CPU and the NumPy reference.

Usage::

    python bench/kernels.py [--repeat R] [--rounds K] [--threads 2] [--clock wall|cpu]

Times conv2d (forward), conv2d_input_grad and conv2d_weight_grad in float32 on batch-64 layers
of the CIFAR networks, for our Numba kernels (``cpu``), the NumPy reference and PyTorch CPU
(``F.conv2d`` and ``aten.convolution_backward`` on NCHW-contiguous tensors, the layout our API
takes), all in the same process with the same number of threads. Each time is the median of
``rounds * repeat`` calls after a warm-up. Ours and PyTorch's calls alternate one by one, so
that a burst of load from a neighbour on this shared machine, which slows everything by 10-25 %
for seconds at a time, slows both alike and leaves their ratio (timing them in separate batches,
one such burst made a shape read 1.25x in one run and 1.02x in the next); the reference's calls
come after them in each round, after a short pause. Prints a markdown table with GFLOP/s and
the geometric mean over the shapes of the ratio ours/torch of forward + input grad + weight
grad. GFLOP/s count every multiply-add of the convolution, those with the zero padding included,
although both ours and PyTorch's kernels leave those out: a share of the peak above 100 % is
possible.

``--clock cpu`` times each call by the CPU time of the process instead of the wall clock: on a
machine that other processes share, a one-thread run then counts only the time the call computed,
not the time it waited for a core (with more threads it also counts the time they spin).

PyTorch is optional (its columns are left out when it is missing); the library never imports it.
OpenBLAS reads ``OPENBLAS_CORETYPE`` when NumPy loads, so set it in the environment, not here.

glibc's malloc is asked to keep freed memory (``mallopt``) before anything is timed: by default it
may hand large blocks back to the system after each call, and the next call then pays a page
fault per 4 KiB of fresh memory (PyTorch's forward of the first layer took 2.5 ms that way
instead of 0.3 ms, depending on what the process had allocated before). Kept memory is what a
steady training loop sees, and it applies to every implementation alike.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

# (N, Cin, H, W, Cout, k, stride, pad)
SHAPES = [
    (64, 3, 32, 32, 16, 3, 1, 1),
    (64, 16, 32, 32, 16, 3, 1, 1),
    (64, 48, 16, 16, 24, 3, 2, 1),
    (64, 96, 16, 16, 48, 1, 1, 0),
    (64, 96, 8, 8, 96, 3, 1, 1),
    (64, 192, 8, 8, 48, 3, 1, 1),
]
OPS = ("forward", "input grad", "weight grad")
PAUSE_S = 0.15
"""Pause before each round and before the reference's calls, so that the worker threads of the
previous library (OpenBLAS's behind the reference spin for a while after work) are asleep and do
not compete for the cores."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per round")
    parser.add_argument(
        "--peak",
        type=float,
        default=None,
        help="the machine's float32 FMA peak in GF/s at these threads (bench/peak.py): "
        "adds each implementation's share of it",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all implementations")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time calls by the wall clock or by the process's CPU time (for --threads 1 on a shared machine)",
    )
    return parser.parse_args(argv)


def set_threads(threads: int) -> None:
    """Fix the thread count of every pool; must run before NumPy, Numba or torch load."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc never to return freed memory to the system; False where it cannot."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters from <malloc.h>
    limit = 1 << 30
    return bool(libc.mallopt(m_mmap_threshold, limit) and libc.mallopt(m_trim_threshold, limit))


def ops_of(mod, x, w, gy, stride, pad):
    """The three kernels of a backend module as zero-argument callables."""
    hw, khw = x.shape[2:], w.shape[2:]
    return (
        lambda: mod.conv2d(x, w, stride, pad),
        lambda: mod.conv2d_input_grad(gy, w, hw, stride, pad),
        lambda: mod.conv2d_weight_grad(x, gy, khw, stride, pad),
    )


def torch_ops(torch, x, w, gy, stride, pad):
    """PyTorch's forward, input gradient and weight gradient on NCHW tensors."""
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, gy))
    back = torch.ops.aten.convolution_backward
    args = ([stride, stride], [pad, pad], [1, 1], False, [0, 0], 1)
    return (
        lambda: torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad),
        lambda: back(tg, tx, tw, None, *args, [True, False, False]),
        lambda: back(tg, tx, tw, None, *args, [False, True, False]),
    )


def alternate_calls(
    fns: dict, repeat: int, clock=time.perf_counter, warmup: int = 1
) -> dict[str, list[float]]:
    """Call each of ``fns`` ``warmup`` times in turn, then ``repeat`` times in turn, one call of
    each after the other; return the times of the latter in ms by ``clock`` per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append((clock() - start) * 1e3)
    return times


def time_calls(fn, repeat: int, clock=time.perf_counter) -> list[float]:
    """Call ``fn`` once to warm up, then ``repeat`` times; return the times in ms by ``clock``."""
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append((clock() - start) * 1e3)
    return times


def main(argv=None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    kept = keep_freed_memory()
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from tinyexit.backend.cpu import conv as cpu_conv
    from tinyexit.backend.reference import conv as ref_conv

    cpu_conv.SERIAL_CALLS = 0  # steady state: every call may use the threads from the first one

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    import numba

    print(
        f"numpy {np.__version__}, numba {numba.__version__}, "
        f"torch {torch.__version__ if torch else 'missing'}; threads {args.threads}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(auto)')}; float32; "
        f"median of {args.rounds}x{args.repeat} calls, {args.clock} clock; freed memory "
        f"{'kept' if kept else 'returned to the system'}\n"
    )
    head = "| N,Cin,H,W,Cout,k,s,p | op | ours ms | ref ms |"
    rule = "|---|---|---:|---:|"
    if torch:
        head += " torch ms | ours/torch | ours/ref | GF/s ours | GF/s torch |"
        rule += "---:|---:|---:|---:|---:|"
        if args.peak:
            head += " ours % peak | torch % peak |"
            rule += "---:|---:|"
    else:
        head += " ours/ref | GF/s ours |"
        rule += "---:|---:|"
    print(head)
    print(rule)

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    ratios = []
    for shape in SHAPES:
        n, c, h, wd, o, k, s, p = shape
        ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
        x = rng.standard_normal((n, c, h, wd), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32)
        gy = rng.standard_normal((n, o, ho, wo), dtype=np.float32)
        impls = {"ours": ops_of(cpu_conv, x, w, gy, s, p), "ref": ops_of(ref_conv, x, w, gy, s, p)}
        if torch:
            impls["torch"] = torch_ops(torch, x, w, gy, s, p)
        samples = {name: [[] for _ in OPS] for name in impls}
        for _ in range(args.rounds):
            time.sleep(PAUSE_S)
            for i in range(len(OPS)):
                paired = {name: fns[i] for name, fns in impls.items() if name != "ref"}
                for name, times in alternate_calls(paired, args.repeat, clock).items():
                    samples[name][i] += times
            time.sleep(PAUSE_S)
            for i, fn in enumerate(impls["ref"]):
                samples["ref"][i] += time_calls(fn, args.repeat, clock)
        ms = {name: [float(np.median(t)) for t in ts] for name, ts in samples.items()}
        gflop = 2.0 * n * o * ho * wo * c * k * k / 1e9
        label = ",".join(map(str, shape))
        for i, op in enumerate(OPS + ("total",)):
            pick = (lambda v: sum(v)) if op == "total" else (lambda v, i=i: v[i])
            ours, ref = pick(ms["ours"]), pick(ms["ref"])
            flops = gflop * (3 if op == "total" else 1)
            row = f"| {label} | {op} | {ours:.2f} | {ref:.2f} |"
            if torch:
                tt = pick(ms["torch"])
                row += (
                    f" {tt:.2f} | {ours / tt:.2f} | {ours / ref:.3f} |"
                    f" {flops / ours * 1e3:.0f} | {flops / tt * 1e3:.0f} |"
                )
                if args.peak:
                    row += f" {100 * flops / ours * 1e3 / args.peak:.0f} | {100 * flops / tt * 1e3 / args.peak:.0f} |"
                if op == "total":
                    ratios.append(ours / tt)
            else:
                row += f" {ours / ref:.3f} | {flops / ours * 1e3:.0f} |"
            print(row, flush=True)
    if ratios:
        geo = float(np.exp(np.mean(np.log(ratios))))
        print(f"\ngeometric mean over shapes of ours/torch (forward + input grad + weight grad): {geo:.2f}")


if __name__ == "__main__":
    main()
