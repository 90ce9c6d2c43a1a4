"""The engine: higher-order derivatives, graph hygiene, .grad accumulation and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rand

import tinyexit as te


def _f(x):
    """A scalar test function with non-trivial second and third derivatives."""
    return (x.tanh() * x.exp()).sum() + (x**3).sum() * x.sigmoid().mean()


def test_hessian_vector_product_matches_finite_differences():
    x = rand(5, seed=1)
    v = rand(5, seed=2, requires_grad=False)
    (g,) = te.grad(_f(x), x, create_graph=True)
    (hv,) = te.grad((g * v).sum(), x)  # H v = d/dx <grad f(x), v>
    eps = 1e-6

    def grad_at(a):
        t = te.tensor(a, requires_grad=True)
        return te.grad(_f(t), t)[0].numpy()

    numeric = (grad_at(x.numpy() + eps * v.numpy()) - grad_at(x.numpy() - eps * v.numpy())) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_third_derivative_of_a_scalar_function():
    x = te.tensor(0.7, requires_grad=True, dtype=np.float64)
    y = x.tanh() * x**4  # y = x^4 tanh(x)
    (d1,) = te.grad(y, x, create_graph=True)
    (d2,) = te.grad(d1, x, create_graph=True)
    (d3,) = te.grad(d2, x)
    t, s = np.tanh(0.7), 1 - np.tanh(0.7) ** 2  # tanh' = s, tanh'' = -2 t s, tanh''' = -2 s (s - 2 t^2)
    xv = 0.7
    expected = 24 * xv * t + 36 * xv**2 * s + 12 * xv**3 * (-2 * t * s) + xv**4 * (-2 * s * (s - 2 * t * t))
    assert d3.item() == pytest.approx(expected, rel=1e-10)


def test_create_graph_false_leaves_no_history():
    x = rand(3, 4)
    (g,) = te.grad((x.exp() * x).sum(), x)
    assert g.grad_fn is None and not g.requires_grad
    (g2,) = te.grad((x.exp() * x).sum(), x, create_graph=True)
    assert g2.grad_fn is not None and g2.requires_grad


def test_backward_accumulates_like_pytorch():
    x = rand(3)
    (x * x).sum().backward()
    first = x.grad.numpy().copy()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    assert x.grad.grad_fn is None


def test_backward_with_create_graph_keeps_history_in_dot_grad():
    x = rand(3)
    (x**3).sum().backward(create_graph=True)  # x.grad = 3 x^2, recorded
    assert x.grad.grad_fn is not None
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)
    (h,) = te.grad(x.grad.sum(), x)  # d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


def test_backward_reaches_every_leaf_once_and_skips_constants():
    x, w = rand(3, seed=1), rand(3, seed=2)
    c = rand(3, seed=3, requires_grad=False)
    y = (x * w + x * c).sum()  # x is reached twice
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), w.numpy() + c.numpy())
    np.testing.assert_allclose(w.grad.numpy(), x.numpy())
    assert c.grad is None
    leaf = rand(1)
    leaf.backward()
    np.testing.assert_allclose(leaf.grad.numpy(), 1)


def test_op_parameters_are_attributes_of_the_node():
    x = te.randn(1, 2, 5, 5, requires_grad=True)
    y = te.nn.functional.conv2d(x, te.randn(3, 2, 3, 3), stride=2, padding=1)
    assert (y.grad_fn.stride, y.grad_fn.padding) == (2, 1)  # as passed; the kernels expand pairs
    assert y.grad_fn.inputs[0] is x


def test_grad_touches_no_dot_grad():
    x = rand(3)
    te.grad((x * x).sum(), x)
    assert x.grad is None


def test_reused_node_gets_the_sum_of_its_paths():
    x = rand(4)
    h = x * 3
    y = (h * h + h).sum()  # dy/dx = 3 (2h + 1)
    (g,) = te.grad(y, x)
    np.testing.assert_allclose(g.numpy(), 3 * (2 * h.numpy() + 1))


class _Exploding(te.Function):
    """An op whose backward must never run in the tests below."""

    def forward(self, x):
        return x * 1

    def backward(self, gy):
        raise AssertionError("backward called off the path between outputs and inputs")


def test_grad_walks_only_paths_between_outputs_and_inputs():
    x, w = rand(3, seed=1), rand(3, seed=2)
    side = _Exploding.apply(w)  # w -> side: not on a path to x
    y = (x * side).sum()
    (gx,) = te.grad(y, x)
    np.testing.assert_allclose(gx.numpy(), w.numpy())


def test_grad_with_respect_to_an_intermediate_tensor():
    x = rand(3)
    h = x.exp()
    y = (h * h).sum()
    gh, gx = te.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 2 * h.numpy() ** 2)


def test_unused_input():
    x, z = rand(3, seed=1), rand(3, seed=2)
    with pytest.raises(RuntimeError, match="not used"):
        te.grad((x * 2).sum(), [x, z])
    gx, gz = te.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and np.allclose(gx.numpy(), 2)


def test_no_grad_records_nothing():
    x = rand(3)
    with te.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert te.is_grad_enabled()


def test_backward_on_non_scalar_needs_a_gradient():
    x = rand(3)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(te.ones(3, dtype=np.float64))
    np.testing.assert_allclose(x.grad.numpy(), 2)


def test_gradient_shape_mismatch_is_reported():
    x = rand(3)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(te.ones(4, dtype=np.float64))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        te.ones(3).sum().backward()


@pytest.mark.parametrize(
    "expr, error, match",
    [
        (lambda: te.ones(2, 3) + te.ones(4), ValueError, "broadcast"),
        (lambda: te.ones(2, 3) @ te.ones(2, 3), ValueError, "do not match"),
        (lambda: te.ones(2, 3).reshape(4, 2), ValueError, "cannot reshape"),
        (lambda: te.ones(2, 3)[5], IndexError, "shape"),
        (lambda: te.ones(2, 3).sum(dim=3), IndexError, "out of range"),
        (lambda: te.cat([te.ones(2, 3), te.ones(2, 4)]), ValueError, "incompatible"),
        (lambda: te.tensor([1, 2], requires_grad=True), TypeError, "floating-point"),
        (lambda: te.ones(3).to("tpu"), ValueError, "unknown device"),
        (lambda: te.ones(2, 3).item(), ValueError, "one element"),
        (lambda: te.nn.functional.cross_entropy(te.ones(2, 3), np.array([0, 3])), ValueError, r"\[0, 3\)"),
        (lambda: te.nn.functional.cross_entropy(te.ones(2, 3), np.array([0.0, 1.0])), TypeError, "integer"),
        (
            lambda: te.nn.functional.cross_entropy(te.ones(2, 3), np.array([0])),
            ValueError,
            "target has shape",
        ),
        (
            lambda: te.nn.functional.cross_entropy(te.ones(2, 3), np.array([0, 1]), reduction="avg"),
            ValueError,
            "unknown reduction",
        ),
    ],
)
def test_clear_errors(expr, error, match):
    with pytest.raises(error, match=match):
        expr()


def test_comparisons_and_argmax_are_not_differentiable():
    x = rand(3, 4)
    for t in (x > 0, x <= 0.5, x == x, x.argmax(1), x.max(1).indices):
        assert not t.requires_grad and t.grad_fn is None
    np.testing.assert_array_equal(x.argmax(1).numpy(), x.numpy().argmax(1))


def test_cuda_without_cupy_is_a_clear_error():
    from tinyexit.backend import cupy_available

    if cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        te.ones(3).to("cuda")


def test_tensor_creation_dtypes_follow_pytorch():
    assert te.tensor([1.0, 2.0]).dtype == np.float32
    assert te.tensor([1, 2]).dtype == np.int64
    assert te.tensor(np.zeros(2)).dtype == np.float64
    a = np.zeros(2)
    t = te.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0  # te.tensor copies, as torch.tensor


def test_detach_item_numpy():
    x = rand(2)
    d = x.detach()
    assert not d.requires_grad and d.numpy() is x.numpy()
    assert te.tensor([[3.5]]).item() == 3.5
