"""Raw-array convolution kernels: the CPU (Numba) and GPU (array-module, run here with NumPy)
backends against the NumPy reference, the adjoint identities, and PyTorch where it imports."""

from unittest import mock

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyexit.backend.cpu import conv as cpu_conv
from tinyexit.backend.geometry import conv_geometry
from tinyexit.backend.gpu import conv as gpu_conv
from tinyexit.backend.reference import conv as ref_conv

BACKENDS = {"reference": ref_conv, "cpu": cpu_conv, "gpu-numpy": gpu_conv}
FAST = {"cpu": cpu_conv, "gpu-numpy": gpu_conv}

# (N, C, H, W, O, (kh, kw), stride, padding): odd sizes, 1x1/2x2/3x3 kernels, strides 1 and 2.
CASES = [
    (2, 3, 7, 9, 4, (3, 3), 1, 1),
    (3, 5, 7, 9, 2, (3, 3), 2, 1),
    (2, 5, 7, 9, 4, (3, 3), 2, 0),
    (2, 1, 7, 9, 3, (1, 1), 1, 0),
    (3, 4, 9, 7, 5, (1, 1), 2, 0),
    (2, 4, 7, 9, 3, (1, 1), 1, 1),
    (2, 2, 8, 6, 3, (2, 2), 2, 0),
    (3, 3, 7, 9, 2, (2, 2), 1, 1),
    (2, 3, 8, 8, 2, (3, 3), 2, 0),  # the last input row and column touch no window
    (2, 4, 7, 9, 3, (3, 2), (2, 1), (1, 0)),
    (2, 3, 3, 3, 2, (3, 3), 1, 0),  # a 1x1 output
]
# Channel counts and sizes that fill the 4x4 blocks of the CPU matrix products, with and without
# leftover rows; padding larger than the kernel (the stride-1 input gradient is then not a
# convolution); 1x1 kernels with stride 1 and 2.
BLOCK_CASES = [
    (3, 8, 5, 5, 8, (1, 1), 1, 0),
    (2, 16, 8, 8, 24, (3, 3), 1, 1),
    (3, 17, 9, 7, 13, (3, 3), 1, 2),
    (2, 7, 6, 6, 9, (5, 5), 1, 4),
    (2, 12, 9, 11, 8, (1, 1), 2, 0),
    (1, 2, 4, 4, 3, (3, 3), 1, 3),
    (2, 6, 6, 6, 40, (3, 3), 1, 1),  # forward tiles two registers and one register wide
    (1, 5, 5, 7, 37, (3, 3), 2, 1),
]


def _ids(cases):
    return [f"n{n}c{c}-{h}x{w}-o{o}-k{k[0]}{k[1]}-s{s}-p{p}" for n, c, h, w, o, k, s, p in cases]


IDS, BLOCK_IDS = _ids(CASES), _ids(BLOCK_CASES)


def _data(case, dtype, seed=0):
    """Random x, w and an output gradient gy for a case."""
    n, c, h, w, o, khw, stride, padding = case
    rng = np.random.default_rng(seed)
    _, _, (ho, wo) = conv_geometry((n, c, h, w), (o, c) + khw, stride, padding)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c) + khw).astype(dtype)
    gy = rng.standard_normal((n, o, ho, wo)).astype(dtype)
    return x, wt, gy


def _all_three(mod, case, x, w, gy):
    """Return conv2d, its input gradient and its weight gradient computed by ``mod``."""
    stride, padding = case[6], case[7]
    return (
        mod.conv2d(x, w, stride, padding),
        mod.conv2d_input_grad(gy, w, x.shape[2:], stride, padding),
        mod.conv2d_weight_grad(x, gy, w.shape[2:], stride, padding),
    )


def _close(actual, desired, rtol):
    """Relative tolerance, with an absolute floor scaled to the result for entries near 0."""
    atol = rtol * max(1.0, float(np.abs(desired).max()))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("name", FAST)
