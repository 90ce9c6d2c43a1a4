"""The command line: ``python -m tinyexit demo`` trains baseline and L2W for real and prints both."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tinyexit.demo import paired_difference


def test_demo_trains_both_methods_and_their_losses_fall():
    out = subprocess.run(
        [sys.executable, "-m", "tinyexit", "demo", "--epochs", "2", "--n-train", "480"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    sections = re.split(r"^--- (baseline|l2w)$", out, flags=re.M)
    by_method = dict(zip(sections[1::2], sections[2::2]))
    assert set(by_method) == {"baseline", "l2w"}
    for method, text in by_method.items():
        losses = [float(v) for v in re.findall(r"epoch \d+: loss ([0-9.]+)", text)]
        assert len(losses) == 2 and losses[1] < losses[0], (method, losses)
        accuracy_line = re.search(r"anytime accuracy per exit: (.*)", text).group(1)
        accuracies = [float(v) for v in re.findall(r"([0-9.]+)%", accuracy_line)]
        assert len(accuracies) == 4 and max(accuracies) > 15, (method, accuracies)  # chance is 10%
    assert re.search(r"q=0\.5 +baseline +[0-9.]+ @ [0-9.]+ +l2w +[0-9.]+ @ [0-9.]+", out)
    differences = re.findall(r"exit \d: +([+-][0-9.]+) \+- ([0-9.]+)", out)
    assert len(differences) == 4 and all(float(se) > 0 for _, se in differences), differences


def test_paired_difference_is_the_mean_difference_with_its_standard_error():
    baseline = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    l2w = np.array([1, 1, 1, 0, 1, 1, 0, 1], dtype=bool)
    diff, se = paired_difference(baseline, l2w)
    d = np.array([0, 0, 1, 0, 0, 1, -1, 0])  # l2w - baseline per image
    assert diff == pytest.approx(100 * d.mean())  # 12.5 points
    assert se == pytest.approx(100 * d.std(ddof=1) / np.sqrt(8))
    with pytest.raises(ValueError, match="at least 2 test images"):
        paired_difference(baseline[:1], l2w[:1])


def test_unknown_command_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "tinyexit", "fly"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
