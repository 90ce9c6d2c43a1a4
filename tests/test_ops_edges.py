"""One test per edge case where tinyexit used to answer wrongly or crash unclearly: each now matches
PyTorch's documented behaviour (values taken from PyTorch's documentation and rules) or is refused
with a message naming the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyexit as te

F = te.nn.functional
INF, NAN = math.inf, math.nan


def grad_of(f, *values, dtype=np.float64):
    xs = [te.tensor(v, dtype=dtype, requires_grad=True) for v in values]
    return [g.numpy() for g in te.grad(f(*xs), xs, allow_unused=True)]


# --- silent wrong answers -------------------------------------------------------------------------


def test_var_positional_bool_is_unbiased_as_pytorch():
    x = te.tensor([1.0, 2, 4, 7, 11], dtype=np.float64)
    assert te.var(x, False).item() == pytest.approx(13.2)
    assert x.var(True).item() == pytest.approx(16.5)
    assert x.var(correction=0).item() == pytest.approx(13.2)
    assert x.var(0, False, True).shape == (1,)  # var(x, dim, unbiased, keepdim)
    assert x.var(0, correction=2).item() == pytest.approx(66 / 3)
    with pytest.raises(TypeError, match="unbiased or correction"):
        x.var(0, True, correction=1)
    with pytest.raises(TypeError, match="var needs a floating-point tensor"):
        te.tensor([1, 2, 3]).var()


def test_interpolate_scale_factor_without_align_corners():
    x = te.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    y = F.interpolate(x, scale_factor=2, align_corners=False)
    expected = F.interpolate(x, size=(8, 8), align_corners=False)  # 4·2 = 8: scale and sizes agree
    np.testing.assert_array_equal(y.numpy(), expected.numpy())
    with pytest.raises(ValueError, match="scale_factor=1.3.*pass size="):
        F.interpolate(x, scale_factor=1.3, align_corners=False)
    assert F.interpolate(x, scale_factor=1.3, align_corners=True).shape == (1, 1, 5, 5)
    with pytest.raises(ValueError, match="positive"):
        F.interpolate(x, scale_factor=0, align_corners=True)


@pytest.mark.parametrize("value", [INF, NAN])
def test_backward_seed_is_one_for_a_non_finite_output(value):
    x = te.tensor([2.0, value], requires_grad=True)
    x[0].backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0])
    y = te.tensor(value, requires_grad=True)
    (g,) = te.grad(y * 1, y)
    assert g.item() == 1.0


def test_where_maximum_minimum_clamp_select_without_poisoning():
    assert te.where(np.array([True]), te.tensor([1.0]), te.tensor([INF])).tolist() == [1.0]
    np.testing.assert_array_equal(te.clamp(te.tensor([INF, -INF, NAN]), -1, 1).numpy(), [1, -1, NAN])
    np.testing.assert_array_equal(te.maximum(te.tensor([INF, 1.0]), te.tensor([2.0, -INF])).numpy(), [INF, 1])
    np.testing.assert_array_equal(te.minimum(te.tensor([NAN, 1.0]), te.tensor([2.0, INF])).numpy(), [NAN, 1])
    ga, gb = grad_of(lambda a, b: te.where(np.array([True, False]), a, b).sum(), [1.0, INF], [INF, 2.0])
    np.testing.assert_array_equal(ga, [1, 0])
    np.testing.assert_array_equal(gb, [0, 1])
    (g,) = grad_of(lambda x: te.clamp(x, -1, 1).sum(), [-2.0, -1, 1, 3, NAN])
    np.testing.assert_array_equal(g, [0, 1, 1, 0, 0])  # PyTorch: bounds included, NaN gets 0


def test_maximum_ties_split_the_gradient_as_pytorch():
    ga, gb = grad_of(lambda a, b: te.maximum(a, b).sum(), [1.0, 2, NAN], [1.0, 3, 0])
    np.testing.assert_array_equal(ga, [0.5, 0, 1])
    np.testing.assert_array_equal(gb, [0.5, 1, 1])


def test_pow_at_base_zero_with_a_tensor_exponent():
    ga, gb = grad_of(lambda a, b: (a**b).sum(), [0.0, 0, 0, 2], [0.0, 2, -1, 0])
    np.testing.assert_array_equal(ga, [0, 0, -INF, 0])  # PyTorch's values
    np.testing.assert_array_equal(gb, [0, 0, -INF, math.log(2)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_accurate_far_in_the_tails(dtype):
    x = te.tensor([-40.0, -745.0, 0.0, 40.0, -INF, INF], dtype=dtype)
    y = te.sigmoid(x).numpy()
    assert np.log(y[0]) == pytest.approx(-40.0, rel=1e-6)
    np.testing.assert_array_equal(y[2:], [0.5, 1.0, 0.0, 1.0])
    assert te.log(te.sigmoid(te.tensor(-40.0))).item() == pytest.approx(-40.0, rel=1e-6)


def test_empty_and_degenerate_reductions_are_nan():
    assert math.isnan(te.mean(te.tensor([])).item())
    assert math.isnan(te.tensor([3.0]).var().item())
    assert te.var(te.tensor([1.0, 2.0]), correction=3).item() == INF  # PyTorch: sum / max(0, n - c)
    loss = F.cross_entropy(te.zeros(0, 3), np.zeros(0, dtype=np.int64))
    assert math.isnan(loss.item())
    assert te.sum(te.zeros(0, 3)).item() == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda x: te.softmax(x, dim=2),
        lambda x: te.unsqueeze(x, 5),
        lambda x: te.squeeze(x, 3),
        lambda x: te.flatten(x, 3),
        lambda x: te.sum(x, 2),
        lambda x: x.transpose(0, 2),
        lambda x: te.cat([x, x], dim=-3),
    ],
)
def test_out_of_range_dims_raise_index_error(call):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-\d, \d\]"):
        call(te.zeros(2, 3))


def test_dims_tuple_empty_duplicate_and_argmax_keepdim():
    x = te.tensor([[1.0, 2], [3, 4]])
    assert te.sum(x, dim=()).item() == 10.0  # PyTorch 2.x: () reduces every dimension
    assert te.mean(x, dim=()).item() == 2.5
    assert te.amax(x, dim=()).item() == 4.0
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        te.sum(x, (0, 0))
    with pytest.raises(RuntimeError, match="appears multiple times"):
        te.sum(x, (1, -1))
    assert te.argmax(x, keepdim=True).shape == (1, 1)
    assert te.argmax(x, keepdim=True).item() == 3


def test_gradient_conventions_at_nan_and_ties_match_pytorch():
    (g,) = grad_of(lambda x: x.abs().sum(), [NAN, 0.0, -1.0])
    np.testing.assert_array_equal(g, [0, 0, -1])
    (g,) = grad_of(lambda x: x.relu().sum(), [NAN, 0.0, 1.0])
    np.testing.assert_array_equal(g, [1, 0, 1])
    (g,) = grad_of(lambda x: x.max(1).values.sum(), [[1.0, 3, 3]])
    np.testing.assert_array_equal(g, [[0, 1, 0]])  # the returned index takes it all
    (g,) = grad_of(lambda x: x.amax(1).sum(), [[1.0, 3, 3]])
    np.testing.assert_array_equal(g, [[0, 0.5, 0.5]])
    (g,) = grad_of(lambda x: x.max(), [[1.0, 3, 3]])
    np.testing.assert_array_equal(g, [[0, 0.5, 0.5]])


# --- unclear crashes ------------------------------------------------------------------------------


def test_max_min_with_a_tensor_is_elementwise():
    x, y = te.tensor([[1.0, 5], [3, 2]]), te.tensor([2.0, 4])
    np.testing.assert_array_equal(te.max(x, y).numpy(), [[2, 5], [3, 4]])
    np.testing.assert_array_equal(x.min(y).numpy(), [[1, 4], [2, 2]])
    with pytest.raises(TypeError, match="dim must be an int"):
        te.max(x, (0, 1))


def test_clamp_with_tensor_bounds_as_pytorch():
    x, lo, hi = [-2.0, 0.5, 3, NAN], [-1.0, 0.5, 0, 0], [1.0, 1, 2, 1]
    y = te.clamp(te.tensor(x), te.tensor(lo), te.tensor(hi))
    np.testing.assert_array_equal(y.numpy(), [-1, 0.5, 2, NAN])
    gx, glo, ghi = grad_of(lambda x, lo, hi: te.clamp(x, lo, hi).sum(), x, lo, hi)
    np.testing.assert_array_equal(gx, [0, 1, 0, 0])  # PyTorch 2.13's gradients on these values
    np.testing.assert_array_equal(glo, [1, 0, 0, 0])
    np.testing.assert_array_equal(ghi, [0, 0, 1, 0])
    assert te.gradcheck(
        lambda x, lo: te.clamp(x, lo, 0.8),
        [
            te.tensor([0.1, -0.6, 0.9], dtype=np.float64, requires_grad=True),
            te.tensor([0.2, -0.4, 0.0], dtype=np.float64, requires_grad=True),
        ],
    )
    with pytest.raises(TypeError, match="clamp: min must be a number or a Tensor"):
        te.clamp(te.tensor([1.0]), "0")


def test_squeeze_with_a_tuple_and_zero_d_inputs_with_a_dim():
    assert te.squeeze(te.zeros(2, 1, 1), (1, 2)).shape == (2,)
    assert te.squeeze(te.zeros(2, 3), (0,)).shape == (2, 3)
    s = te.tensor(3.0)
    assert te.sum(s, 0).item() == 3.0
    assert te.softmax(s, 0).item() == 1.0
    assert te.max(s, 0).values.item() == 3.0 and te.max(s, 0).indices.item() == 0
    assert te.squeeze(s, 0).shape == () and te.unsqueeze(s, -1).shape == (1,)
    with pytest.raises(IndexError, match="range of \\[-1, 0\\]"):
        te.sum(s, 1)


def test_softmax_over_a_zero_size_dim():
    assert te.softmax(te.zeros(2, 0), 1).shape == (2, 0)
    assert te.log_softmax(te.zeros(0, 3), 1).shape == (0, 3)


def test_where_with_python_scalars():
    y = te.where(te.tensor([True, False]), 1.0, 0.0)
    assert y.dtype == np.float32 and y.tolist() == [1.0, 0.0]
    with pytest.raises(TypeError, match="boolean condition"):
        te.where(np.array([1, 0]), 1.0, 0.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: te.tensor([1.0], dtype=np.float16),
        lambda: te.tensor(np.zeros(2, np.float16)),
        lambda: te.zeros(2, dtype=np.float16),
        lambda: te.randn(2).to(np.float16),
        lambda: te.Tensor(np.zeros(2, np.float16)),
    ],
)
def test_float16_refused_up_front(make):
    with pytest.raises(TypeError, match="float16 is not supported"):
        make()


def test_non_numeric_data_refused():
    with pytest.raises(TypeError, match="str"):
        te.tensor("abc")
    with pytest.raises(TypeError, match="ragged"):
        te.tensor([[1.0], [1.0, 2.0]])


def test_conv2d_and_linear_arguments_refused_clearly():
    x, w = te.randn(1, 3, 5, 5), te.randn(2, 3, 3, 3)
    with pytest.raises(TypeError, match="conv2d: weight must be a Tensor, got ndarray"):
        F.conv2d(x, w.numpy())
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints, got 1.5"):
        F.conv2d(x, w, stride=1.5)
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints, got 1.5"):
        F.max_pool2d(x, 2, stride=1.5)
    with pytest.raises(TypeError, match="input is float32 but bias is float64"):  # PyTorch refuses too
        F.conv2d(x, w, te.zeros(2, dtype=np.float64))
    with pytest.raises(TypeError, match="linear: input is float32 but bias is float64"):
        F.linear(te.randn(2, 3), te.randn(4, 3), te.zeros(4, dtype=np.float64))
    with pytest.raises(ValueError, match="linear: input must have at least one dimension"):
        F.linear(te.tensor(1.0), te.randn(4, 1))


def test_empty_batches_and_layers_without_inputs():
    assert F.max_pool2d(te.zeros(0, 3, 4, 4), 2).shape == (0, 3, 2, 2)
    assert F.avg_pool2d(te.zeros(0, 3, 4, 4), 2).shape == (0, 3, 2, 2)
    assert F.conv2d(te.zeros(0, 3, 4, 4), te.randn(2, 3, 3, 3)).shape == (0, 2, 2, 2)
    layer = te.nn.Linear(0, 3)
    np.testing.assert_array_equal(layer(te.zeros(2, 0)).numpy(), np.zeros((2, 3)))  # as PyTorch: bias 0
    x = te.zeros(0, 3, 4, 4, requires_grad=True)
    y = F.max_pool2d(x, 2)
    (g,) = te.grad(y.sum(), x)
    assert g.shape == x.shape


def test_models_with_an_empty_batch():
    from test_models import TINY_MSDNET, TINY_RANET

    from tinyexit.models import MSDNet, RANet

    for model in (MSDNet(10, **TINY_MSDNET), RANet(10, **TINY_RANET)):
        model.eval()
        assert all(out.shape == (0, 10) for out in model(te.zeros(0, 3, 32, 32)))
        model.train()  # batch statistics of nothing: refused, as PyTorch
        with pytest.raises(ValueError, match="batch_norm in training needs more than one value"):
            model(te.zeros(0, 3, 32, 32))
