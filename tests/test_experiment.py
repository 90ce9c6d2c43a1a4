"""Runs end to end on synthetic data: train, checkpoint, resume, evaluate, and the CLI's errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyexit import experiment
from tinyexit.backend import DEVICES
from tinyexit.experiment import RunConfig
from tinyexit.training import load_checkpoint, save_checkpoint

SMALL = dict(
    arch="msdnet4_tiny",
    data="synthetic",
    train_subset=96,
    val_size=64,
    test_subset=64,
    batch_size=32,
    augment=True,
)


@pytest.mark.parametrize("method", ["baseline", "l2w"])
def test_resume_continues_the_same_run(tmp_path, method):
    cfg = RunConfig(**SMALL, method=method, epochs=2, wpn_hidden=16)
    straight = experiment.train(cfg, tmp_path / "a", progress=False, log=lambda *_: None)
    experiment.train(cfg, tmp_path / "b", progress=False, stop_after=1, log=lambda *_: None)  # "interrupted"
    resumed = experiment.train(None, tmp_path / "b", resume=True, progress=False, log=lambda *_: None)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert resumed.epoch == 2 and len(resumed.history) == 2


def test_evaluate_writes_metrics_and_plots(tmp_path):
    run = experiment.train(
        RunConfig(**SMALL, method="l2w", wpn_hidden=8), tmp_path, progress=False, log=lambda *_: None
    )
    metrics = experiment.evaluate(run, tmp_path, log=lambda *_: None)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert len(saved["anytime_accuracy"]) == 4 and len(saved["dynamic"]) == 39
    assert saved["mul_adds"] == metrics["mul_adds"] and all(m > 0 for m in saved["mul_adds"])
    for name in ("dynamic.png", "exit_accuracy.png", "weight_vs_loss.png"):
        assert (tmp_path / name).stat().st_size > 1000
    again = experiment.load_run(tmp_path / "checkpoint.npz")
    assert experiment.evaluate(again, log=lambda *_: None)["anytime_accuracy"] == metrics["anytime_accuracy"]


def test_resume_refuses_fewer_epochs_and_extends_to_more(tmp_path):
    experiment.train(
        RunConfig(**SMALL, epochs=2), tmp_path, progress=False, stop_after=1, log=lambda *_: None
    )
    with pytest.raises(ValueError, match="configured for 2 epochs"):
        experiment.train(
            RunConfig(**SMALL, epochs=1), tmp_path, resume=True, progress=False, log=lambda *_: None
        )
    lines = []
    run = experiment.train(
        RunConfig(**SMALL, epochs=3), tmp_path, resume=True, progress=False, log=lines.append
    )
    steps = len(run.loader)
    assert run.epoch == 3 and run.schedule.T_max == 3 * steps and run.schedule.last_step == 3 * steps
    assert run.extensions == [{"at_epoch": 1, "from_epochs": 2, "to_epochs": 3}]
    assert "extended the run from 2 to 3 epochs" in lines[1]
    assert load_checkpoint(tmp_path / "checkpoint.npz")["extensions"] == run.extensions


def test_a_run_is_never_overwritten_silently(tmp_path):
    experiment.train(RunConfig(**SMALL), tmp_path, progress=False, log=lambda *_: None)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        experiment.train(RunConfig(**SMALL), tmp_path, progress=False, log=lambda *_: None)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"x": 1})

    def killed_mid_write(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"x": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["x"] == 1 and list(tmp_path.iterdir()) == [path]
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a tinyexit checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "resnet"], "unknown architecture"),
        (["--data", "synthetic", "--epochs", "0"], "epochs must be at least 1"),
        (["--data", "cifar10", "--data-root", "{broken}"], "data_batch_1"),
    ],
)
def test_cli_errors_are_clear(tmp_path, args, message):
    broken = (
        tmp_path / "data" / "cifar-10-batches-py"
    )  # an incomplete, corrupted copy: reported, never downloaded over
    broken.mkdir(parents=True)
    (broken / "data_batch_1").write_bytes(b"garbage")
    args = [a.replace("{broken}", str(broken.parent)) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "tinyexit", "train", "--out", str(tmp_path / "r"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_cli_eval_of_a_missing_checkpoint(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinyexit", "eval", "--checkpoint", str(tmp_path / "none.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "no checkpoint" in result.stderr


@pytest.mark.parametrize(
    "field, value",
    [
        ("weighting", "uniform"),
        ("meta_objective", "full"),
        ("wpn_input", "logits"),
        ("half_step_lr", "double"),
        ("init", "xavier"),
        ("eval_protocol", "test"),
    ],
)
def test_validate_names_a_bad_l2w_choice(field, value):
    with pytest.raises(ValueError, match=f"unknown {field} '{value}'"):
        RunConfig(**{field: value}).validate()


def test_cli_offers_the_library_choices():
    from tinyexit import cli, l2w

    parser = cli.argparse.ArgumentParser()
    cli._train_parser(parser.add_subparsers())
    train = parser._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: tuple(a.choices) for a in train._actions if a.choices}
    assert choices == {
        "data": experiment.DATASETS,
        "method": experiment.METHODS,
        "wpn_input": l2w.WPN_INPUTS,
        "weighting": l2w.WEIGHTINGS,
        "meta_objective": l2w.META_OBJECTIVES,
        "device": DEVICES,
        "half_step_lr": experiment.HALF_STEP_LRS,
        "init": experiment.INITS,
        "eval_protocol": experiment.EVAL_PROTOCOLS,
    }


def test_cli_names_its_own_flags_for_an_existing_run(tmp_path):
    experiment.train(RunConfig(**SMALL), tmp_path, progress=False, log=lambda *_: None)
    command = [sys.executable, "-m", "tinyexit", "train", "--data", "synthetic", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "add --resume" in result.stderr and "resume=True" not in result.stderr
    result = subprocess.run(
        [*command[:-1], str(tmp_path / "empty"), "--resume"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "--resume: no checkpoint.npz" in result.stderr
