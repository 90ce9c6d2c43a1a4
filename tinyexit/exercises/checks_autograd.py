"""Checks of the autograd and kernel exercises (notebooks 01-03); the library itself is the oracle."""

from __future__ import annotations

import numpy as np

import tinyexit as te
from tinyexit.autograd.gradcheck import GradcheckError
from tinyexit.backend.reference import conv as reference_conv

from .base import WrongAnswer, expect, expect_close


def _leaf(rng: np.random.Generator, *shape: int) -> te.Tensor:
    return te.tensor(rng.standard_normal(shape), requires_grad=True)


def _graphs():
    # Small graphs with the shapes that trip a wrong traversal: a diamond, a doubling chain, a wide fan-in.
    rng = np.random.default_rng(0)
    x, w = _leaf(rng, 3), _leaf(rng, 3)
    a = x * w
    diamond = (a.exp() + 2 * a).sum()
    z = x
    for _ in range(6):
        z = z + z
    chain = z.sum()
    terms = [x * float(i) for i in range(1, 5)]
    fan = (terms[0] + terms[1] * terms[2] - terms[3] * x).tanh().sum()
    return {"a diamond": (diamond, [x, w]), "a doubling chain": (chain, [x]), "a fan-in": (fan, [x])}


def _reachable(output: te.Tensor) -> set:
    seen, stack = set(), [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        stack.extend(t.grad_fn for t in fn.inputs if t.grad_fn is not None)
    return seen


def check_topological_order(topological_order) -> None:
    """``topological_order(output)`` lists each node once, every node after the nodes that made its inputs."""
    for name, (output, _) in _graphs().items():
        order = topological_order(output)
        expect(
            isinstance(order, list),
            f"on {name}: returned {type(order).__name__}, expected a list of Functions",
        )
        expect(len(order) == len(set(order)), f"on {name}: a node appears more than once")
        nodes = _reachable(output)
        expect(
            set(order) == nodes,
            f"on {name}: {len(set(order) & nodes)} of the {len(nodes)} reachable nodes "
            f"listed, plus {len(set(order) - nodes)} others",
        )
        position = {fn: i for i, fn in enumerate(order)}
        for fn in order:
            for t in fn.inputs:
                if t.grad_fn is not None:
                    expect(
                        position[t.grad_fn] < position[fn],
                        f"on {name}: {type(fn).__name__} comes before {type(t.grad_fn).__name__}, "
                        "which made one of its inputs",
                    )


class _CountedAdd(te.Function):
    # a + b, counting how often its backward runs
    calls = 0

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        _CountedAdd.calls += 1
        return gy, gy


def check_mini_grad(mini_grad) -> None:
    """``mini_grad(output, leaves)`` equals ``te.grad`` and calls each node's backward exactly once."""
    for name, (output, leaves) in _graphs().items():
        got, want = mini_grad(output, leaves), te.grad(output, leaves)
        expect(len(got) == len(want), f"on {name}: {len(got)} gradients for {len(leaves)} leaves")
        for i, (g, w) in enumerate(zip(got, want)):
            expect_close(g, w.numpy(), f"on {name}, gradient of leaf {i}")
    x = te.tensor([1.0], requires_grad=True)
    z = x
    for _ in range(12):
        z = _CountedAdd.apply(z, z)
    _CountedAdd.calls = 0
    (g,) = mini_grad(z, [x])
    expect_close(g, [2.0**12], "on a 12-node doubling chain, dz/dx")
    expect(
        _CountedAdd.calls == 12,
        f"on a 12-node doubling chain, the nodes' backward ran {_CountedAdd.calls} "
        "times, expected 12 (once per node: sum a node's gradient over all its consumers before using it)",
    )


def check_logcosh(logcosh_class) -> None:
    """``LogCosh`` computes log(cosh(x)) stably, and its backward passes gradcheck and gradgradcheck."""
    expect(
        isinstance(logcosh_class, type) and issubclass(logcosh_class, te.Function),
        "pass the class itself, a subclass of te.Function",
    )
    x = np.linspace(-4, 4, 9)
    expect_close(logcosh_class.apply(te.tensor(x)), np.log(np.cosh(x)), "forward on [-4, 4]")
    big = logcosh_class.apply(te.tensor(np.array([-800.0, 800.0]))).numpy()
    expect(
        np.all(np.isfinite(big)),
        f"forward at x = ±800 gave {big}: cosh overflows; use log(cosh x) = logaddexp(x, -x) - log 2",
    )
    rng = np.random.default_rng(1)
    try:
        te.gradcheck(logcosh_class.apply, [_leaf(rng, 5)])
    except GradcheckError as err:
        raise WrongAnswer(f"backward fails gradcheck: {err}") from None
    try:
        te.gradgradcheck(logcosh_class.apply, [_leaf(rng, 5)])
    except GradcheckError as err:
        raise WrongAnswer(
            "backward passes gradcheck but fails gradgradcheck: write it with tinyexit ops "
            f"(te.tanh), not NumPy on .data. {err}"
        ) from None


def check_hvp(hvp) -> None:
    """``hvp(f, x, v)`` returns H(x) v for a scalar function f, against a closed form and finite differences."""
    rng = np.random.default_rng(2)
    q = rng.standard_normal((4, 4))
    q = q + q.T
    x, v = _leaf(rng, 4), te.tensor(rng.standard_normal(4))
    expect_close(
        hvp(lambda x: 0.5 * (x * (te.tensor(q) @ x)).sum(), x, v),
        q @ v.numpy(),
        "H v of the quadratic x·Qx/2 (H = Q)",
    )
    a = te.tensor(rng.standard_normal((6, 4)))

    def f(x):
        return (a @ x).tanh().sum() + (x**4).sum()

    def grad_f(x_value):
        xt = te.tensor(x_value, requires_grad=True)
        (g,) = te.grad(f(xt), xt)
        return g.numpy()

    eps = 1e-6
    fd = (grad_f(x.numpy() + eps * v.numpy()) - grad_f(x.numpy() - eps * v.numpy())) / (2 * eps)
    expect_close(
        hvp(f, x, v), fd, "H v of sum(tanh(Ax)) + sum(x^4), against central differences", rtol=1e-5, atol=1e-6
    )


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    # (N, C*kh*kw, Ho*Wo) columns, the im2col of notebook 03
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = xpad[:, :, p : p + stride * ho : stride, q : q + stride * wo : stride]
    return cols.reshape(n, c * kh * kw, ho * wo)


CONV_CASES = [
    ((1, 2, 5, 5), 3, 1, 0),
    ((2, 2, 6, 5), 3, 1, 1),
    ((1, 3, 7, 7), 3, 2, 1),
    ((2, 1, 6, 6), 2, 2, 0),
]


def check_col2im(col2im) -> None:
    """``col2im(cols, x_shape, kh, kw, stride, padding)`` is the adjoint of im2col."""
    rng = np.random.default_rng(3)
    for x_shape, k, stride, padding in CONV_CASES:
        cols = rng.standard_normal(_im2col(np.zeros(x_shape), k, k, stride, padding).shape)
        # entry j of the adjoint is <im2col(e_j), cols>, for each basis image e_j
        want = np.zeros(x_shape)
        for j in np.ndindex(*x_shape):
            basis = np.zeros(x_shape)
            basis[j] = 1.0
            want[j] = np.vdot(_im2col(basis, k, k, stride, padding), cols)
        expect_close(
            col2im(cols, x_shape, k, k, stride, padding),
            want,
            f"col2im for x {x_shape}, kernel {k}, stride {stride}, padding {padding}",
        )


def check_conv2d_input_grad(conv2d_input_grad) -> None:
    """``conv2d_input_grad(gy, w, x_shape, stride, padding)`` matches the reference transposed convolution."""
    rng = np.random.default_rng(4)
    for x_shape, k, stride, padding in CONV_CASES:
        w = rng.standard_normal((3, x_shape[1], k, k))
        y_shape = reference_conv.conv2d(np.zeros(x_shape), w, stride, padding).shape
        gy = rng.standard_normal(y_shape)
        want = reference_conv.conv2d_input_grad(gy, w, x_shape[2:], stride, padding)
        expect_close(
            conv2d_input_grad(gy, w, x_shape, stride, padding),
            want,
            f"input gradient for x {x_shape}, kernel {k}, stride {stride}, padding {padding}",
        )
