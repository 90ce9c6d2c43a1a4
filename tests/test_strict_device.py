"""The whole device path on the strict CuPy stand-in: training, evaluation, counting, checkpoints, CLI.

Each test runs the library with ``"cuda"`` served by :mod:`strict_device`, whose arrays refuse
every implicit host/device mix as CuPy does, and compares what comes back with the same
computation on the CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from strict_device import StrictArray, use_strict_device

import tinyexit as te
from tinyexit import backend, cli, demo, experiment, l2w, models, optim
from tinyexit.data import normalize
from tinyexit.data.transforms import CIFAR10_MEAN, CIFAR10_STD
from tinyexit.evaluate import early_exit_predict, predict_probs
from tinyexit.experiment import RunConfig
from tinyexit.training import BaselineTrainer, load_checkpoint

SMALL = dict(
    arch="msdnet4_tiny",
    data="synthetic",
    train_subset=16,
    val_size=16,
    test_subset=16,
    batch_size=8,
    wpn_hidden=8,
    augment=True,
)
QUIET = dict(progress=False, log=lambda *_: None)


@pytest.fixture
def cuda():
    """The ``"cuda"`` device, served by the strict stand-in."""
    with use_strict_device() as xp:
        yield xp


def _batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


# --- the stand-in itself --------------------------------------------------------------------


def test_stand_in_is_as_strict_as_cupy(cuda):
    a = cuda.asarray(np.arange(6.0).reshape(2, 3))
    host = np.ones(3)
    for mix in (
        lambda: np.asarray(a),
        lambda: np.array(a),
        lambda: a + host,
        lambda: host * a,
        lambda: np.exp(a),
        lambda: np.concatenate([a, a]),
        lambda: a[np.array([0, 1])],
        lambda: a.__setitem__(0, host),
        lambda: cuda.maximum(a, host),
    ):
        with pytest.raises(TypeError):
            mix()
    total = a.sum()
    assert isinstance(total, StrictArray) and total.shape == () and float(total) == 15.0
    assert isinstance(a.get(), np.ndarray) and cuda.asnumpy(a * 2).tolist() == [[0, 2, 4], [6, 8, 10]]
    a[cuda.asarray([1])] += 1
    np.testing.assert_array_equal(a.get()[1], [4, 5, 6])


def test_stand_in_is_the_cuda_device(cuda):
    x = te.randn(2, 3, device="cuda")
    assert isinstance(x.data, StrictArray) and x.device == "cuda"
    assert backend.array_module(x.data) is cuda and backend.device_of(x.data) == "cuda"
    assert backend.kernels(x.data).__name__ == "tinyexit.backend.gpu.portable"
    np.testing.assert_array_equal(x.cpu().data, x.numpy())
    assert isinstance(x.cpu().data, np.ndarray)
    copy = te.tensor(x.data, device="cuda")  # copies, as torch.tensor does
    copy.data[0, 0] = 100.0
    assert float(x.data[0, 0]) != 100.0


@pytest.mark.skipif(backend.cupy_available(), reason="a real GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="needs CuPy and a CUDA GPU"):
        RunConfig(**SMALL, device="cuda").validate()
    code = cli.main(["train", "--data", "synthetic", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert code == 2 and not (tmp_path / "r").exists()


# --- the library on it ----------------------------------------------------------------------


def _step_losses(arch, method, device, batch):
    te.manual_seed(0)
    model = models.create(arch, num_classes=10).double().to(device)  # float64: the two paths agree closely
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if method == "baseline":
        trainer = BaselineTrainer(model, sgd)
    else:
        wpn = l2w.WeightPredictionNet(model.num_exits, hidden=8).double().to(device)
        trainer = l2w.L2WTrainer(model, wpn, sgd, optim.Adam(wpn.parameters(), lr=1e-3))
    images, labels = batch
    first = trainer.step(images, labels)
    second = trainer.step(images, labels)  # after an update: optimiser state on the device
    assert all(p.device == device for p in model.parameters())
    return first["exit_losses"], second["exit_losses"]


PAPER_PRESETS = ("msdnet5", "msdnet7", "ranet6")  # up to a minute and a half each here: marked slow


@pytest.mark.parametrize(
    "arch",
    [
        pytest.param(a, marks=pytest.mark.slow) if a in PAPER_PRESETS else a
        for a in sorted(models.list_presets("cifar"))
    ],
)
@pytest.mark.parametrize("method", ["baseline", "l2w"])
def test_a_training_step_of_every_preset_matches_the_cpu(cuda, arch, method):
    batch = _batch(2 if arch in PAPER_PRESETS else 4)
    on_cpu = _step_losses(arch, method, "cpu", batch)
    on_device = _step_losses(arch, method, "cuda", batch)
    np.testing.assert_allclose(on_device, on_cpu, rtol=1e-6, atol=1e-9)


def test_evaluation_early_exit_and_counting_on_the_device(cuda):
    te.manual_seed(0)
    model = models.create("ranet4_tiny", num_classes=10)
    images, labels = _batch(12, seed=1)
    host_probs = predict_probs(model, images)
    normalized = normalize(images, CIFAR10_MEAN, CIFAR10_STD)
    host_exit = early_exit_predict(model, normalized, [0.3, 0.3, 0.3, 0.0])
    host_counts = models.count_ops(model)
    model.to("cuda")
    probs = predict_probs(model, images)
    assert isinstance(probs, np.ndarray)
    np.testing.assert_allclose(probs, host_probs, rtol=1e-4, atol=1e-6)
    result = early_exit_predict(model, normalized, [0.3, 0.3, 0.3, 0.0])
    np.testing.assert_array_equal(result.exits, host_exit.exits)
    np.testing.assert_array_equal(result.predictions, host_exit.predictions)
    assert models.count_ops(model) == host_counts


def test_train_evaluate_checkpoint_and_resume_on_the_device(cuda, tmp_path):
    cfg = RunConfig(**SMALL, method="l2w", epochs=2, device="cuda")
    straight = experiment.train(cfg, tmp_path / "a", **QUIET)
    assert all(p.device == "cuda" for p in straight.model.parameters())
    experiment.train(cfg, tmp_path / "b", stop_after=1, **QUIET)
    saved = load_checkpoint(tmp_path / "b" / experiment.CHECKPOINT)
    assert all(isinstance(v, np.ndarray) for v in saved["model"].values())  # checkpoints hold NumPy
    resumed = experiment.train(None, tmp_path / "b", resume=True, **QUIET)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    metrics = experiment.evaluate(resumed, tmp_path / "b", log=lambda *_: None)  # both evaluation modes
    assert len(metrics["anytime_accuracy"]) == 4 and len(metrics["dynamic"]) == 39
    on_cpu = experiment.load_run(tmp_path / "b" / experiment.CHECKPOINT, device="cpu")
    assert all(p.device == "cpu" for p in on_cpu.model.parameters())
    host_metrics = experiment.evaluate(on_cpu, log=lambda *_: None)
    np.testing.assert_allclose(host_metrics["anytime_accuracy"], metrics["anytime_accuracy"], atol=1e-9)


def test_a_cpu_run_resumes_on_the_device(cuda, tmp_path):
    cfg = RunConfig(**SMALL, method="baseline", epochs=2)
    experiment.train(cfg, tmp_path, stop_after=1, **QUIET)
    run = experiment.train(None, tmp_path, resume=True, device="cuda", **QUIET)
    assert run.epoch == 2 and run.cfg.device == "cuda"
    assert all(p.device == "cuda" for p in run.model.parameters())


def test_cli_train_and_eval_with_device_cuda(cuda, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--arch", "ranet4_tiny", "--data", "synthetic", "--method", "l2w", "--device", "cuda"]
    args += ["--train-subset", "16", "--val-size", "16", "--test-subset", "16", "--batch-size", "8"]
    args += ["--wpn-hidden", "8", "--out", str(out)]
    assert cli.main(args) == 0
    trained = json.loads((out / "metrics.json").read_text())
    assert trained["config"]["device"] == "cuda"
    assert cli.main(["eval", "--checkpoint", str(out / experiment.CHECKPOINT), "--device", "cuda"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["anytime_accuracy"] == trained["anytime_accuracy"]
    assert (out / "dynamic.png").stat().st_size > 1000


def test_demo_on_the_device(cuda, capsys):
    results = demo.run(epochs=1, n_train=64, n_test=64, device="cuda")
    assert set(results) == {"baseline", "l2w"}
    assert all(len(m["anytime_accuracy"]) == 4 for m in results.values())
    assert "L2W - baseline" in capsys.readouterr().out


# --- it catches what a GPU would -----------------------------------------------------------


def _host_matmul(a, b):
    return np.asarray(a) @ np.asarray(b)  # the deliberate bug: a device array pulled to the host


@pytest.mark.parametrize(
    "target, bug",
    [
        ("tinyexit.backend.gpu.portable.matmul", _host_matmul),
        ("tinyexit.models.multi_exit.array_module", lambda _: np),
    ],
)
def test_a_host_conversion_of_a_device_array_is_caught(cuda, monkeypatch, target, bug):
    batch = _batch(4)
    monkeypatch.setattr(target, bug)
    _step_losses("msdnet4_tiny", "l2w", "cpu", batch)  # on the CPU the bug goes unnoticed
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array|called on a device array"):
        _step_losses("msdnet4_tiny", "l2w", "cuda", batch)
