"""The comparison command (bench/reproduce.py) end to end in its quick mode, and the aggregation it uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA

from tinyexit import experiment
from tinyexit.evaluate import common_budgets, interpolate_curve, paired_differences
from tinyexit.experiment import RunConfig

sys.path.insert(0, str(REPO / "bench"))
import comparison  # noqa: E402  (bench/comparison.py, the pieces of the command)

COMMAND = [sys.executable, str(REPO / "bench" / "reproduce.py")]
TINY = dict(
    arch="msdnet4_tiny", data="synthetic", train_subset=32, val_size=16, test_subset=32, batch_size=16
)


def _point(mul_adds: float, accuracy: float) -> dict:
    return {"mul_adds": mul_adds, "accuracy": accuracy}


def test_interpolate_curve_on_a_hand_made_curve():
    # unsorted, with two points at the same cost (averaged: 30) and a cost that falls back (q order)
    curve = [_point(2.0, 20.0), _point(1.0, 10.0), _point(4.0, 40.0), _point(4.0, 20.0), _point(3.0, 50.0)]
    got = interpolate_curve(curve, [1.0, 1.5, 2.0, 2.25, 3.0, 3.5, 4.0, 0.5, 4.5])
    np.testing.assert_allclose(got[:7], [10.0, 15.0, 20.0, 27.5, 50.0, 40.0, 30.0])
    assert np.isnan(got[7:]).all()  # no extrapolation
    with pytest.raises(ValueError, match="empty"):
        interpolate_curve([], [1.0])


def test_common_budgets_cover_every_curve():
    a, b = [_point(1.0, 0), _point(5.0, 0)], [_point(2.0, 0), _point(4.0, 0), _point(6.0, 0)]
    np.testing.assert_allclose(common_budgets([a, b], num=5), [2.0, 2.75, 3.5, 4.25, 5.0])
    assert common_budgets([a, [_point(5.0, 0), _point(7.0, 0)]]).tolist() == [5.0]
    assert common_budgets([a, [_point(6.0, 0), _point(7.0, 0)]]).size == 0


def _fake_run(
    seed: int, anytime: list[float], curve: list[tuple[float, float]], seconds: list[float]
) -> dict:
    return {
        "config": {"arch": "x", "epochs": len(seconds), "seed": seed},
        "anytime_accuracy": anytime,
        "dynamic": [_point(m, a) for m, a in curve],
        "history": [{"seconds": s} for s in seconds],
        "mul_adds": [1.0, 3.0],
    }


def test_paired_differences_average_each_seed_over_the_budgets_where_both_are_defined():
    a = [[70.0, 72.0, np.nan], [60.0, 61.0, 62.0]]
    b = [[69.0, 73.0, 50.0], [59.0, 59.0, 59.0]]
    np.testing.assert_allclose(paired_differences(a, b), [0.0, 2.0])
    with pytest.raises(ValueError, match="one shape"):
        paired_differences(a, b[:1])


def test_aggregate_runs_is_numpy_mean_and_std_over_seeds():
    runs = [
        _fake_run(0, [50.0, 60.0], [(1.0, 50.0), (3.0, 60.0)], [10.0, 12.0]),
        _fake_run(1, [54.0, 61.0], [(1.5, 56.0), (2.5, 58.0)], [14.0, 14.0]),
    ]
    budgets = [1.5, 2.0, 2.5]
    agg = comparison.aggregate_runs(runs, budgets)
    assert agg["seeds"] == [0, 1] and agg["n_seeds"] == 2 and agg["config"] == {"arch": "x", "epochs": 2}
    per_seed = np.array([[52.5, 55.0, 57.5], [56.0, 57.0, 58.0]])
    np.testing.assert_allclose(agg["accuracy_at_budgets"]["per_run"], per_seed)
    np.testing.assert_allclose(agg["accuracy_at_budgets"]["mean"], per_seed.mean(0))
    np.testing.assert_allclose(agg["accuracy_at_budgets"]["std"], per_seed.std(0))
    np.testing.assert_allclose(agg["anytime_accuracy"]["mean"], [52.0, 60.5])
    np.testing.assert_allclose(agg["anytime_accuracy"]["std"], [2.0, 0.5])
    assert agg["seconds_per_epoch"]["mean"] == 12.5 and agg["seconds_per_epoch"]["std"] == 1.5
    runs[1]["config"]["epochs"] = 3
    with pytest.raises(ValueError, match="seed 1 was run with another configuration: epochs"):
        comparison.aggregate_runs(runs, budgets)


def test_run_config_of_each_method(tmp_path):
    setting, base = comparison.Setting("msdnet4_tiny", "synthetic"), dict(epochs=1, train_subset=32)
    cfgs = {
        m: comparison.run_config(setting, m, 3, base) for m in comparison.METHODS if m != "frozen_trained"
    }
    cfgs["frozen_trained"] = comparison.run_config(setting, "frozen_trained", 3, base, out=tmp_path)
    assert [(c.method, c.weighting, c.seed) for c in cfgs.values()] == [
        ("baseline", "wpn", 3),
        ("l2w", "wpn", 3),
        ("l2w", "frozen", 3),
        ("l2w", "frozen", 3),
    ]
    assert cfgs["frozen"].frozen_wpn is None
    trained = comparison.run_config(setting, "frozen_trained", 3, base, out=tmp_path)
    assert trained.frozen_wpn == str(comparison.run_dir(tmp_path.resolve(), setting, "l2w", 3))
    with pytest.raises(ValueError, match="unknown method 'meta'; choose from baseline, l2w, frozen"):
        comparison.run_config(setting, "meta", 0, base)
    with pytest.raises(ValueError, match="frozen_trained"):
        comparison.reproduce([setting], [0], base, tmp_path, methods=["baseline", "frozen_trained"])


def test_ensure_run_resumes_an_unfinished_run_and_refuses_another(tmp_path):
    cfg = RunConfig(**TINY, epochs=2)
    experiment.train(cfg, tmp_path, progress=False, stop_after=1, log=lambda *_: None)  # "interrupted"
    lines = []
    metrics = comparison.ensure_run(cfg, tmp_path, log=lines.append)
    assert metrics["epochs_trained"] == 2 and any(line.startswith("resumed") for line in lines)
    assert comparison.ensure_run(cfg, tmp_path, log=lines.append) == json.loads(
        (tmp_path / "metrics.json").read_text()
    )
    assert lines[-1].startswith("reusing the finished run")
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match="holds another run .*lr=0.1 there, 0.2 requested"):
        comparison.ensure_run(RunConfig(**TINY, epochs=2, lr=0.2), tmp_path)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def _interp_reference(curve: list[dict], budgets: np.ndarray) -> np.ndarray:
    """The curve at the budgets, written independently: points of equal cost averaged, then np.interp."""
    by_cost: dict[float, list[float]] = {}
    for p in curve:
        by_cost.setdefault(p["mul_adds"], []).append(p["accuracy"])
    costs = sorted(by_cost)
    return np.interp(budgets, costs, [np.mean(by_cost[c]) for c in costs])


def _check_summary(out: Path, seeds: list[int]) -> dict:
    """Structure and values of the summary: every figure recomputed with NumPy from the runs' metrics."""
    summary = json.loads((out / "metrics.json").read_text())
    for entry in summary["settings"].values():
        assert set(entry["methods"]) == {"baseline", "l2w", "frozen", "frozen_trained"}
        budgets = np.array(entry["budgets"])
        assert len(budgets) == 20 and (np.diff(budgets) > 0).all()
        for method, agg in entry["methods"].items():
            runs = [json.loads((out / d / "metrics.json").read_text()) for d in entry["runs"][method]]
            assert agg["seeds"] == seeds and agg["n_seeds"] == len(seeds)
            assert {
                k: agg["config"][k] for k in comparison.METHOD_CONFIGS[method]
            } == comparison.METHOD_CONFIGS[method]
            assert agg["config"]["weighting"] == ("frozen" if method.startswith("frozen") else "wpn")
            if method == "frozen_trained":  # each seed froze the WPN its own L2W seed learned
                for r, d in zip(runs, entry["runs"]["l2w"]):
                    assert r["config"]["frozen_wpn"] == str((out / d).resolve())
            assert agg["config"]["arch"] == entry["arch"]
            assert agg["config"]["long_tail"] == entry["long_tail"] and "seed" not in agg["config"]
            anytime = np.array([r["anytime_accuracy"] for r in runs])
            assert anytime.shape == (len(seeds), len(entry["mul_adds"]))
            np.testing.assert_allclose(agg["anytime_accuracy"]["mean"], anytime.mean(0))
            np.testing.assert_allclose(agg["anytime_accuracy"]["std"], anytime.std(0))
            at = np.array([_interp_reference(r["dynamic"], budgets) for r in runs])
            np.testing.assert_allclose(agg["accuracy_at_budgets"]["mean"], at.mean(0))
            np.testing.assert_allclose(agg["accuracy_at_budgets"]["std"], at.std(0))
            epoch_seconds = [np.mean([h["seconds"] for h in r["history"]]) for r in runs]
            np.testing.assert_allclose(agg["seconds_per_epoch"]["mean"], np.mean(epoch_seconds))
            assert all(r["mul_adds"] == entry["mul_adds"] for r in runs)
        assert len(entry["plots"]) == 3 and all((out / p).stat().st_size > 1000 for p in entry["plots"])
    return summary


