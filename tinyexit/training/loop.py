"""The epoch loop shared by baseline and L2W training, with a one-line progress display."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .. import nn
from ..backend import to_device


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weight; ``step`` is the 1-based batch of the epoch."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def first_non_finite(module: nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``module`` holding NaN or inf, else None."""
    for name, value in module.state_dict().items():
        if not np.isfinite(to_device(value.data, "cpu")).all():
            return name
    return None


class Progress:
    """A carriage-return progress line: step, loss, accuracy, images per second."""

    def __init__(self, total: int, label: str, stream=sys.stderr, enabled: bool = True):
        self.total, self.label, self.stream, self.enabled = total, label, stream, enabled
        self.start = time.perf_counter()

    def update(self, step: int, images: int, loss: float, accuracy: float) -> None:
        """Show the running loss, accuracy and images per second after ``step`` batches."""
        if not self.enabled:
            return
        rate = images / max(time.perf_counter() - self.start, 1e-9)
        width = 20
        filled = int(width * step / max(self.total, 1))
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
            f"loss {loss:.3f} acc {accuracy:.1f}% {rate:.0f} img/s"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def train_epoch(
    trainer, loader, schedule=None, label: str = "train", progress: bool = True, max_steps: int | None = None
) -> dict:
    """Run ``trainer.step`` over one epoch of ``loader``; step the schedule every iteration.

    A trainer with a ``start_epoch`` method (L2W's batch count for ``meta_interval``) is told first.

    Returns:
        dict with the mean ``loss``, last-exit training ``accuracy`` (percent), ``images``, ``seconds``
        and ``images_per_s``, and the last step's output under ``last``.

    Raises:
        DivergenceError: a step's loss is NaN or infinite (the weights are then useless).
    """
    total = len(loader) if max_steps is None else min(len(loader), max_steps)
    bar = Progress(total, label, enabled=progress)
    loss_sum = correct = seen = 0
    start = time.perf_counter()
    out: dict = {}
    if hasattr(trainer, "start_epoch"):
        trainer.start_epoch()
    for step, (images, labels) in enumerate(loader, 1):
        out = trainer.step(images, labels)
        if not math.isfinite(out["loss"]):
            bar.close()
            raise DivergenceError(f"step {step}/{total}: the loss is {out['loss']}", step)
        if schedule is not None:
            schedule.step()
        n = len(labels)
        loss_sum, correct, seen = loss_sum + out["loss"] * n, correct + out["correct"], seen + n
        bar.update(step, seen, loss_sum / seen, 100.0 * correct / seen)
        if step >= total:
            break
    bar.close()
    seconds = time.perf_counter() - start
    return {
        "loss": loss_sum / max(seen, 1),
        "accuracy": 100.0 * correct / max(seen, 1),
        "images": seen,
        "seconds": seconds,
        "images_per_s": seen / max(seconds, 1e-9),
        "last": out,
    }
