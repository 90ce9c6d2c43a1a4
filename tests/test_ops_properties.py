"""Property tests: every op of the gradcheck table on generated values, extremes included.

Hypothesis draws the inputs of each row of ``test_ops_gradcheck.OPS`` (the row's shapes; values
from the normal range mixed with 0, -0, ±inf, NaN, huge and tiny numbers) and compares

- the forward with the row's NumPy reference, and
- where PyTorch is installed, the forward, the first derivative (a vector-Jacobian product) and the
  second derivative (the gradient of <first derivative, w>) with PyTorch's, on the same float64 values.

The PyTorch side runs the row's own function: its ``te`` and ``F`` names are rebound to PyTorch
(``_torch_twin``), so the table stays the one source of the ops. A second property runs the
reductions and dim-taking ops over random shapes (zero-size ones included) and random dims,
in range or not, and asks PyTorch and tinyexit to agree on the value or both to refuse.
"""

from __future__ import annotations

import builtins
import math
import types
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_ops_gradcheck import OPS

import tinyexit as te

EXTREMES = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e100, -1e100, 1e-300, -1e-300, 5e-324]
POSITIVE_EXTREMES = [0.0, math.inf, math.nan, 1e100, 1e-300, 5e-324]
# a ** b at a = 0: the mixed second derivative is ln 0 + 1 = -inf; PyTorch returns NaN, tinyexit a
# finite number (docs/design-choices.md), so those entries are left out of the second-order check
SECOND_ORDER_AT_ZERO_BASE = {"pow_tensor"}
SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _values(shape, low):
    if low is None:
        elements = st.one_of(st.floats(-10, 10), st.sampled_from(EXTREMES))
    else:
        elements = st.one_of(st.floats(low, low + 1), st.sampled_from(POSITIVE_EXTREMES))
    return hnp.arrays(np.float64, shape, elements=elements)


def _row_inputs(name):
    return st.tuples(*[_values(shape, low) for shape, low in OPS[name][1]])


def assert_same(actual, expected, what, scale=0.0):
    """Equal up to rounding, NaN where NaN, infinities where infinities of the same sign.

    Terms that cancel leave rounding noise of about 1e-16 of the largest term on either side of 0,
    so the absolute tolerance grows with the largest magnitude in play: the largest finite entry
    of either array, or ``scale`` (the size of the terms behind the result, when it is known).
    """
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    magnitudes = [np.abs(x[np.isfinite(x)]) for x in (actual, expected)]
    largest = max([scale] + [float(m.max()) for m in magnitudes if m.size])
    atol = 1e-12 + 1e-13 * largest
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=atol, equal_nan=True, err_msg=what)


def _term_scale(reference, arrays) -> float:
    """The largest finite entry of the reference on the inputs' absolute values: the size of the
    terms a sum of products (dot, matmul, sum) adds, however much they cancel."""
    try:
        terms = np.asarray(reference(*[np.abs(a) for a in arrays]), dtype=np.float64)
    except (ValueError, TypeError, IndexError):
        return 0.0
    finite = np.abs(terms[np.isfinite(terms)])
    return float(finite.max()) if finite.size else 0.0


@pytest.mark.parametrize("name", sorted(OPS))
@SETTINGS
@given(data=st.data())
def test_forward_matches_numpy_on_extremes(name, data):
    fn, _, reference = OPS[name]
    arrays = data.draw(_row_inputs(name))
    with np.errstate(all="ignore"):
        expected = reference(*arrays)
        actual = fn(*[te.tensor(a, dtype=np.float64) for a in arrays]).numpy()
        scale = _term_scale(reference, arrays)
    assert_same(actual, expected, f"{name} forward", scale)


# --- PyTorch as the oracle for values, first and second derivatives -------------------------------


