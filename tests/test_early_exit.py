"""Real early exit at inference: same exits and probabilities as ``assign_exits`` on the full forward."""

from __future__ import annotations

import numpy as np
import pytest

import tinyexit as te
from tinyexit.evaluate import assign_exits, early_exit_predict, exit_shares, find_thresholds
from tinyexit.models import create

N = 24
PRESETS = ["msdnet4_tiny", "ranet4_tiny"]


def _model(name: str) -> te.nn.Module:
    te.manual_seed(0)
    return create(name).double().eval()


def _images(n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32))


def _full_probs(model: te.nn.Module, x: np.ndarray) -> np.ndarray:
    with te.no_grad():
        return np.stack([te.softmax(z, dim=1).numpy() for z in model(te.tensor(x))])


@pytest.fixture(scope="module", params=PRESETS)
def case(request):
    model = _model(request.param)
    x = _images()
    return model, x, _full_probs(model, x)


def _spy_batch_sizes(model: te.nn.Module, monkeypatch) -> list[int]:
    """Record how many samples each exit's logits have, passing the caller's ``send`` through."""
    sizes, run = [], model.iter_exits

    def spy(x):
        stages = run(x)
        logits = next(stages)
        while True:
            sizes.append(logits.shape[0])
            keep = yield logits
            try:
                logits = stages.send(keep)
            except StopIteration:
                return

    monkeypatch.setattr(model, "iter_exits", spy)
    return sizes


def test_forward_is_iter_exits_run_to_the_end(case):
    model, x, full = case
    with te.no_grad():
        stepped = [te.softmax(z, dim=1).numpy() for z in model.iter_exits(te.tensor(x))]
    assert len(stepped) == model.num_exits == full.shape[0]
    np.testing.assert_array_equal(np.stack(stepped), full)


def test_sending_a_subset_continues_only_those_samples_in_that_order(case):
    model, x, full = case
    rows = np.arange(N)  # original index of each row of the current logits
    with te.no_grad():
        stages = model.iter_exits(te.tensor(x))
        logits = next(stages)
        for k in range(model.num_exits):
            np.testing.assert_allclose(
                te.softmax(logits, dim=1).numpy(), full[k, rows], rtol=1e-10, atol=1e-12
            )
            if k == model.num_exits - 1:
                break
            keep = np.arange(len(rows))[::-2][: max(1, len(rows) - 5)]  # reversed every other row
            rows = rows[keep]
            logits = stages.send(keep)
    assert len(rows) < N


def test_infinite_thresholds_send_everyone_to_the_last_exit(case, monkeypatch):
    model, x, full = case
    sizes = _spy_batch_sizes(model, monkeypatch)
    result = early_exit_predict(model, x, [np.inf] * model.num_exits)
    assert (result.exits == model.num_exits - 1).all()
    np.testing.assert_array_equal(result.predictions, full[-1].argmax(axis=1))
    np.testing.assert_allclose(result.probs, full[-1], rtol=1e-10, atol=1e-12)
    assert sizes == [N] * model.num_exits


@pytest.mark.parametrize("level", [-np.inf, 0.0])
def test_thresholds_anyone_reaches_stop_everyone_at_the_first_exit(case, monkeypatch, level):
    model, x, full = case
    sizes = _spy_batch_sizes(model, monkeypatch)
    result = early_exit_predict(model, x, [level] * model.num_exits)
    assert (result.exits == 0).all()
    np.testing.assert_array_equal(result.predictions, full[0].argmax(axis=1))
    np.testing.assert_allclose(result.probs, full[0], rtol=1e-10, atol=1e-12)
    assert sizes == [N]  # nothing ran after the first exit


@pytest.mark.parametrize("batch_size", [N, 7])
@pytest.mark.parametrize("rule", ["median", "q0.5", "q1", "q1.5"])
def test_mixed_thresholds_match_assign_exits_on_the_full_forward(case, monkeypatch, batch_size, rule):
    model, x, full = case
    num_exits = model.num_exits
    if rule == "median":
        thresholds = np.median(full.max(axis=2), axis=1)
    else:  # tuned on other images, as a validation split would be
        val = _full_probs(model, _images(60, seed=1))
        thresholds = find_thresholds(val, exit_shares(float(rule[1:]), num_exits))
    expected = assign_exits(full, thresholds)
    sizes = _spy_batch_sizes(model, monkeypatch)
    result = early_exit_predict(model, x, thresholds, batch_size=batch_size)
    np.testing.assert_array_equal(result.exits, expected)
    np.testing.assert_allclose(result.probs, full[expected, np.arange(N)], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(result.predictions, full[expected, np.arange(N)].argmax(axis=1))
    assert result.exits.dtype == result.predictions.dtype == np.int64 and result.probs.dtype == np.float64
    if rule == "median":
        assert len(np.unique(expected)) >= 3  # the case really mixes exits
    if batch_size == N:  # each exit ran on exactly the samples that had not left before it
        reached = [int((expected >= k).sum()) for k in range(num_exits)]
        assert sizes == [n for n in reached if n > 0]


def test_tensor_and_float32_images_are_accepted():
    model = _model("msdnet4_tiny")
    x = _images(6)
    thresholds = [0.0, 0.0, 0.0, -np.inf]
    base = early_exit_predict(model, x, thresholds)
    from_tensor = early_exit_predict(model, te.tensor(x), thresholds)
    from_float32 = early_exit_predict(model, x.astype(np.float32), thresholds)
    np.testing.assert_array_equal(from_tensor.probs, base.probs)
    np.testing.assert_allclose(from_float32.probs, base.probs, rtol=1e-5)
    assert from_float32.probs.dtype == np.float64


def test_training_mode_is_a_clear_error():
    model = _model("ranet4_tiny")
    model.train()
    with pytest.raises(RuntimeError, match="eval mode.*batch norm"):
        early_exit_predict(model, _images(2), [0.5] * 4)
    model.eval()
    model.classifier[2].m[0].train()  # one layer left in training mode is enough to break it
    with pytest.raises(RuntimeError, match="classifier.2.m.0"):
        early_exit_predict(model, _images(2), [0.5] * 4)


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((3, 32, 32)), r"\(N, C, H, W\)"),
        (np.zeros((0, 3, 32, 32)), "non-empty"),
        (np.zeros((2, 3, 32, 32), dtype=np.uint8), "floating point.*normalize"),
        (np.zeros((2, 3, 32, 32), dtype=np.int64), "floating point"),
    ],
)
def test_bad_images_are_clear_errors(images, match):
    with pytest.raises(ValueError, match=match):
        early_exit_predict(_model("msdnet4_tiny"), images, [0.5] * 4)


@pytest.mark.parametrize(
    "thresholds, match",
    [([0.5, 0.5, 0.5], "4 exits"), ([[0.5] * 4], "4 exits"), ([0.5, np.nan, 0.5, 0.5], "NaN")],
)
def test_bad_thresholds_are_clear_errors(thresholds, match):
    with pytest.raises(ValueError, match=match):
        early_exit_predict(_model("msdnet4_tiny"), _images(2), thresholds)


def test_bad_batch_size_and_single_exit_models_are_clear_errors():
    with pytest.raises(ValueError, match="batch_size"):
        early_exit_predict(_model("msdnet4_tiny"), _images(2), [0.5] * 4, batch_size=0)
    plain = te.nn.Sequential(te.nn.Flatten(), te.nn.Linear(3 * 32 * 32, 10)).eval()
    with pytest.raises(TypeError, match="exit by exit"):
        early_exit_predict(plain, _images(2), [0.5])
