"""Check and time tinyexit's GPU path in one run and print one table (about 5 minutes on one GPU).

    python bench/gpu_check.py               # on a machine with an NVIDIA GPU and CuPy
    python bench/gpu_check.py --cpu-parts   # the same sections on the CPU, small and quick

Sections, each a group of rows in the table:

- ``kernels``: float64 gradcheck and gradgradcheck on the device of conv2d, max/avg pooling,
  bilinear resize (both ``align_corners``) and batch norm; the device's kernels against the NumPy
  reference and, on the GPU, the CUDA C kernels against their array-module fallback;
- ``agreement``: one baseline and one L2W step of two small presets in float64, on the device
  and on the CPU from the same weights and batch: loss and updated parameters compared (with
  ``--cpu-parts`` the second run uses the NumPy reference kernels instead of the GPU);
- ``conv``: the three convolution kernels on layers of the CIFAR networks, ours against PyTorch
  on the same device when PyTorch imports (and, for the GPU, sees CUDA), ratio in the same run;
- ``step``: one training step (baseline, L2W) of msdnet5 and ranet6 at batch 512 and 1024 in
  float32, against the PyTorch mirror ``bench/torch_mirror.py`` (same model, same weights,
  same algorithm), with the memory peak (CuPy's memory pool, PyTorch's allocator);
- ``projection``: the time of the paper's CIFAR schedule (300 epochs of 50,000 images at
  batch 1024) from the measured step times.

Without CuPy or a CUDA device the script refuses (exit status 2) unless ``--cpu-parts`` is given.
A section that raises prints FAIL with its error in the table; the others still run, and the
exit status is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tinyexit as te  # noqa: E402
from tinyexit import backend, l2w, models, optim  # noqa: E402
from tinyexit.training import BaselineTrainer  # noqa: E402

F = te.nn.functional
EPOCHS, TRAIN_IMAGES, PAPER_BATCH = 300, 50_000, 1024
NUM_CLASSES = 100


@dataclass
class Settings:
    """What one run measures: the full GPU run, or the quick CPU-side run."""

    device: str
    archs: tuple[str, ...]
    batches: tuple[int, ...]
    steps: int
    conv_batch: int
    budget_s: float


GPU = Settings("cuda", ("msdnet5", "ranet6"), (512, 1024), 3, 512, 270.0)
CPU_PARTS = Settings("cpu", ("msdnet4_tiny",), (4,), 1, 2, 600.0)
AGREEMENT_PRESETS = ("msdnet4_tiny", "ranet4_tiny")
# (Cin, H, W, Cout, k, stride, pad): layers of the CIFAR networks.
CONV_LAYERS = [(3, 32, 32, 16, 3, 1, 1), (48, 16, 16, 24, 3, 2, 1), (192, 8, 8, 48, 3, 1, 1)]


class Table:
    """Rows ``(section, item, status, value)``; ``run`` turns an exception into a FAIL row."""

    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, section: str, item: str, ok: bool, value: str) -> None:
        self.rows.append((section, item, "ok" if ok else "FAIL", value))
        print(f"[{section}] {item}: {'ok' if ok else 'FAIL'} {value}", file=sys.stderr, flush=True)

    def run(self, section: str, item: str, fn) -> None:
        """Call ``fn()`` -> ``(ok, value)`` and add its row; an exception is a FAIL with the error."""
        try:
            ok, value = fn()
        except Exception as exc:  # a failing check must not stop the others
            traceback.print_exc(file=sys.stderr)
            ok, value = False, f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        self.add(section, item, ok, value)

    def failed(self) -> int:
        return sum(r[2] == "FAIL" for r in self.rows)

    def markdown(self) -> str:
        lines = ["| section | item | status | value |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in self.rows]
        return "\n".join(lines)


def synchronize(device: str) -> None:
    """Wait for the GPU, so that a timer measures the work and not the launch."""
    if device == "cuda":
        backend._cupy.cuda.Device().synchronize()


def torch_device(device: str):
    """The ``torch`` module when PyTorch imports and can run on ``device``, else ``None``."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    if device == "cpu":  # the same number of threads as our Numba kernels
        torch.set_num_threads(int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count())))
    return torch


# --- kernels: gradcheck, gradgradcheck, reference ---------------------------------------------


def _rand(shape, device, seed):
    data = np.random.default_rng(seed).standard_normal(shape)
    return te.tensor(data, dtype=te.float64, requires_grad=True, device=device)


