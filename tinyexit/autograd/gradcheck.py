"""Checking gradients against central finite differences, to first and second order.

``gradgradcheck`` is ``gradcheck`` applied to the gradient function, as HIPS autograd's
``check_grads(order=2)``: if the vector-Jacobian product x, v -> J(x)^T v is itself
differentiated correctly, second derivatives are right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..backend import array_module
from .engine import _as_tuple, grad
from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytical gradient disagrees with finite differences."""


def _probe_vectors(outputs: Sequence[Tensor], seed: int) -> list[Tensor]:
    """Fixed random cotangents v_j: the check compares d/dx sum_j <f_j(x), v_j>."""
    rng = np.random.default_rng(seed)
    return [
        Tensor(array_module(o.data).asarray(rng.standard_normal(o.shape).astype(o.dtype))) for o in outputs
    ]


def _scalar_probe(fn, inputs, vs) -> float:
    with no_grad():
        outs = _as_tuple(fn(*inputs))
        return float(sum(float((o.data * v.data).sum()) for o, v in zip(outs, vs)))


def gradcheck(
    fn: Callable,
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central finite differences.

    Args:
        fn: a function of the input Tensors returning a Tensor or a tuple of Tensors.
        inputs: the arguments; those with ``requires_grad`` are checked. They must be float64.
        eps: finite-difference step.
        atol, rtol: an element passes when |analytic - numeric| <= atol + rtol * |numeric|.
        seed: seed of the random cotangent vectors.

    Returns:
        True when every element passes.

    Raises:
        GradcheckError: naming the failing input, its worst element and both values.
    """
    inputs = _as_tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs; input {i} is {inputs[i].dtype}")
    outputs = _as_tuple(fn(*inputs))
    vs = _probe_vectors(outputs, seed)
    live = [(o, v) for o, v in zip(outputs, vs) if o.requires_grad]
    analytic = [None] * len(checked)
    if live:
        analytic = grad(
            [o for o, _ in live],
            [inputs[i] for i in checked],
            grad_outputs=[v for _, v in live],
            allow_unused=True,
        )
    for slot, i in enumerate(checked):
        x = inputs[i]
        a = (
            np.zeros(x.shape)
            if analytic[slot] is None
            else np.asarray(analytic[slot].numpy(), dtype=np.float64)
        )
        numeric = np.zeros(x.shape)
        flat = x.data.reshape(-1)
        for k in range(flat.size):
            old = float(flat[k])
            flat[k] = old + eps
            up = _scalar_probe(fn, inputs, vs)
            flat[k] = old - eps
            down = _scalar_probe(fn, inputs, vs)
            flat[k] = old
            numeric.reshape(-1)[k] = (up - down) / (2 * eps)
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            worst = np.unravel_index(int(excess.argmax()), x.shape)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}) at element {tuple(int(w) for w in worst)}: "
                f"analytic {a[worst]:.8g}, numeric {numeric[worst]:.8g} "
                f"({int((excess > 0).sum())} of {excess.size} elements out of tolerance)"
            )
    return True


def gradgradcheck(
    fn: Callable,
    inputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives of ``fn``: ``gradcheck`` of (inputs, v) -> grad(fn(inputs), inputs, v).

    Args:
        fn, inputs, eps, atol, rtol, seed: as in ``gradcheck``.
        grad_outputs: the cotangents v (random float64 when None); they are checked as inputs too.
    """
    inputs = _as_tuple(inputs)
    n = len(inputs)
    if grad_outputs is None:
        outputs = [o for o in _as_tuple(fn(*inputs)) if o.requires_grad]
        grad_outputs = [Tensor(v.data, requires_grad=True) for v in _probe_vectors(outputs, seed + 1)]
    grad_outputs = _as_tuple(grad_outputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_derivative(*args):
        xs, vs = args[:n], args[n:]
        with enable_grad():  # the finite-difference probes run under no_grad; this inner graph is needed
            outs = [o for o in _as_tuple(fn(*xs)) if o.requires_grad]
            gs = grad(outs, [xs[i] for i in wrt], grad_outputs=list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps, atol, rtol, seed)
