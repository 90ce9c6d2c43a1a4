"""The official recipe as the defaults: lr per SGD step, evaluation protocols, the paper's frozen WPN."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from tinyexit import cli, experiment
from tinyexit.data import BatchIterator
from tinyexit.evaluate import predict_probs
from tinyexit.experiment import RunConfig
from tinyexit.training import load_checkpoint, save_checkpoint

TINY = dict(
    arch="msdnet4_tiny", data="synthetic", train_subset=64, val_size=32, test_subset=32, batch_size=16
)
QUIET = dict(progress=False, log=lambda *_: None)


def _step_lrs(cfg: RunConfig) -> list[float]:
    """Train one loaded batch; return each real SGD step's effective lr, measured as Δθ / ∇θ."""
    run = experiment.Run(cfg, experiment.load_data(cfg))
    opt, measured = run.optimizer, []
    step = opt.step

    def measuring_step():
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        before = [(p.data.copy(), p.grad.data.copy()) for p in params]
        step()
        ratios = [(b - p.data)[np.abs(g) > 1e-3] / g[np.abs(g) > 1e-3] for p, (b, g) in zip(params, before)]
        ratios = np.concatenate(ratios)
        assert ratios.size > 100 and np.allclose(ratios, ratios[0], rtol=1e-3)  # one lr for every entry
        measured.append(float(ratios[0]))

    opt.step = measuring_step
    images, labels = next(iter(run.loader))
    run.trainer.step(images, labels)
    return measured


@pytest.mark.parametrize("weighting", ["wpn", "frozen", "fixed_increasing", "selection"])
def test_l2w_half_steps_take_lr_times_half_over_batch(weighting):
    """Official code: halves of 512 at 0.8 where the baseline takes 64 at 0.1, the same lr per sample."""
    cfg = RunConfig(**TINY, method="l2w", weighting=weighting, lr=0.4, momentum=0.0, weight_decay=0.0)
    assert cfg.step_lr == pytest.approx(0.2)
    assert _step_lrs(cfg) == pytest.approx([0.2, 0.2], rel=1e-3)  # two half-steps of 8 out of 16
    same = RunConfig(**TINY, method="l2w", lr=0.4, half_step_lr="same", momentum=0.0, weight_decay=0.0)
    assert _step_lrs(same) == pytest.approx([0.4, 0.4], rel=1e-3)


def test_baseline_step_takes_lr_on_the_whole_batch():
    cfg = RunConfig(**TINY, method="baseline", lr=0.4, momentum=0.0, weight_decay=0.0)
    assert cfg.step_lr == 0.4 and _step_lrs(cfg) == pytest.approx([0.4], rel=1e-3)


def test_official_batch_1024_gives_the_official_codes_0_8():
    cfg = RunConfig(method="l2w", batch_size=1024, lr=1.6)  # the supplementary's 0.1 x 1024 / 64
    assert cfg.step_lr == pytest.approx(0.8)  # what the official code steps each half of 512 with


def _subset() -> dict:
    """A 500-image CIFAR-10 subset when the development copy is there, else synthetic images."""
    if (SHARED_DATA / "cifar-10-batches-py" / "batches.meta").is_file():
        return dict(data="cifar10", data_root=str(SHARED_DATA), train_subset=500, test_subset=200)
    return dict(data="synthetic", train_subset=500, test_subset=200)