def _torch_namespaces(torch):
    """Stand-ins for the ``te`` and ``F`` names the table's functions use, backed by PyTorch."""

    def where(condition, a, b):
        return torch.where(torch.as_tensor(condition), a, b)

    def cross_entropy(a, target, reduction="mean"):
        target = target if isinstance(target, torch.Tensor) else torch.as_tensor(np.asarray(target))
        return torch.nn.functional.cross_entropy(a, target, reduction=reduction)

    te_twin = types.SimpleNamespace(
        where=where,
        tensor=torch.tensor,
        **{
            n: getattr(torch, n)
            for n in ("exp", "log", "tanh", "sigmoid", "relu", "sqrt", "clamp", "maximum", "minimum")
        },
        **{n: getattr(torch, n) for n in ("amax", "cat", "stack", "broadcast_to", "softmax", "log_softmax")},
        matmul=torch.matmul,
        max=torch.max,
    )
    return te_twin, types.SimpleNamespace(cross_entropy=cross_entropy)


def _torch_twin(fn, torch):
    """``fn`` with its global names ``te`` and ``F`` bound to PyTorch (a tinyexit op: torch's namesake)."""
    if fn.__module__.startswith("tinyexit"):
        return getattr(torch, fn.__name__)
    te_twin, f_twin = _torch_namespaces(torch)
    scope = dict(fn.__globals__, te=te_twin, F=f_twin)
    return types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)


def _derivatives(fn, arrays, make, grad, v_seed=0):
    """(y, first, second): y = fn(x); first = d<y, v>/dx; second = d<first, w>/dx (zeros if constant)."""
    xs = [make(a) for a in arrays]
    y = fn(*xs)
    rng = np.random.default_rng(v_seed)
    v = make(rng.standard_normal(y.shape), False)
    first = grad([(y * v).sum()], xs)
    ws = [make(rng.standard_normal(a.shape), False) for a in arrays]
    terms = [(g * w).sum() for g, w in zip(first, ws) if g is not None and g.requires_grad]
    second = grad([sum(terms[1:], terms[0])], xs) if terms else [None] * len(xs)
    return y, first, second


@pytest.mark.parametrize("name", sorted(OPS))
@SETTINGS
@given(data=st.data())
def test_derivatives_match_torch_on_extremes(name, data):
    torch = pytest.importorskip("torch")
    fn = OPS[name][0]
    arrays = data.draw(_row_inputs(name))

    def te_grad(outs, xs):
        return te.grad(outs, xs, create_graph=True, allow_unused=True)

    def torch_grad(outs, xs):
        return torch.autograd.grad(outs, xs, create_graph=True, allow_unused=True)

    def te_make(a, requires_grad=True):
        return te.tensor(a, dtype=np.float64, requires_grad=requires_grad)

    def torch_make(a, requires_grad=True):
        return torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _derivatives(fn, arrays, te_make, te_grad)
        theirs = _derivatives(_torch_twin(fn, torch), arrays, torch_make, torch_grad)

    def arr(t, shape):
        if t is None:
            return np.zeros(shape)
        return t.numpy() if isinstance(t, te.Tensor) else t.detach().numpy()

    assert_same(arr(ours[0], None), arr(theirs[0], None), f"{name} forward")
    # a row that multiplies by its input (softmax(a) * a) turns rounding noise of a derivative into
    # noise of the input's size: compare the derivatives up to rounding of terms that large
    inputs = [np.abs(a[np.isfinite(a)]) for a in arrays]
    scale = max([0.0] + [float(a.max()) for a in inputs if a.size])
    for order in (1, 2):
        for i, (a, b) in enumerate(zip(ours[order], theirs[order])):
            a, b = arr(a, arrays[i].shape), arr(b, arrays[i].shape)
            if order == 2 and name in SECOND_ORDER_AT_ZERO_BASE:
                at_zero = np.broadcast_to(arrays[0] == 0, a.shape)  # see docs/design-choices.md
                a, b = np.where(at_zero, 0, a), np.where(at_zero, 0, b)
            assert_same(a, b, f"{name}: derivative {order} in input {i}", scale)


# --- reductions and dim-taking ops over random shapes and dims --------------------------------------

