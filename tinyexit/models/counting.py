"""Mul-Adds and parameters per exit, counted as the reference counters (MSDNet's ``op_counter.py``) count.

One forward of a single all-zeros image runs with every leaf layer reporting to a recorder:

- Conv2d: ``Cin * Cout * kh * kw * Hout * Wout`` (no groups in tinyexit);
- ReLU: the number of elements; AvgPool2d/MaxPool2d: ``N * C * Hout * Wout * kh * kw``;
- Linear: ``N * (weight + bias elements)``;
- BatchNorm2d, Identity, Flatten, and the functional ops (concatenation, resizing): 0.

Parameters count each layer's weights, BN affine and Linear (not running statistics), once.
The count at exit k is the running total at the moment exit k's logits were produced: it
includes every block run so far and every earlier exit's head, as in the reference, which
records the total whenever a classifier's Linear finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..autograd.creation import zeros
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend.geometry import pair
from ..nn import AvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, Module, ReLU

_COUNTED = (Conv2d, BatchNorm2d, ReLU, AvgPool2d, MaxPool2d, Linear, Identity, Flatten)


@dataclass(frozen=True)
class ExitCounts:
    """Cumulative cost of each exit, shallowest first.

    Attributes:
        mul_adds: Mul-Adds of one image up to and including exit k (raw counts).
        params: parameters used up to and including exit k.
    """

    mul_adds: list[float]
    params: list[int]

    def __str__(self) -> str:
        rows = [
            f"exit {k + 1}: {m / 1e6:8.2f} M Mul-Adds  {p / 1e6:6.2f} M params"
            for k, (m, p) in enumerate(zip(self.mul_adds, self.params))
        ]
        return "\n".join(rows)


def layer_mul_adds(layer: Module, x: Tensor, y: Tensor) -> float:
    """Mul-Adds of one call of a leaf layer with input ``x`` and output ``y``."""
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_size
        return float(layer.in_channels * layer.out_channels * kh * kw * y.shape[2] * y.shape[3])
    if isinstance(layer, ReLU):
        return float(x.numel())
    if isinstance(layer, (AvgPool2d, MaxPool2d)):
        kh, kw = pair(layer.kernel_size, "kernel_size")
        return float(y.numel() * kh * kw)
    if isinstance(layer, Linear):
        per_sample = layer.weight.numel() + (0 if layer.bias is None else layer.bias.numel())
        return float(x.shape[0] * per_sample)
    return 0.0


class _Recorder:
    """Running totals, and a snapshot of them for every tensor a leaf layer returned."""

    def __init__(self):
        self.mul_adds, self.params = 0.0, 0
        self.seen: set[int] = set()
        self.snapshots: dict[int, tuple[Tensor, float, int]] = {}

    def wrap(self, layer: Module, forward: Callable) -> Callable:
        def counted_forward(x):
            y = forward(x)
            self.mul_adds += layer_mul_adds(layer, x, y)
            for p in layer.parameters():
                if id(p) not in self.seen:
                    self.seen.add(id(p))
                    self.params += p.numel()
            self.snapshots[id(y)] = (y, self.mul_adds, self.params)  # y kept alive so its id stays unique
            return y

        return counted_forward


@contextmanager
def _counting(model: Module, recorder: _Recorder) -> Iterator[None]:
    """Route every leaf layer's forward through the recorder; restore them all on exit, even on error."""
    saved: dict[int, tuple[Module, object]] = {}
    try:
        for name, m in model.named_modules():
            if id(m) in saved or next(m.children(), None) is not None:
                continue
            if not isinstance(m, _COUNTED):
                raise TypeError(f"count_ops: no counting rule for layer {name!r} of type {type(m).__name__}")
            saved[id(m)] = (m, m.__dict__.get("forward"))
            object.__setattr__(m, "forward", recorder.wrap(m, m.forward))
        yield
    finally:
        for m, own in saved.values():
            if own is None:
                del m.__dict__["forward"]
            else:
                object.__setattr__(m, "forward", own)


def count_ops(model: Module, input_size: tuple[int, int, int] | None = None) -> ExitCounts:
    """Count the cumulative Mul-Adds and parameters of every exit of a multi-exit model.

    Runs one forward of a single all-zeros image of shape ``input_size`` (C, H, W) in eval mode
    without gradient; the model's parameters, buffers, modes and layers are left as they were.

    Args:
        model: a module whose forward returns the list of exit logits.
        input_size: the shape of one image; by default ``(3, S, S)`` with ``S`` the model's
            ``image_size`` attribute (32 for the CIFAR networks, 224 for the ImageNet ones), or
            ``(3, 32, 32)`` for a model without one.

    Returns:
        ``ExitCounts`` with one entry per exit, shallowest first.

    Raises:
        TypeError: if the model has a leaf layer without a counting rule.
        RuntimeError: if an exit's logits were not returned by a counted layer (such as a Linear).
    """
    if input_size is None:
        side = getattr(model, "image_size", 32)
        input_size = (3, side, side)
    params = next(model.parameters(), None)
    dtype, device = (params.dtype, params.device) if params is not None else (None, "cpu")
    x = zeros(1, *input_size, dtype=dtype, device=device)
    modes = [(m, m.training) for m in model.modules()]
    recorder = _Recorder()
    try:
        model.eval()
        with no_grad(), _counting(model, recorder):
            outputs = model(x)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    mul_adds, n_params = [], []
    for k, out in enumerate(outputs):
        if id(out) not in recorder.snapshots:
            raise RuntimeError(
                f"count_ops: the logits of exit {k + 1} were not returned by a counted layer; "
                f"end each exit with a Linear"
            )
        _, m_k, p_k = recorder.snapshots[id(out)]
        mul_adds.append(m_k)
        n_params.append(p_k)
    return ExitCounts(mul_adds, n_params)
