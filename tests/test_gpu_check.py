"""bench/gpu_check.py: it refuses loudly without a GPU, its CPU-side sections run and pass here,
and a failing section is reported as FAIL while the others still run."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from conftest import REPO

from tinyexit.backend import cupy_available

sys.path.insert(0, str(REPO / "bench"))
import gpu_check  # noqa: E402


@pytest.mark.skipif(cupy_available(), reason="the refusal needs a machine without a usable GPU")
def test_refuses_without_a_gpu():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "no usable GPU" in out.stderr and "--cpu-parts" in out.stderr
    assert "| section |" not in out.stdout


def _small(monkeypatch):
    """Every section once, at the smallest sizes."""
    small = dataclasses.replace(gpu_check.CPU_PARTS, batches=(2,), conv_batch=1)
    monkeypatch.setattr(gpu_check, "CPU_PARTS", small)
    monkeypatch.setattr(gpu_check, "AGREEMENT_PRESETS", ("msdnet4_tiny",))
    monkeypatch.setattr(gpu_check, "CONV_LAYERS", gpu_check.CONV_LAYERS[:1])


def test_cpu_parts_every_section_passes(monkeypatch, capsys):
    _small(monkeypatch)
    assert gpu_check.main(["--cpu-parts"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    sections = {row.split(" | ")[0].strip("| ") for row in rows}
    assert sections == {"kernels", "agreement", "conv", "step", "projection"}
    assert all(" | ok | " in row for row in rows), table
    assert "gradgradcheck batch_norm (training) | ok" in table
    assert "msdnet4_tiny l2w step, float64 | ok | vs reference kernels" in table
    assert "300 epochs of CIFAR | ok |" in table and "3750000 steps" not in table  # batch 2: 7500000


def test_a_failing_section_is_reported_and_the_run_goes_on(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "CPU_PARTS", dataclasses.replace(gpu_check.CPU_PARTS, archs=()))
    monkeypatch.setattr(gpu_check, "AGREEMENT_PRESETS", ())
    monkeypatch.setattr(gpu_check, "CONV_LAYERS", [])

    def broken(device):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(gpu_check, "_kernel_agreement", broken)
    assert gpu_check.main(["--cpu-parts"]) == 1
    captured = capsys.readouterr()
    assert (
        "| kernels | cpu kernels vs NumPy reference | FAIL | RuntimeError: deliberately broken |"
        in captured.out
    )
    assert "| kernels | gradgradcheck batch_norm (training) | ok | float64 |" in captured.out
    assert "1 of 13 rows FAILED" in captured.err


@pytest.mark.slow
def test_cpu_parts_script_exits_zero():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-parts"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "FAIL" not in out.stdout and "| projection | ranet" not in out.stdout
    assert out.stdout.count(" | ok | ") == 24