def test_matches_reference(name, case, dtype):
    x, w, gy = _data(case, dtype)
    expected = _all_three(ref_conv, case, x, w, gy)
    for got, want in zip(_all_three(FAST[name], case, x, w, gy), expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.flags.c_contiguous
        _close(got, want, 1e-10 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("case", CASES + BLOCK_CASES, ids=IDS + BLOCK_IDS)
@pytest.mark.parametrize("columns_first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("tiles", [False, True], ids=["columns", "weight-tiles"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cpu_column_layouts(monkeypatch, case, columns_first, tiles, dtype):
    # the CPU kernels pick a column layout per call: force each one on every case, including
    # sizes that are and are not multiples of the 4x4 blocks and 6-row tiles of the matrix
    # products; the channels-last products go through the columns in several blocks of VEC
    x, w, gy = _data(case, dtype)
    monkeypatch.setattr(cpu_conv, "use_columns_first", lambda k, pixels: columns_first)
    monkeypatch.setattr(cpu_conv, "_shifting_pays", lambda *args: columns_first)
    monkeypatch.setattr(cpu_conv, "_weight_tiles_pay", lambda *args: tiles)
    monkeypatch.setattr(cpu_conv, "K_BLOCK", cpu_conv.VEC)
    expected = _all_three(ref_conv, case, x, w, gy)
    for got, want in zip(_all_three(cpu_conv, case, x, w, gy), expected):
        assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
        _close(got, want, 1e-10 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("threads", ["one", "all"])
@pytest.mark.parametrize("columns_first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("case", [BLOCK_CASES[2], CASES[1]], ids=["stride1", "stride2"])
def test_cpu_threads(monkeypatch, threads, columns_first, case):
    # the batch is split between Numba's threads, each with its own partial weight gradient; 3
    # images split unevenly between 2 threads. Calls this small normally stay in the calling
    # thread (PARALLEL_MACS, SERIAL_CALLS): force the parallel wrappers of every kernel. float32,
    # the dtype that training compiles them for anyway.
    monkeypatch.setattr(cpu_conv, "PARALLEL_MACS", 0)
    monkeypatch.setattr(cpu_conv, "SERIAL_CALLS", 0)
    monkeypatch.setattr(cpu_conv, "use_columns_first", lambda k, pixels: columns_first)
    monkeypatch.setattr(cpu_conv, "_shifting_pays", lambda *args: columns_first)
    monkeypatch.setattr(cpu_conv, "_weight_tiles_pay", lambda *args: columns_first)
    x, w, gy = _data(case, np.float32)
    expected = _all_three(ref_conv, case, x, w, gy)
    before = numba.get_num_threads()
    numba.set_num_threads(1 if threads == "one" else numba.config.NUMBA_NUM_THREADS)
    try:
        for got, want in zip(_all_three(cpu_conv, case, x, w, gy), expected):
            _close(got, want, 1e-5)
    finally:
        numba.set_num_threads(before)


def test_cpu_small_and_first_calls_stay_in_the_calling_thread(monkeypatch):
    # a parallel wrapper compiles only for a kernel called SERIAL_CALLS times with enough work
    monkeypatch.setattr(cpu_conv, "_CALLS", {})
    big, small = 1 << 30, cpu_conv.PARALLEL_MACS - 1
    threads = [cpu_conv._threads(64, big, "kernel", np.float32) for _ in range(cpu_conv.SERIAL_CALLS + 1)]
    assert threads[:-1] == [1] * cpu_conv.SERIAL_CALLS
    assert threads[-1] == min(numba.get_num_threads(), 64)
    assert cpu_conv._threads(64, small, "kernel", np.float32) == 1
    assert cpu_conv._threads(1, big, "kernel", np.float32) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("name", BACKENDS)
def test_adjoint_identities(name, case):
    # <conv2d(x, w), g> == <x, conv2d_input_grad(g, w)> == <w, conv2d_weight_grad(x, g)>
    x, w, gy = _data(case, np.float64, seed=1)
    y, gx, gw = _all_three(BACKENDS[name], case, x, w, gy)
    lhs = np.vdot(y, gy)
    np.testing.assert_allclose(np.vdot(x, gx), lhs, rtol=1e-10)
    np.testing.assert_allclose(np.vdot(w, gw), lhs, rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("name", BACKENDS)
def test_matches_torch(name, case):
    torch = pytest.importorskip("torch")
    x, w, gy = _data(case, np.float64, seed=2)
    stride, padding = case[6], case[7]
    tx, tw, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    expected = (
        torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding),
        torch.nn.grad.conv2d_input(x.shape, tw, tg, stride=stride, padding=padding),
        torch.nn.grad.conv2d_weight(tx, w.shape, tg, stride=stride, padding=padding),
    )
    for got, want in zip(_all_three(BACKENDS[name], case, x, w, gy), expected):
        _close(got, want.numpy(), 1e-10)


@pytest.mark.parametrize("name", BACKENDS)
def test_float32_stays_float32(name):
    case = CASES[1]
    x, w, gy = _data(case, np.float32)
    for out in _all_three(BACKENDS[name], case, x, w, gy):
        assert out.dtype == np.float32


@pytest.mark.parametrize("name", BACKENDS)
def test_non_contiguous_inputs(name):
    case = CASES[0]
    x, w, gy = _data(case, np.float64)
    expected = _all_three(ref_conv, case, x, w, gy)
    # the same values, seen through transposed and strided views
    xv = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    wv = np.repeat(w, 2, axis=0)[::2]
    gv = np.asfortranarray(gy)
    assert not (xv.flags.c_contiguous or wv.flags.c_contiguous or gv.flags.c_contiguous)
    for got, want in zip(_all_three(BACKENDS[name], case, xv, wv, gv), expected):
        assert got.flags.c_contiguous
        _close(got, want, 1e-10)


@pytest.mark.parametrize("name", BACKENDS)
def test_impossible_shapes_raise(name):
    mod = BACKENDS[name]
    x, w = np.zeros((2, 3, 4, 4)), np.zeros((5, 3, 7, 7))
    with pytest.raises(ValueError, match="larger than the padded input"):
        mod.conv2d(x, w, 1, 1)
    with pytest.raises(ValueError, match="channels"):
        mod.conv2d(x, np.zeros((5, 2, 3, 3)), 1, 1)
    with pytest.raises(ValueError, match="stride"):
        mod.conv2d(x, np.zeros((5, 3, 3, 3)), 0, 1)
    with pytest.raises(ValueError, match="output gradient has shape"):
        mod.conv2d_input_grad(np.zeros((2, 5, 3, 3)), np.zeros((5, 3, 3, 3)), (4, 4), 1, 1)
    with pytest.raises(ValueError, match="output gradient has shape"):
        mod.conv2d_weight_grad(x, np.zeros((2, 5, 3, 3)), (3, 3), 1, 1)


@pytest.mark.parametrize("offset", [0, 64, 2048, 4032])
def test_cpu_outputs_start_apart_from_inputs_modulo_4k(offset):
    """Outputs are placed ``ALIAS_GAP`` bytes past the input modulo 4 KiB, wherever the input lies,
    and the values do not depend on it."""
    x64 = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    buffer = np.empty(x64.size + 2048, np.float32)
    start = ((-buffer.ctypes.data) % 4096 + offset) // 4
    x = buffer[start : start + x64.size].reshape(x64.shape)
    x[:] = x64
    w = np.random.default_rng(1).standard_normal((4, 3, 1, 1)).astype(np.float32)
    y = cpu_conv.conv2d(x, w, 1, 0)
    assert (y.ctypes.data - x.ctypes.data) % 4096 == cpu_conv.ALIAS_GAP and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref_conv.conv2d(x64, w, 1, 0), rtol=1e-5, atol=1e-5)
    gy = np.ones((2, 4, 16, 16), np.float32)
    gx = cpu_conv.conv2d_input_grad(gy, np.ones((4, 3, 3, 3), np.float32), (32, 32), 2, 1)
    assert (gx.ctypes.data - gy.ctypes.data) % 4096 == cpu_conv.ALIAS_GAP


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.bool_])
def test_cpu_kernels_refuse_non_float_arrays_with_a_clear_error(dtype):
    x, w, gy = (np.ones(shape, dtype) for shape in [(1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 5, 5)])
    with pytest.raises(TypeError, match=f"float32 or float64, got {np.dtype(dtype)}"):
        cpu_conv.conv2d(x, w, 1, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        cpu_conv.conv2d_input_grad(gy, w, (5, 5), 1, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        cpu_conv.conv2d_weight_grad(x, gy, (3, 3), 1, 1)


GEOMETRIES = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 9),  # C
    st.integers(1, 9),  # H
    st.integers(1, 9),  # W
    st.integers(1, 40),  # O
    st.tuples(st.integers(1, 4), st.integers(1, 4)),  # kernel
    st.tuples(st.integers(1, 3), st.integers(1, 3)),  # stride
    st.tuples(st.integers(0, 4), st.integers(0, 4)),  # padding
).filter(lambda g: g[2] + 2 * g[7][0] >= g[5][0] and g[3] + 2 * g[7][1] >= g[5][1])


@settings(max_examples=60, deadline=None)
@given(case=GEOMETRIES, shifted=st.booleans(), tiles=st.booleans())
def test_cpu_kernels_match_reference_for_any_geometry(case, shifted, tiles):
    # both forward layouts and weight gradients with and without the tiles, which leave out
    # products with the padding (tile_plan): windows partly or wholly over the padding, strides
    # past the kernel
    x, w, gy = _data(case, np.float64)
    with (
        mock.patch.object(cpu_conv, "_shifting_pays", lambda *args: shifted),
        mock.patch.object(cpu_conv, "_weight_tiles_pay", lambda *args: tiles),
    ):
        got = _all_three(cpu_conv, case, x, w, gy)
    for actual, desired in zip(got, _all_three(ref_conv, case, x, w, gy)):
        _close(actual, desired, 1e-10)


def _sums_inside(x, w, gy, stride, padding):
    """conv2d and its weight gradient as sums over the taps whose input lies inside the image
    only (PyTorch's oneDNN path): 0 * inf from the padding never enters them."""
    (n, _, h, wd), (o, _, kh, kw), (sh, sw), (ph, pw) = x.shape, w.shape, stride, padding
    _, _, (ho, wo) = conv_geometry(x.shape, w.shape, stride, padding)
    y, gw = np.zeros((n, o, ho, wo)), np.zeros(w.shape)
    for i in range(ho):
        for j in range(wo):
            for p in range(kh):
                for q in range(kw):
                    a, b = i * sh - ph + p, j * sw - pw + q
                    if 0 <= a < h and 0 <= b < wd:
                        y[:, :, i, j] += x[:, :, a, b] @ w[:, :, p, q].T
                        gw[:, :, p, q] += gy[:, :, i, j].T @ x[:, :, a, b]
    return y, gw


@settings(max_examples=40, deadline=None)
@given(
    case=GEOMETRIES,
    value=st.sampled_from([np.inf, -np.inf, np.nan]),
    where=st.integers(0, 10_000),
    shifted=st.booleans(),
    tiles=st.booleans(),
)
def test_cpu_kernels_with_a_non_finite_weight_or_gradient(case, value, where, shifted, tiles):
    # each output of the forward (a non-finite weight) and of the weight gradient (a non-finite
    # output gradient) is the reference's (zero padding times inf is NaN) or the sum over the taps
    # inside the image only (PyTorch's oneDNN path); the two differ only where a window hangs over
    # the padding (docs/design-choices.md)
    x, w, gy = _data(case, np.float64)
    w.reshape(-1)[where % w.size] = value
    gy.reshape(-1)[where % gy.size] = value
    stride, padding = case[6], case[7]
    with (
        mock.patch.object(cpu_conv, "_shifting_pays", lambda *args: shifted),
        mock.patch.object(cpu_conv, "_weight_tiles_pay", lambda *args: tiles),
    ):
        got = (
            cpu_conv.conv2d(x, w, stride, padding),
            cpu_conv.conv2d_weight_grad(x, gy, w.shape[2:], stride, padding),
        )
    with np.errstate(invalid="ignore"):
        reference = (
            ref_conv.conv2d(x, w, stride, padding),
            ref_conv.conv2d_weight_grad(x, gy, w.shape[2:], stride, padding),
        )
        inside = _sums_inside(x, w, gy, stride, padding)
    same = lambda a, b: np.isclose(a, b, rtol=1e-10, atol=1e-10, equal_nan=True)  # noqa: E731
    for actual, ref, ins in zip(got, reference, inside):
        assert np.all(same(actual, ref) | same(actual, ins))
