"""Matrix product for NumPy arrays: small products in a serial Numba loop, large ones in BLAS.

The products of a multi-exit network's training step are small (an exit's classifier is
64 x 128 x 100 at batch 64). OpenBLAS runs even those on all its threads, which then spin for a
while after the call, and the parallel Numba convolutions that follow wait for the busy core.
Products of at most ``SMALL_MACS`` multiply-adds therefore run in a serial Numba loop; larger ones,
where BLAS's blocking pays, still go to ``@`` (the effect on a training step: ``docs/benchmarks.md``).
"""

from __future__ import annotations

import numpy as np

from .jit import njit

SMALL_MACS = 1 << 21
"""Products with at most this many multiply-adds (batch included) run in the Numba loop."""


@njit(cache=True)
def _matmul(a, b, c):  # pragma: no cover - compiled
    for s in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(c.shape[2]):
                c[s, i, j] = 0
            for p in range(a.shape[2]):
                aip = a[s, i, p]
                for j in range(c.shape[2]):  # c[i, :] += a[i, p] * b[p, :], contiguous, vectorised
                    c[s, i, j] += aip * b[s, p, j]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """As :func:`tinyexit.backend.reference.matmul.matmul`; small float products in Numba."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    size = int(np.prod(batch))
    if a.dtype != b.dtype or a.dtype.kind != "f" or size * m * k * n > SMALL_MACS:
        return a @ b
    a3 = np.ascontiguousarray(np.broadcast_to(a, batch + (m, k))).reshape(size, m, k)
    b3 = np.ascontiguousarray(np.broadcast_to(b, batch + (k, n))).reshape(size, k, n)
    c = np.empty((size, m, n), dtype=a.dtype)
    _matmul(a3, b3, c)
    return c.reshape(batch + (m, n))
