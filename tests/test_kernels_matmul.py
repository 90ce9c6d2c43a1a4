"""The matrix-product kernels against the NumPy reference: shapes, broadcasting, dtypes, the BLAS fallback.

The ``gpu`` module is written for any array module, so it runs here on NumPy arrays.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tinyexit.backend import cpu, gpu, reference

cpu_matmul_module = importlib.import_module("tinyexit.backend.cpu.matmul")

CASES = [
    ((64, 128), (128, 100)),
    ((3, 5, 7), (7, 2)),
    ((2, 1, 4, 3), (5, 3, 6)),
    ((1, 1), (1, 1)),
    ((4, 9), (2, 9, 1)),
    ((2, 3, 0), (2, 0, 4)),
]


@pytest.mark.parametrize("kernel", [cpu.matmul, gpu.matmul], ids=["cpu", "gpu-numpy"])
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shapes", CASES, ids=str)
def test_matmul_kernels_match_reference(shapes, dtype, rtol, kernel):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    want = reference.matmul(a, b)
    got = kernel(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10)


def test_non_contiguous_operands():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 5)).T  # (5, 6), Fortran order
    b = rng.standard_normal((8, 6))[:, ::-1].T[:, ::2]  # (6, 4), strided
    np.testing.assert_allclose(cpu.matmul(a, b), a @ b, rtol=1e-12)


def test_large_or_integer_products_fall_back_to_numpy(monkeypatch):
    monkeypatch.setattr(cpu_matmul_module, "_matmul", lambda *args: pytest.fail("the Numba loop ran"))
    big = np.ones((4, 129, 129), dtype=np.float32)  # 129**3 > SMALL_MACS = 2**21
    np.testing.assert_array_equal(cpu.matmul(big[0], big[0]), big[0] @ big[0])
    np.testing.assert_array_equal(cpu.matmul(big, big), big @ big)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(cpu.matmul(ints, ints.T), ints @ ints.T)