def test_quick_mode_end_to_end(tmp_path):
    out = tmp_path / "out"
    first = subprocess.run(
        [*COMMAND, "--quick", "--data", "synthetic", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    summary = _check_summary(out, seeds=[0, 1])
    assert list(summary["settings"]) == ["synthetic/msdnet4_tiny", "synthetic-lt100/msdnet4_tiny"]
    assert summary["settings"]["synthetic-lt100/msdnet4_tiny"]["long_tail"] == 100
    assert summary["options"]["quick"] and summary["options"]["epochs"] == 1
    assert "| L2W top-1 (%) |" in first and "| frozen WPN top-1 (%) |" in first
    assert (
        "| expected Mul-Adds (M) | baseline top-1 (%) | L2W top-1 (%) | frozen WPN top-1 (%) | frozen trained "
        "WPN top-1 (%) | L2W − baseline | L2W − frozen WPN | L2W − frozen trained WPN |" in first
    )
    assert (out / "summary.md").read_text() in first
    for entry in summary["settings"].values():  # paired gains: per seed, mean over the budgets
        at = {m: np.array(agg["accuracy_at_budgets"]["per_run"]) for m, agg in entry["methods"].items()}
        for a, b, name in (("l2w", "baseline", "L2W − baseline"), ("l2w", "frozen", "L2W − frozen WPN")):
            d = (at[a] - at[b]).mean(axis=1)
            assert (
                f"{name} seed by seed, mean over the budgets: {d[0]:+.2f} (seed 0), {d[1]:+.2f} (seed 1); "
                f"mean {d.mean():+.2f}."
            ) in first

    again = subprocess.run(
        [*COMMAND, "--quick", "--data", "synthetic", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert again.count("reusing the finished run") == 16 and "epoch 1:" not in again
    assert json.loads((out / "metrics.json").read_text())["settings"] == summary["settings"]

    long_tail_only = subprocess.run(
        [*COMMAND, "--quick", "--data", "synthetic", "--archs", "none", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert long_tail_only.count("reusing the finished run") == 8
    assert list(json.loads((out / "metrics.json").read_text())["settings"]) == [
        "synthetic-lt100/msdnet4_tiny"
    ]
    nothing = subprocess.run(
        [*COMMAND, "--quick", "--archs", "none", "--long-tail-arch", "none", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert nothing.returncode == 2 and "leave nothing to compare" in nothing.stderr

    refused = subprocess.run(
        [*COMMAND, "--quick", "--data", "synthetic", "--epochs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "holds another run (epochs=1 there, 2 requested)" in refused.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "cifar-10-batches-py").is_dir(), reason="needs the CIFAR-10 copy")
def test_quick_mode_on_cifar10(tmp_path):
    out = tmp_path / "out"
    subprocess.run(
        [*COMMAND, "--quick", "--data-root", str(SHARED_DATA), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    summary = _check_summary(out, seeds=[0, 1])
    assert list(summary["settings"]) == ["cifar10/msdnet4_tiny", "cifar10-lt100/msdnet4_tiny"]
    assert summary["settings"]["cifar10/msdnet4_tiny"]["methods"]["l2w"]["images"] == {
        "train": 160,
        "val": 16,
        "test": 64,
    }
