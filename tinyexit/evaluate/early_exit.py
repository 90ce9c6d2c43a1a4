"""Real early exit at inference: run the network exit by exit and stop computing for samples that left.

``assign_exits`` decides, from the saved outputs of every exit, where each sample *would* leave;
``early_exit_predict`` makes it happen. The batch runs up to exit 1; the samples whose confidence
(max softmax probability) reaches that exit's threshold leave with its prediction, and the
network's state is shrunk to the others before it runs on to exit 2, and so on; the last exit
takes whoever is left. The exit rule is ``confident_enough``, the one ``assign_exits`` uses, so on
the same thresholds both give every sample the same exit and the same probabilities.

The model must provide ``iter_exits(x)``, a generator that yields each exit's logits and accepts,
through ``send``, the positions of the samples that go on (``MSDNet`` and ``RANet`` do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..models import as_batch
from ..ops import softmax
from .budgeted import confident_enough


class EarlyExitResult(NamedTuple):
    """What ``early_exit_predict`` returns, one row per image, in the input order.

    Attributes:
        predictions: int64 ``(N,)`` class index predicted by the exit the image left at.
        exits: int64 ``(N,)`` that exit, 0-based.
        probs: ``(N, classes)`` that exit's softmax output, in the model's dtype.
    """

    predictions: np.ndarray
    exits: np.ndarray
    probs: np.ndarray


def early_exit_predict(
    model: nn.Module, images: np.ndarray | Tensor, thresholds: Sequence[float], batch_size: int = 500
) -> EarlyExitResult:
    """Classify ``images`` with early exit: each image leaves at the first exit confident enough.

    Image ``i`` leaves at the first exit ``k`` whose max softmax probability is ``>= thresholds[k]``
    (the last exit takes every image still running, whatever its threshold), exactly as
    ``assign_exits`` assigns exits from saved outputs; the blocks after that exit do not run for it.
    Runs without gradient.

    Args:
        model: A multi-exit model with ``iter_exits`` and ``num_exits`` (``MSDNet``, ``RANet``),
            in eval mode.
        images: Float ``(N, C, H, W)`` images prepared as for the model (normalised); a NumPy
            array or a Tensor. They are cast to the model's dtype.
        thresholds: ``(K,)`` confidence thresholds, one per exit, e.g. from ``find_thresholds``.
        batch_size: Images per batch; each batch shrinks as its images leave.

    Returns:
        ``EarlyExitResult(predictions, exits, probs)``.

    Raises:
        RuntimeError: If any part of the model is in training mode: batch norm would then use the
            statistics of the samples still in the batch, so an image's prediction would depend on
            which other images had left.
        TypeError: If the model cannot run exit by exit.
        ValueError: For images that are not a non-empty float ``(N, C, H, W)`` array, thresholds
            that are not one number per exit, or a batch size below 1.
    """
    num_exits = _check_model(model)
    levels = _check_thresholds(thresholds, num_exits)
    data = _check_images(images)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    exits, probs = [], []
    with no_grad():
        for start in range(0, len(data), batch_size):
            batch_exits, batch_probs = _run_batch(
                model, as_batch(model, data[start : start + batch_size])[0], levels
            )
            exits.append(batch_exits)
            probs.append(batch_probs)
    probs = np.concatenate(probs)
    return EarlyExitResult(probs.argmax(axis=1).astype(np.int64), np.concatenate(exits), probs)


def _run_batch(model: nn.Module, x: Tensor, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit index and softmax output of every sample of one batch, running each only as far as it goes."""
    n, last = x.shape[0], len(thresholds) - 1
    exits = np.full(n, last, dtype=np.int64)
    probs = None
    remaining = np.arange(
        n
    )  # batch positions of the samples still running, in the order the model holds them
    stages = model.iter_exits(x)
    try:
        logits = next(stages)
        for k in range(last + 1):
            p = softmax(logits, dim=1).numpy()
            if probs is None:
                probs = np.empty((n, p.shape[1]), dtype=p.dtype)
            leave = np.ones(len(p), dtype=bool) if k == last else confident_enough(p, thresholds[k])
            exits[remaining[leave]] = k
            probs[remaining[leave]] = p[leave]
            stay = np.flatnonzero(~leave)
            remaining = remaining[stay]
            if remaining.size == 0:
                break
            logits = stages.send(stay)
    finally:
        stages.close()
    return exits, probs


def _check_model(model: nn.Module) -> int:
    """Return the number of exits, or raise if the model cannot run early exit correctly."""
    if not callable(getattr(model, "iter_exits", None)) or not isinstance(
        getattr(model, "num_exits", None), int
    ):
        raise TypeError(
            f"early_exit_predict needs a model that runs exit by exit, with iter_exits(x) and "
            f"num_exits (as MSDNet and RANet have); {type(model).__name__} lacks them"
        )
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise RuntimeError(
            f"early_exit_predict needs the model in eval mode (call model.eval()), but "
            f"{training[0]!r} is in training mode: batch norm would normalise with the statistics "
            f"of the samples still in the batch, so predictions would depend on which samples "
            f"had already left"
        )
    return model.num_exits


def _check_thresholds(thresholds: Sequence[float], num_exits: int) -> np.ndarray:
    levels = np.asarray(thresholds, dtype=np.float64)
    if levels.shape != (num_exits,):
        raise ValueError(
            f"thresholds must hold one value per exit: the model has {num_exits} exits, got "
            f"shape {levels.shape}"
        )
    if np.isnan(levels).any():
        raise ValueError(f"thresholds must not be NaN, got {levels.tolist()}")
    return levels


def _check_images(images: np.ndarray | Tensor) -> np.ndarray:
    data = images.data if isinstance(images, Tensor) else np.asarray(images)
    if data.ndim != 4 or data.shape[0] == 0:
        raise ValueError(f"images must be a non-empty batch of shape (N, C, H, W), got shape {data.shape}")
    if data.dtype.kind != "f":
        raise ValueError(
            f"images must be floating point and normalised as for the model, got dtype {data.dtype}"
            f"{'; tinyexit.data.normalize prepares uint8 images' if data.dtype == np.uint8 else ''}"
        )
    return data