def _grad_checks(device: str):
    """(name, function, inputs) for every differentiable kernel, small float64 inputs."""
    x = _rand((2, 3, 7, 8), device, 0)
    w, b = _rand((4, 3, 3, 3), device, 1), _rand((4,), device, 2)
    gamma, beta = _rand((3,), device, 3), _rand((3,), device, 4)
    return [
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (x, w, b)),
        ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), (x,)),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), (x,)),
        (
            "interpolate align_corners=True",
            lambda x: F.interpolate(x, size=(5, 11), align_corners=True),
            (x,),
        ),
        (
            "interpolate align_corners=False",
            lambda x: F.interpolate(x, size=(4, 13), align_corners=False),
            (x,),
        ),
        (
            "batch_norm (training)",
            lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
            (x, gamma, beta),
        ),
    ]


def _kernel_agreement(device: str) -> tuple[bool, str]:
    """The device's kernels against the NumPy reference on random inputs; worst relative error."""
    from tinyexit.backend.reference import conv, pool, resize

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 6, 9, 10)), rng.standard_normal((5, 6, 3, 3))
    dev = backend.to_device
    k = backend.kernels(dev(x, device))
    pairs = [
        (k.conv2d(dev(x, device), dev(w, device), 2, 1), conv.conv2d(x, w, 2, 1)),
        (k.avg_pool2d(dev(x, device), 3, 2, 1), pool.avg_pool2d(x, 3, 2, 1)),
        (k.max_pool2d(dev(x, device), 3, 2, 1)[0], pool.max_pool2d(x, 3, 2, 1)[0]),
        (
            k.interpolate_bilinear(dev(x, device), (16, 7), True),
            resize.interpolate_bilinear(x, (16, 7), True),
        ),
    ]
    worst = max(float(np.abs(dev(a, "cpu") - e).max() / np.abs(e).max()) for a, e in pairs)
    return worst < 1e-12, f"worst relative error {worst:.1e} (module {k.__name__})"


def _raw_against_fallback() -> tuple[bool, str]:
    """The CUDA C kernels against the array-module versions, both on the GPU."""
    from tinyexit.backend.gpu import conv, pool, raw_conv, raw_pool, raw_resize, resize

    cp = backend._cupy
    rng = np.random.default_rng(1)
    x, w = cp.asarray(rng.standard_normal((8, 6, 17, 15))), cp.asarray(rng.standard_normal((5, 6, 3, 3)))
    gy = cp.asarray(rng.standard_normal((8, 5, 9, 8)))
    pairs = [
        (raw_conv.conv2d(x, w, 2, 1), conv.conv2d(x, w, 2, 1)),
        (raw_conv.conv2d_input_grad(gy, w, (17, 15), 2, 1), conv.conv2d_input_grad(gy, w, (17, 15), 2, 1)),
        (raw_conv.conv2d_weight_grad(x, gy, (3, 3), 2, 1), conv.conv2d_weight_grad(x, gy, (3, 3), 2, 1)),
        (raw_pool.avg_pool2d(x, 3, 2, 1), pool.avg_pool2d(x, 3, 2, 1)),
        (raw_pool.avg_pool2d_adjoint(gy, (17, 15), 3, 2, 1), pool.avg_pool2d_adjoint(gy, (17, 15), 3, 2, 1)),
        (raw_pool.max_pool2d(x, 3, 2, 1)[1], pool.max_pool2d(x, 3, 2, 1)[1]),
        (raw_resize.interpolate_bilinear(x, (32, 7), True), resize.interpolate_bilinear(x, (32, 7), True)),
        (
            raw_resize.interpolate_bilinear_adjoint(x, (5, 30), False),
            resize.interpolate_bilinear_adjoint(x, (5, 30), False),
        ),
    ]
    worst = max(float(cp.abs(a - e).max() / cp.abs(e).max()) for a, e in pairs)
    return worst < 1e-12, f"worst relative difference {worst:.1e} over 8 kernels"


def kernel_section(table: Table, s: Settings) -> None:
    for name, fn, inputs in _grad_checks(s.device):
        table.run("kernels", f"gradcheck {name}", lambda: (te.gradcheck(fn, inputs), "float64"))
        table.run("kernels", f"gradgradcheck {name}", lambda: (te.gradgradcheck(fn, inputs), "float64"))
    table.run("kernels", f"{s.device} kernels vs NumPy reference", lambda: _kernel_agreement(s.device))
    if s.device == "cuda":
        table.run("kernels", "CUDA C kernels vs array-module fallback", _raw_against_fallback)


# --- agreement: one float64 step on two devices -----------------------------------------------


def _trainer(method: str, arch: str, device: str, dtype):
    """A trainer for ``method`` on a fresh ``arch`` (seed 0) on ``device`` in ``dtype``."""
    te.manual_seed(0)
    model = models.create(arch, num_classes=NUM_CLASSES).to(dtype)
    num_exits = len(models.count_ops(model).mul_adds)
    model.to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "baseline":
        return BaselineTrainer(model, opt)
    wpn = l2w.WeightPredictionNet(num_exits).to(dtype).to(device)
    return l2w.L2WTrainer(model, wpn, opt, optim.Adam(wpn.parameters(), lr=1e-4, weight_decay=1e-4))