@pytest.mark.parametrize("protocol", ["holdout", "official"])
def test_both_evaluation_protocols_run_end_to_end(tmp_path, protocol):
    data = _subset()
    argv = ["train", "--arch", "msdnet4_tiny", "--method", "l2w", "--batch-size", "50", "--wpn-hidden", "8"]
    argv += ["--data", data["data"], "--train-subset", "500", "--test-subset", "200", "--max-steps", "2"]
    argv += ["--data-root", data["data_root"]] if "data_root" in data else []
    argv += ["--eval-protocol", protocol, "--val-size", "100" if protocol == "holdout" else "0"]
    assert cli.main(argv + ["--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["eval_protocol"] == protocol and metrics["config"]["eval_protocol"] == protocol
    assert metrics["images"]["train"] == 500 and metrics["images"]["test"] == 200
    assert len(metrics["dynamic"]) == 39
    assert all(0 <= p["accuracy"] <= 100 for p in metrics["dynamic"])
    if protocol == "holdout":
        assert metrics["images"]["val"] == 100 and "held-out" in metrics["thresholds_from"]
    else:
        assert metrics["images"]["val"] == 0
        assert (
            "augmented training set" in metrics["thresholds_from"]
            and "500 images" in metrics["thresholds_from"]
        )


def test_official_thresholds_come_from_the_augmented_training_images():
    cfg = RunConfig(**{**TINY, "val_size": 0}, eval_protocol="official", method="baseline")
    run = experiment.Run(cfg, experiment.load_data(cfg))
    probs, labels, source = experiment.threshold_set(run)
    train_images, train_labels = run.data["train"]
    assert len(run.data["val"][1]) == 0 and np.array_equal(labels, train_labels)
    loader = BatchIterator(
        train_images, train_labels, 500, shuffle=False, augment=True, normalize=run.data["normalization"]
    )
    augmented = np.concatenate([predict_probs(run.model, x) for x, _ in loader], axis=1)
    np.testing.assert_allclose(probs, augmented, rtol=1e-5, atol=1e-6)
    plain = predict_probs(run.model, train_images, normalization=run.data["normalization"])
    assert not np.allclose(probs, plain, atol=1e-4)  # crops and flips were applied
    assert "augmented training set" in source


def test_val_size_zero_with_the_holdout_protocol_is_a_clear_error(tmp_path, capsys):
    argv = ["train", "--data", "synthetic", "--train-subset", "32", "--val-size", "0", "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "eval_protocol='official'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="val_size must be at least 0"):
        RunConfig(val_size=-1).validate()


def test_frozen_wpn_from_a_finished_l2w_run(tmp_path):
    """The paper's frozen ablation takes a converged WPN; the control freezes the initial one."""
    l2w_cfg = RunConfig(**TINY, method="l2w", wpn_hidden=8, meta_lr=1e-2)
    l2w_run = experiment.train(l2w_cfg, tmp_path / "l2w", **QUIET)
    learned = {k: v.numpy().copy() for k, v in l2w_run.wpn.state_dict().items()}
    frozen_cfg = RunConfig(
        **TINY, method="l2w", weighting="frozen", wpn_hidden=8, frozen_wpn=str(tmp_path / "l2w")
    )
    frozen = experiment.train(frozen_cfg, tmp_path / "frozen", **QUIET)
    control = experiment.train(
        RunConfig(**TINY, method="l2w", weighting="frozen", wpn_hidden=8), tmp_path / "c", **QUIET
    )
    for k, v in frozen.wpn.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), learned[k])  # loaded, then never trained
        assert not np.allclose(control.wpn.state_dict()[k].numpy(), learned[k])
    resumed = experiment.load_run(tmp_path / "frozen" / experiment.CHECKPOINT)
    for k, v in resumed.wpn.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), learned[k])
    argv = ["train", "--data", "synthetic", "--train-subset", "64", "--val-size", "32", "--batch-size", "16"]
    argv += ["--arch", "msdnet4_tiny", "--method", "l2w", "--weighting", "frozen", "--wpn-hidden", "8"]
    assert (
        cli.main(
            argv
            + ["--frozen-wpn", str(tmp_path / "l2w"), "--test-subset", "32", "--out", str(tmp_path / "cli")]
        )
        == 0
    )


def test_frozen_wpn_sources_that_are_refused(tmp_path):
    base = dict(TINY, method="l2w", wpn_hidden=8)
    experiment.train(RunConfig(**base, epochs=2), tmp_path / "unfinished", stop_after=1, **QUIET)
    experiment.train(RunConfig(**{**base, "method": "baseline"}), tmp_path / "baseline", **QUIET)
    experiment.train(RunConfig(**{**base, "wpn_hidden": 4}), tmp_path / "narrow", **QUIET)
    frozen = dict(base, weighting="frozen")
    for source, message in (
        ("unfinished", "unfinished"),
        ("baseline", "not an L2W run"),
        ("narrow", "another shape"),
        ("missing", "no checkpoint"),
    ):
        cfg = RunConfig(**frozen, frozen_wpn=str(tmp_path / source))
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            experiment.train(cfg, tmp_path / f"frozen-{source}", **QUIET)
    with pytest.raises(ValueError, match="needs method='l2w' and weighting='frozen'"):
        RunConfig(**base, frozen_wpn=str(tmp_path / "unfinished")).validate()


def test_checkpoints_from_before_the_recipe_options_keep_their_recipe(tmp_path):
    """A run saved before half_step_lr and init existed trained with "same" and "he": it resumes so."""
    run = experiment.train(
        RunConfig(**TINY, method="l2w", wpn_hidden=8, epochs=2), tmp_path, stop_after=1, **QUIET
    )
    state = load_checkpoint(tmp_path / experiment.CHECKPOINT)
    for name in ("half_step_lr", "init", "eval_protocol", "frozen_wpn"):
        del state["config"][name]
    save_checkpoint(tmp_path / experiment.CHECKPOINT, state)
    resumed = experiment.train(None, tmp_path, resume=True, **QUIET)
    assert (resumed.cfg.half_step_lr, resumed.cfg.init, resumed.cfg.eval_protocol) == (
        "same",
        "he",
        "holdout",
    )
    assert run.cfg.half_step_lr == "scaled" and resumed.epoch == 2