DIM_OPS = {
    "sum": (lambda x, d: te.sum(x, d), lambda torch, x, d: torch.sum(x, d)),
    "mean": (lambda x, d: te.mean(x, d), lambda torch, x, d: torch.mean(x, d)),
    "var": (lambda x, d: te.var(x, d), lambda torch, x, d: torch.var(x, d)),
    "amax": (lambda x, d: te.amax(x, d), lambda torch, x, d: torch.amax(x, d)),
    "max_dim": (lambda x, d: te.max(x, d[0]).values, lambda torch, x, d: torch.max(x, d[0]).values),
    "argmax_keepdim": (
        lambda x, d: te.argmax(x, d[0] if d else None, keepdim=True),
        lambda torch, x, d: torch.argmax(x, d[0] if d else None, keepdim=True),
    ),
    "softmax": (lambda x, d: te.softmax(x, d[0]), lambda torch, x, d: torch.softmax(x, d[0])),
    "log_softmax": (lambda x, d: te.log_softmax(x, d[0]), lambda torch, x, d: torch.log_softmax(x, d[0])),
    "squeeze": (lambda x, d: te.squeeze(x, d), lambda torch, x, d: torch.squeeze(x, d)),
    "unsqueeze": (lambda x, d: te.unsqueeze(x, d[0]), lambda torch, x, d: torch.unsqueeze(x, d[0])),
    "flatten": (lambda x, d: te.flatten(x, d[0]), lambda torch, x, d: torch.flatten(x, d[0])),
}
OUTCOMES = {}  # (op, outcome) -> count of generated cases


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    """With ``pytest -s``, print how many generated cases agreed with PyTorch and how many both refused."""
    yield
    for (name, outcome), count in sorted(OUTCOMES.items()):
        print(f"dims/shapes vs torch: {name} {outcome} {count}")


def _outcome(call):
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call()
    except (IndexError, ValueError, RuntimeError, TypeError) as e:
        return None, type(e)
    return out, None


@pytest.mark.parametrize("name", sorted(DIM_OPS))
@SETTINGS
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
        elements=st.one_of(st.floats(-10, 10), st.sampled_from(EXTREMES)),
    ),
    dims=st.lists(st.integers(-4, 3), min_size=1, max_size=2),
)
def test_dims_and_shapes_match_torch(name, x, dims):
    """Same value and gradient as PyTorch, or both refuse (IndexError for a dim out of range)."""
    torch = pytest.importorskip("torch")
    ours_fn, theirs_fn = DIM_OPS[name]
    dims = tuple(dims)
    xt = te.tensor(x, dtype=np.float64, requires_grad=True)
    xs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ours, our_error = _outcome(lambda: ours_fn(xt, dims))
    theirs, their_error = _outcome(lambda: theirs_fn(torch, xs, dims))
    if their_error is not None or our_error is not None:
        OUTCOMES[name, "refused"] = OUTCOMES.get((name, "refused"), 0) + 1
        assert our_error is not None and their_error is not None, (
            name,
            x.shape,
            dims,
            our_error,
            their_error,
        )
        distinct = len({d % builtins.max(x.ndim, 1) for d in dims}) == len(dims)
        if their_error is IndexError and distinct:  # a repeated dim may be reported first instead
            assert our_error is IndexError
        return
    OUTCOMES[name, "agreed"] = OUTCOMES.get((name, "agreed"), 0) + 1
    assert_same(ours.numpy(), theirs.detach().numpy(), f"{name}{dims} on {x.shape}")
    if theirs.dtype.is_floating_point and theirs.requires_grad and theirs.numel():
        v = np.random.default_rng(0).standard_normal(theirs.shape)
        with np.errstate(all="ignore"):
            (g,) = te.grad(ours, xt, te.tensor(v, dtype=np.float64), allow_unused=True)
        (h,) = torch.autograd.grad(theirs, xs, torch.tensor(v), allow_unused=True)
        assert_same(
            g.numpy() if g is not None else np.zeros(x.shape),
            h.numpy() if h is not None else np.zeros(x.shape),
            f"{name}{dims} gradient",
        )
