"""Compare this checkout's CPU convolution kernels with another checkout's, call by call.

Usage::

    python bench/ab_conv.py --variant PATH [--pairs 60] [--threads 1]

``PATH`` is another checkout of tinyexit (a branch with a kernel change, say). Its ``tinyexit``
package is copied into a temporary folder under the name ``tinyexit_variant`` (imports rewritten)
so that both versions load into one process. Each shape then runs forward, input gradient and
weight gradient as pairs of calls, this checkout's then the variant's, timed by the process's CPU
clock; the table gives each side's minimum and median and the ratio of the medians.

Why pairs in one process: on a shared virtual machine the speed drifts by 5-10 % from one minute
to the next, so two versions timed in separate runs differ by about as much as the changes worth
measuring. Alternating calls puts both under the same drift. The variant's results are checked
against this checkout's before timing, so a broken variant stops here.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from kernels import alternate_calls  # noqa: E402 (after the path)

# (N, Cin, H, W, Cout, k, stride, pad): the layers of docs/benchmarks.md furthest from PyTorch
SHAPES = [(64, 96, 8, 8, 96, 3, 1, 1), (64, 192, 8, 8, 48, 3, 1, 1), (64, 16, 32, 32, 16, 3, 1, 1)]
NAME = "tinyexit_variant"


def copy_variant(checkout: Path, into: Path) -> None:
    """Copy ``checkout/tinyexit`` to ``into/tinyexit_variant``, its imports of ``tinyexit`` renamed."""
    source = checkout / "tinyexit"
    if not (source / "__init__.py").is_file():
        raise SystemExit(f"error: {checkout} has no tinyexit package (expected {source}/__init__.py)")
    target = into / NAME
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\btinyexit\b(?=[. ]|$)", NAME, text, flags=re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", type=Path, required=True, help="another checkout of tinyexit")
    parser.add_argument("--pairs", type=int, default=60, help="timed pairs of calls per kernel")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")

    import numba
    import numpy as np

    from tinyexit.backend.cpu import conv as current
    from tinyexit.backend.geometry import conv_geometry

    with tempfile.TemporaryDirectory() as tmp:
        copy_variant(args.variant.resolve(), Path(tmp))
        sys.path.insert(0, tmp)
        variant = importlib.import_module(f"{NAME}.backend.cpu.conv")
        numba.set_num_threads(args.threads)
        rng = np.random.default_rng(0)
        print(
            f"this checkout against {args.variant}; {args.threads} thread(s), {args.pairs} pairs, CPU clock"
        )
        print(
            "| N,Cin,H,W,Cout,k,s,p | op | ours min ms | ours median | variant min | variant median | variant/ours |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for n, c, h, w, o, k, s, p in SHAPES:
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            wt = rng.standard_normal((o, c, k, k)).astype(np.float32)
            _, _, (ho, wo) = conv_geometry(x.shape, wt.shape, s, p)
            gy = rng.standard_normal((n, o, ho, wo)).astype(np.float32)
            ops = {
                "forward": lambda m: m.conv2d(x, wt, s, p),
                "input grad": lambda m: m.conv2d_input_grad(gy, wt, (h, w), s, p),
                "weight grad": lambda m: m.conv2d_weight_grad(x, gy, (k, k), s, p),
            }
            for op, call in ops.items():
                np.testing.assert_allclose(call(variant), call(current), rtol=1e-3, atol=1e-3)
                pair = {"ours": lambda: call(current), "variant": lambda: call(variant)}
                times = alternate_calls(pair, args.pairs, time.process_time, warmup=3)
                a, b = sorted(times["ours"]), sorted(times["variant"])
                mid = len(a) // 2
                shape = ",".join(map(str, (n, c, h, w, o, k, s, p)))
                print(
                    f"| {shape} | {op} | {a[0]:.2f} | {a[mid]:.2f} | {b[0]:.2f} | "
                    f"{b[mid]:.2f} | {b[mid] / a[mid]:.3f} |"
                )


if __name__ == "__main__":
    main()
