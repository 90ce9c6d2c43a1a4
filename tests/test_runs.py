"""Runs and their files: safe checkpoints, divergence, validation, locks, overwrites, data root, Numba cache."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from conftest import SHARED_DATA

from tinyexit import cli, experiment
from tinyexit.data import DatasetNotFoundError, load_cifar10
from tinyexit.experiment import CHECKPOINT, RunConfig
from tinyexit.training import CheckpointError, DivergenceError, load_checkpoint, save_checkpoint
from tinyexit.training.checkpoint import atomic_savez
from tinyexit.training.run_lock import LOCK_NAME, RunFolderInUseError, RunLock

SMALL = dict(
    arch="msdnet4_tiny", data="synthetic", train_subset=64, val_size=32, test_subset=32, batch_size=32
)
QUIET = dict(progress=False, log=lambda *_: None)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tinyexit", *map(str, args)], capture_output=True, text=True, timeout=300
    )


class Payload:
    """Unpickling this creates the marker file: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------- safe checkpoints


def test_checkpoint_round_trip_keeps_types_and_values(tmp_path):
    rng = np.random.default_rng(7)
    state = {
        "weights": {"w": rng.standard_normal((2, 3)).astype(np.float32)},
        "optimizer": {
            "state": {0: {"step": np.int64(3), "m": np.ones(2)}},
            "groups": [{"betas": (0.9, 0.999)}],
        },
        "rng": rng.bit_generator.state,
        "history": [{"loss": float("nan"), "epoch": 1}],
        "none": None,
    }
    back = load_checkpoint(save_checkpoint(tmp_path / "c.npz", state))
    assert back["weights"]["w"].dtype == np.float32
    np.testing.assert_array_equal(back["weights"]["w"], state["weights"]["w"])
    assert back["optimizer"]["state"][0]["step"] == 3 and isinstance(
        back["optimizer"]["state"][0]["step"], np.int64
    )
    assert back["optimizer"]["groups"][0]["betas"] == (0.9, 0.999)
    assert back["rng"] == state["rng"] and np.isnan(back["history"][0]["loss"]) and back["none"] is None
    with pytest.raises(TypeError, match="cannot hold a set"):
        save_checkpoint(tmp_path / "c.npz", {"x": {1, 2}})
    assert load_checkpoint(tmp_path / "c.npz")["rng"] == state["rng"]  # the failed save left it intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_a_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "c.npz"
    path.write_bytes(pickle.dumps({"format": 1, "model": Payload(marker)}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_foreign_truncated_and_altered_files_are_clear_errors(tmp_path):
    good = save_checkpoint(tmp_path / "good.npz", {"w": np.arange(1000.0), "epoch": 3}).read_bytes()
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    altered = bytearray(good)
    altered[200] ^= 0xFF  # inside the array data: the member's CRC-32 no longer matches
    (tmp_path / "altered.npz").write_bytes(bytes(altered))
    (tmp_path / "text.npz").write_text("hello")
    for name, message in [
        ("foreign.npz", "not a tinyexit checkpoint"),
        ("truncated.npz", "truncated or damaged"),
        ("altered.npz", "truncated or damaged"),
        ("text.npz", "not a NumPy .npz archive"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / name)


def test_another_format_version_is_named(tmp_path, monkeypatch):
    from tinyexit.training import checkpoint

    monkeypatch.setattr(checkpoint, "FORMAT_VERSION", 99)
    path = save_checkpoint(tmp_path / "c.npz", {"x": 1})
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="format version 99; this version of tinyexit reads version 2"):
        load_checkpoint(path)


def test_cli_eval_and_resume_refuse_a_crafted_checkpoint(tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT).write_bytes(pickle.dumps({"format": 1, "config": Payload(marker)}))
    for args in (["eval", "--checkpoint", run / CHECKPOINT], ["train", "--out", run, "--resume"]):
        result = run_cli(*args)
        assert result.returncode == 2 and "pickle" in result.stderr and "Traceback" not in result.stderr
        assert not marker.exists()


# ---------------------------------------------------------------- divergence


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = RunConfig(**SMALL, epochs=2)
    experiment.train(cfg, tmp_path, stop_after=1, **QUIET)
    before = (tmp_path / CHECKPOINT).read_bytes()
    restore = experiment.Run.restore

    def restore_with_a_huge_lr(self, state):  # the resumed epochs run at an lr far too high
        restore(self, state)
        self.schedule.base_lrs = [[1e300 for _ in b] for b in self.schedule.base_lrs]

    monkeypatch.setattr(experiment.Run, "restore", restore_with_a_huge_lr)
    where = r"diverged at epoch 2, (step \d/2: the loss is nan|its last step: weight)"
    with pytest.raises(DivergenceError, match=where) as e:
        experiment.train(None, tmp_path, resume=True, **QUIET)
    assert "learning rate (lr=0.1) is probably too high" in str(e.value)
    assert f"last good checkpoint (epoch 1) is kept in {tmp_path / CHECKPOINT}" in str(e.value)
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_huge_lr_stops_in_the_first_epoch_with_a_clear_message(tmp_path):
    result = run_cli(
        "train", "--data", "synthetic", "--train-subset", 64, "--val-size", 32, "--test-subset", 32,
        "--batch-size", 16, "--lr", 1e12, "--out", tmp_path,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "training diverged at epoch 1, step" in result.stderr and "lr=1000000000000.0" in result.stderr
    assert "No checkpoint was written" in result.stderr and not (tmp_path / CHECKPOINT).exists()


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_subset", 0, "train_subset must be at least 1"),
        ("train_subset", -5, "train_subset must be at least 1"),
        ("test_subset", 0, "test_subset must be at least 1"),
        ("long_tail", 0.0, "long_tail must be positive"),
        ("long_tail", 0.5, "long_tail is the imbalance factor"),
        ("seed", -1, "seed must be at least 0"),
        ("q", 0.0, "q must be positive"),
        ("lr", float("nan"), "lr must be positive and finite"),
        ("val_size", -1, "val_size must be at least 0"),
        ("val_size", 0, "give val_size >= 1, or use eval_protocol=.official."),
        ("epochs", 1.5, "epochs must be an integer"),
    ],
)
def test_every_field_is_checked_before_data_is_loaded(tmp_path, field, value, message):
    cfg = RunConfig(data="cifar10", data_root=str(tmp_path / "nowhere"), **{field: value})
    with pytest.raises(ValueError, match=message):
        experiment.train(cfg, tmp_path / "run", **QUIET)
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def cifar10_root():
    if not (SHARED_DATA / "cifar-10-batches-py" / "batches.meta").is_file():
        pytest.skip(f"no CIFAR-10 copy at {SHARED_DATA / 'cifar-10-batches-py'}")
    return str(SHARED_DATA)


def test_sizes_that_do_not_fit_the_data_are_refused(cifar10_root):
    base = dict(data="cifar10", data_root=cifar10_root)
    for changes, message in [
        (dict(val_size=50_000), "val_size 50000 leaves no training images: cifar10 has 50000"),
        (dict(train_subset=45_001), "train_subset 45001 is more than the 45000 training images"),
        (dict(test_subset=10_001), "test_subset 10001 is more than the 10000 test images"),
        (
            dict(method="l2w", train_subset=40, batch_size=64),
            "40 training images make no batch of batch_size 64",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            experiment.load_data(RunConfig(**base, **changes).validate())
    data = experiment.load_data(RunConfig(**base, val_size=20_000, long_tail=10, test_subset=100))
    # at most a tenth is held out; what is used is what the arrays (and metrics.json's "images") hold
    assert len(data["val"][1]) == (len(data["train"][1]) + len(data["val"][1])) // 10 < 20_000
    assert len(data["test"][1]) == 100


# ---------------------------------------------------------------- folders: overwrites, locks, writability


def test_eval_never_writes_over_another_runs_folder(tmp_path):
    a = experiment.train(RunConfig(**SMALL), tmp_path / "a", **QUIET)
    b = experiment.train(RunConfig(**SMALL, seed=1), tmp_path / "b", **QUIET)
    experiment.evaluate(b, tmp_path / "b", log=lambda *_: None)
    metrics_b = (tmp_path / "b" / "metrics.json").read_bytes()
    with pytest.raises(FileExistsError, match="holds another run"):
        experiment.evaluate(a, tmp_path / "b", log=lambda *_: None)
    unsaved = experiment.Run(RunConfig(**SMALL), experiment.load_data(RunConfig(**SMALL)))
    with pytest.raises(FileExistsError, match="results of an unsaved run"):
        experiment.evaluate(unsaved, tmp_path / "b", log=lambda *_: None)
    assert (tmp_path / "b" / "metrics.json").read_bytes() == metrics_b
    experiment.evaluate(a, tmp_path / "a-eval", log=lambda *_: None)  # a fresh folder, then again: fine
    experiment.evaluate(
        experiment.load_run(tmp_path / "a" / CHECKPOINT), tmp_path / "a-eval", log=lambda *_: None
    )
    assert json.loads((tmp_path / "a-eval" / "metrics.json").read_text())["checkpoint"] == str(
        (tmp_path / "a" / CHECKPOINT).resolve()
    )
    result = run_cli("eval", "--checkpoint", tmp_path / "b" / CHECKPOINT, "--out", tmp_path / "a-eval")
    assert result.returncode == 2 and "already holds results" in result.stderr


def test_train_never_writes_over_results_without_a_checkpoint(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"already holds results \(metrics.json\)"):
        experiment.train(RunConfig(**SMALL), tmp_path, **QUIET)
    assert (tmp_path / "metrics.json").read_text() == "{}" and not (tmp_path / CHECKPOINT).exists()


def test_a_locked_folder_is_refused_and_a_stale_lock_replaced(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunFolderInUseError, match=f"in use by process {os.getpid()}"):
            experiment.train(RunConfig(**SMALL), tmp_path, **QUIET)
    assert not (tmp_path / LOCK_NAME).exists()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import socket

    stale = {
        "pid": int(finished.stdout),
        "host": socket.gethostname(),
        "command": "killed",
        "since": "earlier",
    }
    (tmp_path / LOCK_NAME).write_text(json.dumps(stale))
    (tmp_path / f"{CHECKPOINT}.x1y2.tmp").write_bytes(b"half a checkpoint")  # left by the killed process
    experiment.train(RunConfig(**SMALL), tmp_path, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT]


def test_an_unwritable_out_is_one_line_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli("train", "--data", "synthetic", "--out", tmp_path / "file" / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.startswith("error: cannot write to the run folder") and result.stderr.count("\n") == 1
    )


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch, capsys):
    experiment.train(RunConfig(**SMALL, epochs=2), tmp_path, stop_after=1, **QUIET)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "train", interrupted)
    assert cli.main(["train", "--out", str(tmp_path), "--resume"]) == 130
    err = capsys.readouterr().err
    assert f"python -m tinyexit train --out {tmp_path} --resume" in err and "Traceback" not in err


def test_resume_refuses_flags_that_change_the_run_and_takes_a_moved_data_root(tmp_path, capsys):
    experiment.train(RunConfig(**SMALL, epochs=2), tmp_path, stop_after=1, **QUIET)
    assert (
        cli.main(["train", "--out", str(tmp_path), "--resume", "--lr", "0.5", "--seed", "0", "--no-augment"])
        == 2
    )
    err = capsys.readouterr().err
    assert "--lr 0.5 (the run has 0.1)" in err and "--no-augment" in err and "--seed" not in err
    assert cli.main(["train", "--out", str(tmp_path), "--resume", "--epochs", "1"]) == 2
    assert "--epochs 1 (the run has 2)" in capsys.readouterr().err
    moved = cli._resumed_config(tmp_path, {"data_root": "/elsewhere", "epochs": 4, "data": "synthetic"})
    assert moved == RunConfig(**SMALL, epochs=4, data_root="/elsewhere")


# ---------------------------------------------------------------- files written atomically


def test_weights_file_is_written_atomically(tmp_path, monkeypatch):
    path = atomic_savez(tmp_path / "w.npz", losses=np.ones(3))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_savez(path, losses=np.zeros(3))
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path)["losses"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


# ---------------------------------------------------------------- data root


def test_a_local_archive_with_the_wrong_md5_is_named_and_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download over it"))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(DatasetNotFoundError, match="the local archive .* has MD5 .*not the official"):
        load_cifar10(root=tmp_path)
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == b"not the archive"


def test_messages_name_the_data_roots_source_and_never_create_it(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    missing = tmp_path / "missing"
    monkeypatch.setenv("TINYEXIT_DATA", str(missing))
    with pytest.raises(DatasetNotFoundError, match=f"from TINYEXIT_DATA={missing}") as e:
        experiment.load_data(RunConfig(data="cifar10"))
    assert "the data root does not exist" in str(e.value) and not missing.exists()
    with pytest.raises(DatasetNotFoundError, match="from the root argument"):
        experiment.load_data(RunConfig(data="cifar10", data_root=str(missing)))
    assert not missing.exists()


# ---------------------------------------------------------------- Numba cache


def test_kernels_compile_without_a_cache_when_none_can_be_written():
    from tinyexit.backend.cpu import jit

    namespace: dict = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)  # no source file: Numba can find no cache folder
    with pytest.warns(RuntimeWarning, match="no writable Numba cache folder"):
        jit._warned = False
        compiled = jit.njit(cache=True)(namespace["add_one"])
    assert compiled(41) == 42


@pytest.mark.slow
def test_convolution_works_when_numba_cannot_cache(tmp_path):
    script = """
import numba, warnings
plain = numba.njit
def no_cache_anywhere(*args, **options):
    if options.get("cache"):
        raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
    return plain(*args, **options)
numba.njit = no_cache_anywhere
import numpy as np, tinyexit as te
x = te.tensor(np.ones((1, 1, 4, 4)))
w = te.tensor(np.ones((1, 1, 3, 3)))
print(float(te.nn.functional.conv2d(x, w).sum()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "36.0" and result.stderr.count("no writable Numba cache folder") == 1
