"""The CUDA C kernels of ``backend/gpu/raw_*``: their index maths on the CPU, through NumPy
emulators of every kernel, against the reference; compiled and run on the GPU where CuPy is.

The emulators (``raw_kernel_emulator``) replace ``raw_launch.launch``, so everything else in the
raw modules (argument checks, buffers, host tables, the cuBLAS products) runs as on the GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import raw_kernel_emulator
from test_kernels_conv import BLOCK_CASES, CASES
from test_kernels_pool_resize import POOL_CASES, RESIZE_CASES

from tinyexit import backend
from tinyexit.backend import cupy_available, geometry
from tinyexit.backend import gpu as gpu_kernels
from tinyexit.backend.gpu import raw_conv, raw_launch, raw_pool, raw_resize
from tinyexit.backend.reference import conv as ref_conv
from tinyexit.backend.reference import pool as ref_pool
from tinyexit.backend.reference import resize as ref_resize

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float64, np.float32]
SOURCES = {
    raw_conv: ("im2col", "col2im"),
    raw_pool: ("avg_pool", "avg_pool_adjoint", "max_pool", "max_pool_scatter", "max_pool_gather"),
    raw_resize: ("resize", "resize_adjoint"),
}


def needs_gpu(test):
    """Mark ``test`` as a GPU test, skipped cleanly without CuPy and a CUDA device."""
    return pytest.mark.gpu(pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA GPU")(test))


@pytest.fixture
def emulated(monkeypatch):
    """Run the raw modules with every kernel launch replaced by its NumPy emulator."""
    monkeypatch.setattr(raw_launch, "launch", raw_kernel_emulator.launch)


def _rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _same(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert actual.flags.c_contiguous
    rtol = RTOL[expected.dtype.type]  # and an absolute floor scaled to the result, for sums near 0
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _check_conv(mod, case, dtype, to=np.asarray, back=np.asarray):
    n, c, h, w, o, khw, stride, padding = case
    ho, wo = geometry.conv_geometry((n, c, h, w), (o, c) + khw, stride, padding)[2]
    x, wt, gy = _rand((n, c, h, w), dtype, 0), _rand((o, c) + khw, dtype, 1), _rand((n, o, ho, wo), dtype, 2)
    _same(back(mod.conv2d(to(x), to(wt), stride, padding)), ref_conv.conv2d(x, wt, stride, padding))
    _same(
        back(mod.conv2d_input_grad(to(gy), to(wt), (h, w), stride, padding)),
        ref_conv.conv2d_input_grad(gy, wt, (h, w), stride, padding),
    )
    _same(
        back(mod.conv2d_weight_grad(to(x), to(gy), khw, stride, padding)),
        ref_conv.conv2d_weight_grad(x, gy, khw, stride, padding),
    )


def _check_pool(mod, case, dtype, x, to=np.asarray, back=np.asarray):
    y_ref = ref_pool.avg_pool2d(x, *case)
    gy = _rand(y_ref.shape, dtype, 1)
    hw = x.shape[2:]
    _same(back(mod.avg_pool2d(to(x), *case)), y_ref)
    _same(back(mod.avg_pool2d_adjoint(to(gy), hw, *case)), ref_pool.avg_pool2d_adjoint(gy, hw, *case))
    m_ref, idx_ref = ref_pool.max_pool2d(x, *case)
    m, idx = mod.max_pool2d(to(x), *case)
    _same(back(m), m_ref)
    assert back(idx).dtype == np.int64 and np.array_equal(back(idx), idx_ref)
    _same(back(mod.max_pool2d_scatter(to(gy), idx, hw)), ref_pool.max_pool2d_scatter(gy, idx_ref, hw))
    _same(back(mod.max_pool2d_gather(to(x), idx)), ref_pool.max_pool2d_gather(x, idx_ref))


def _check_resize(mod, hw, size, align, dtype, to=np.asarray, back=np.asarray):
    x = _rand((2, 3) + hw, dtype, 0)[..., ::-1]  # not contiguous
    y_ref = ref_resize.interpolate_bilinear(x, size, align)
    gy = _rand(y_ref.shape, dtype, 1)
    _same(back(mod.interpolate_bilinear(to(x), size, align)), y_ref)
    _same(
        back(mod.interpolate_bilinear_adjoint(to(gy), hw, align)),
        ref_resize.interpolate_bilinear_adjoint(gy, hw, align),
    )


def _pool_inputs(dtype):
    """A non-contiguous random input, and one with ties, -inf rows and a NaN."""
    x = _rand((2, 3, 7, 10), dtype, 0)[..., :0:-1]
    special = np.round(_rand((2, 3, 7, 9), dtype, 3))
    special[0, 0, :2] = -np.inf
    special[1, 2, 3, 4] = np.nan
    return [x, special]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", CASES + BLOCK_CASES)
def test_emulated_conv_matches_reference(emulated, case, dtype):
    _check_conv(raw_conv, case, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "k{}s{}p{}".format(*c))
def test_emulated_pool_matches_reference(emulated, case, dtype):
    for x in _pool_inputs(dtype):
        _check_pool(raw_pool, case, dtype, x)


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "{}x{}to{}x{}".format(*c[0], *c[1]))
def test_emulated_resize_matches_reference(emulated, case, dtype, align):
    _check_resize(raw_resize, *case, align, dtype)


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("n_in,n_out", [(1, 4), (4, 1), (5, 5), (7, 16), (16, 7), (32, 8), (8, 32), (3, 100)])
def test_resize_tables_list_exactly_the_outputs_that_read_each_input(n_in, n_out, align):
    i0, i1, _, first, stop = raw_resize.axis_tables(n_in, n_out, align)
    for k in range(n_in):
        readers = np.flatnonzero((i0 == k) | (i1 == k))
        assert np.array_equal(readers, np.arange(first[k], stop[k]))


def test_emulator_catches_a_wrong_index():
    """The emulated test can fail: an im2col that swaps the kernel offsets p and q is caught."""
    im2col = raw_kernel_emulator.im2col

    def swapped(total, x, cols, N, C, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw):
        im2col(total, x, cols, N, C, H, W, kw, kh, Ho, Wo, sh, sw, ph, pw)

    case = (2, 4, 7, 9, 3, (3, 2), (2, 1), (1, 0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(raw_launch, "launch", raw_kernel_emulator.launch)
        mp.setattr(raw_kernel_emulator, "im2col", swapped)
        with pytest.raises(AssertionError):
            _check_conv(raw_conv, case, np.float64)


def test_gpu_package_selects_the_raw_kernels_with_cupy():
    expected = raw_conv if backend._cupy is not None else gpu_kernels.conv
    assert gpu_kernels.conv2d is expected.conv2d
    expected = raw_pool if backend._cupy is not None else gpu_kernels.pool
    assert gpu_kernels.max_pool2d is expected.max_pool2d


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("module", list(SOURCES), ids=lambda m: m.__name__.rsplit(".", 1)[1])
@needs_gpu
def test_raw_kernels_compile(module, dtype):
    for name in SOURCES[module]:
        raw_launch.compiled(module.SOURCE, name, raw_launch.C_TYPES[np.dtype(dtype)]).compile()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@needs_gpu
def test_raw_kernels_on_gpu_match_reference(dtype):
    cp = backend._cupy
    for case in CASES + BLOCK_CASES:
        _check_conv(raw_conv, case, dtype, to=cp.asarray, back=cp.asnumpy)
    for case in POOL_CASES:
        for x in _pool_inputs(dtype):
            _check_pool(raw_pool, case, dtype, x, to=cp.asarray, back=cp.asnumpy)
    for hw, size in RESIZE_CASES:
        for align in (True, False):
            _check_resize(raw_resize, hw, size, align, dtype, to=cp.asarray, back=cp.asnumpy)