def _one_step(method: str, arch: str, device: str, kernels: str | None):
    """Loss and parameters after one float64 step; ``kernels="reference"`` selects the oracle."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3, 32, 32)), rng.integers(0, NUM_CLASSES, 8)
    trainer = _trainer(method, arch, device, np.float64)
    previous = os.environ.pop("TINYEXIT_KERNELS", None)
    if kernels:
        os.environ["TINYEXIT_KERNELS"] = kernels
    try:
        loss = trainer.step(x, y)["loss"]
    finally:
        os.environ.pop("TINYEXIT_KERNELS", None)
        if previous is not None:
            os.environ["TINYEXIT_KERNELS"] = previous
    return loss, {n: p.numpy() for n, p in trainer.model.named_parameters()}


def _agreement(method: str, arch: str, s: Settings) -> tuple[bool, str]:
    loss_a, params_a = _one_step(method, arch, s.device, None)
    other = ("cpu", None) if s.device == "cuda" else ("cpu", "reference")
    loss_b, params_b = _one_step(method, arch, *other)
    worst = max(
        float(np.abs(params_a[n] - params_b[n]).max() / max(np.abs(params_b[n]).max(), 1e-30))
        for n in params_b
    )
    loss_diff = abs(loss_a - loss_b) / abs(loss_b)
    ok = worst < 1e-8 and loss_diff < 1e-10
    against = "CPU" if s.device == "cuda" else "reference kernels"
    return ok, f"vs {against}: loss rel. diff {loss_diff:.1e}, parameters worst rel. diff {worst:.1e}"


def agreement_section(table: Table, s: Settings) -> None:
    for arch in AGREEMENT_PRESETS:
        for method in ("baseline", "l2w"):
            table.run("agreement", f"{arch} {method} step, float64", lambda: _agreement(method, arch, s))


# --- conv kernel timings ------------------------------------------------------------------------


def _median_ms(fn, device: str, repeat: int = 5) -> float:
    fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _conv_timing(layer, s: Settings) -> tuple[bool, str]:
    from kernels import ops_of

    cin, h, w, cout, k, stride, pad = layer
    rng = np.random.default_rng(0)
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    arrays = [
        rng.standard_normal(shape).astype(np.float32)
        for shape in ((s.conv_batch, cin, h, w), (cout, cin, k, k), (s.conv_batch, cout, ho, wo))
    ]
    x, wt, gy = (backend.to_device(a, s.device) for a in arrays)
    ours = sum(_median_ms(op, s.device) for op in ops_of(backend.kernels(x), x, wt, gy, stride, pad))
    value = f"ours {ours:.2f} ms (forward + input grad + weight grad)"
    torch = torch_device(s.device)
    if torch is not None:
        tx, tw, tg = (torch.from_numpy(a).to(s.device) for a in arrays)
        back = torch.ops.aten.convolution_backward
        args = ([stride, stride], [pad, pad], [1, 1], False, [0, 0], 1)
        ops = (
            lambda: torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad),
            lambda: back(tg, tx, tw, None, *args, [True, False, False]),
            lambda: back(tg, tx, tw, None, *args, [False, True, False]),
        )
        sync = torch.cuda.synchronize if s.device == "cuda" else (lambda: None)
        theirs = 0.0
        for op in ops:
            op()
            sync()
            start = time.perf_counter()
            for _ in range(5):
                op()
            sync()
            theirs += (time.perf_counter() - start) * 1e3 / 5
        value += f", torch {theirs:.2f} ms, ours/torch {ours / theirs:.2f}x"
    return True, value


def conv_section(table: Table, s: Settings) -> None:
    for layer in CONV_LAYERS:
        item = (
            f"conv {layer[0]}->{layer[3]} {layer[1]}x{layer[2]} k{layer[4]} s{layer[5]}, batch {s.conv_batch}"
        )
        table.run("conv", item, lambda: _conv_timing(layer, s))


# --- training-step timings and memory -----------------------------------------------------------


def _time_steps(step, x, y, s: Settings) -> float:
    step(x, y)  # warm-up: compiles the kernels and fills the memory pool
    times = []
    for _ in range(s.steps):
        start = time.perf_counter()
        step(x, y)
        synchronize(s.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ours_step(method: str, arch: str, batch: int, s: Settings) -> tuple[float, str]:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, NUM_CLASSES, batch)
    trainer = _trainer(method, arch, s.device, np.float32)
    if s.device == "cuda":
        pool = backend._cupy.get_default_memory_pool()
        pool.free_all_blocks()
        seconds = _time_steps(trainer.step, x, y, s)
        return seconds, f"CuPy pool {pool.total_bytes() / 2**30:.2f} GiB"
    return _time_steps(trainer.step, x, y, s), ""


def _torch_step(method: str, arch: str, batch: int, s: Settings) -> tuple[float, str] | None:
    torch = torch_device(s.device)
    if torch is None:
        return None
    import torch_mirror as tm

    te.manual_seed(0)
    model = models.create(arch, num_classes=NUM_CLASSES)
    mirror = tm.create(arch, num_classes=NUM_CLASSES)
    tm.load_from(mirror, model)
    mirror.to(s.device)
    opt = torch.optim.SGD(mirror.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "l2w":
        wpn = tm.WeightPredictionNet(len(models.count_ops(model).mul_adds)).to(s.device)
        step = tm.L2WStep(
            mirror, wpn, opt, torch.optim.Adam(wpn.parameters(), lr=1e-4, weight_decay=1e-4)
        ).step
    else:
        step = tm.BaselineStep(mirror, opt).step
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)).to(s.device)
    y = torch.from_numpy(rng.integers(0, NUM_CLASSES, batch)).to(s.device)
    if s.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        seconds = _time_steps(step, x, y, s)
        torch.cuda.synchronize()
        return seconds, f"torch peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    return _time_steps(step, x, y, s), ""


def _step_row(method: str, arch: str, batch: int, s: Settings, times: dict, start: float):
    if time.perf_counter() - start > s.budget_s:
        raise TimeoutError(f"the time budget of {s.budget_s:.0f} s was spent before this measurement")
    ours, memory = _ours_step(method, arch, batch, s)
    times[(arch, method, batch)] = ours
    parts = [f"ours {ours:.3f} s"] + ([memory] if memory else [])
    theirs = _torch_step(method, arch, batch, s)
    if theirs is not None:
        parts[1:1] = [f"torch {theirs[0]:.3f} s", f"ours/torch {ours / theirs[0]:.2f}x"]
        parts += [theirs[1]] if theirs[1] else []
    return True, ", ".join(parts)


def step_section(table: Table, s: Settings, start: float) -> dict:
    times: dict = {}
    for arch in s.archs:
        for batch in s.batches:
            for method in ("baseline", "l2w"):
                table.run(
                    "step",
                    f"{arch} {method} batch {batch}, float32",
                    lambda: _step_row(method, arch, batch, s, times, start),
                )
    return times


def projection_section(table: Table, s: Settings, times: dict) -> None:
    batch = PAPER_BATCH if PAPER_BATCH in s.batches else max(s.batches)
    steps = EPOCHS * math.ceil(TRAIN_IMAGES / batch)
    for arch in s.archs:
        for method in ("baseline", "l2w"):

            def row(arch=arch, method=method):
                if (arch, method, batch) not in times:
                    raise LookupError(f"no step time at batch {batch}: its step row failed")
                seconds = times[(arch, method, batch)]
                return (
                    True,
                    f"{steps * seconds / 3600:.1f} h ({steps} steps of {seconds:.3f} s at batch {batch})",
                )

            table.run("projection", f"{arch} {method}, {EPOCHS} epochs of CIFAR", row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-parts",
        action="store_true",
        help="run the sections on the CPU with small sizes (no GPU needed)",
    )
    args = parser.parse_args(argv)
    if not args.cpu_parts and not backend.cupy_available():
        why = "CuPy is not installed" if backend._cupy is None else "CuPy sees no CUDA device"
        print(
            f"gpu_check: no usable GPU ({why}). This script checks the GPU path and does not run "
            "without one; install the extra with pip install -e '.[gpu]' on a machine with an NVIDIA "
            "GPU, or pass --cpu-parts to run its CPU-side sections.",
            file=sys.stderr,
        )
        return 2
    s = CPU_PARTS if args.cpu_parts else GPU
    start = time.perf_counter()
    table = Table()
    kernel_section(table, s)
    agreement_section(table, s)
    conv_section(table, s)
    times = step_section(table, s, start)
    projection_section(table, s, times)
    if s.device == "cuda":
        name = backend._cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        where = f"GPU {name}, CuPy {backend._cupy.__version__}"
    else:
        where = "CPU (--cpu-parts)"
    print(
        f"tinyexit GPU check on {where}; {time.perf_counter() - start:.0f} s; median of {s.steps} "
        f"timed steps after one warm-up step\n"
    )
    print(table.markdown())
    failed = table.failed()
    if failed:
        print(f"\n{failed} of {len(table.rows)} rows FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
