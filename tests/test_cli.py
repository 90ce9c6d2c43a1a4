"""The command line: ``python -m tinyexit demo`` trains baseline and L2W for real and prints both."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tinyexit import demo
from tinyexit.demo import paired_difference


def _demo_output(args: list[str], data_root, timeout: int) -> str:
    """The demo's standard output on the embedded synthetic images (an empty data root: no CIFAR)."""
    return subprocess.run(
        [sys.executable, "-m", "tinyexit", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        env={**os.environ, "TINYEXIT_DATA": str(data_root)},
    ).stdout


DEMO_EXIT_MARGIN = {"baseline": 5, "l2w": 2}
"""Points by which the demo's last exit must beat its first: the baseline shows how much harder the
data is for an early exit (a flat dataset fails it); L2W lifts its early exits most, so its own
gap is smaller."""


def _check_demo(out: str, epochs: int, exit_margin: dict, budget_margin: float) -> None:
    """Losses fall, late exits beat early ones by ``exit_margin[method]`` points and the budgeted
    curve rises, for both methods."""
    assert "using synthetic images" in out
    sections = re.split(r"^--- (baseline|l2w)$", out, flags=re.M)
    by_method = dict(zip(sections[1::2], sections[2::2]))
    assert set(by_method) == {"baseline", "l2w"}
    exit_accuracies = {}
    for method, text in by_method.items():
        losses = [float(v) for v in re.findall(r"epoch \d+: loss ([0-9.]+)", text)]
        assert len(losses) == epochs and losses[-1] < losses[0], (method, losses)
        accuracy_line = re.search(r"anytime accuracy per exit: (.*)", text).group(1)
        accuracies = [float(v) for v in re.findall(r"([0-9.]+)%", accuracy_line)]
        margin = exit_margin[method]
        assert len(accuracies) == 4 and accuracies[-1] >= accuracies[0] + margin, (method, accuracies)
        exit_accuracies[method] = np.array(accuracies)
    budgeted = re.findall(
        r"^  q=([0-9.]+) +baseline +([0-9.]+) @ ([0-9.]+) +l2w +([0-9.]+) @ ([0-9.]+)$", out, re.M
    )
    assert [q for q, *_ in budgeted] == ["0.05", "0.5", "1.0", "1.95"], budgeted
    for accuracy, mul_adds in ((1, 2), (3, 4)):  # baseline, then l2w
        (low, low_cost), (high, high_cost) = (
            (float(row[accuracy]), float(row[mul_adds])) for row in (budgeted[0], budgeted[-1])
        )
        assert high_cost > 2 * low_cost and high >= low + budget_margin, budgeted
    differences = re.findall(r"exit \d: +([+-][0-9.]+) \+- ([0-9.]+)", out)
    assert len(differences) == 4 and all(float(se) > 0 for _, se in differences), differences
    # the paired differences are those of the accuracies printed above, up to their rounding
    gaps = exit_accuracies["l2w"] - exit_accuracies["baseline"]
    np.testing.assert_allclose([float(d) for d, _ in differences], gaps, atol=0.16)


def test_demo_trains_both_methods_and_late_exits_are_more_accurate(tmp_path):
    out = _demo_output(["--epochs", "2", "--n-train", "640"], tmp_path, timeout=600)
    _check_demo(out, epochs=2, exit_margin=DEMO_EXIT_MARGIN, budget_margin=3)


@pytest.mark.slow
def test_the_full_demo_shows_early_exits_worse_than_late_ones(tmp_path):
    _check_demo(
        _demo_output([], tmp_path, timeout=1200), epochs=2, exit_margin=DEMO_EXIT_MARGIN, budget_margin=3
    )


def test_the_demo_trains_l2w_in_a_second_process_with_the_same_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYEXIT_DATA", str(tmp_path))
    settings = dict(epochs=1, n_train=128, n_test=100)
    outputs, results = {}, {}
    for parallel in (True, False):
        results[parallel] = demo.run(**settings, parallel=parallel)
        outputs[parallel] = capsys.readouterr().out
    assert ("second process" in outputs[True]) == ((os.cpu_count() or 1) >= 2)
    assert "second process" not in outputs[False]
    for out in outputs.values():  # each method's lines under its own header, baseline first
        assert re.findall(r"^--- (\w+)$", out, re.M) == ["baseline", "l2w"]
    losses = {
        p: [float(v) for v in re.findall(r"epoch 1: loss ([0-9.]+)", out)] for p, out in outputs.items()
    }
    assert len(losses[True]) == 2 and losses[True][0] != losses[True][1]
    # the same training either way, up to the order of float sums when thread counts differ
    np.testing.assert_allclose(losses[True], losses[False], atol=2e-3)
    for method in ("baseline", "l2w"):
        np.testing.assert_allclose(
            results[True][method]["anytime_accuracy"], results[False][method]["anytime_accuracy"], atol=1.0
        )


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
