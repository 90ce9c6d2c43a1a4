"""Compiling and launching the CUDA C kernels of the ``raw_*`` modules with CuPy.

Every kernel in ``raw_conv``, ``raw_pool`` and ``raw_resize`` follows one pattern, so a reader
learns it once:

- one CUDA thread computes one output element; its flat index ``t`` runs over
  ``0 .. total - 1`` in a *grid-stride loop*, so any ``total`` works with a bounded grid;
- the element type is the macro ``T`` (``float`` or ``double``), fixed at compile time with
  ``-DT=...``; integer sizes are ``long long`` so index products never overflow;
- arrays are C-contiguous and passed as flat pointers; each kernel spells out how it turns
  ``t`` into ``(n, c, i, j)`` and back.

:func:`launch` is the only place that touches CuPy. The tests replace it by a NumPy emulator
of each kernel (same per-thread index arithmetic, run over all ``t`` at once), which checks the
index maths of the CUDA C against the NumPy reference on machines without a GPU.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from tinyexit import backend

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535  # the grid-stride loop covers the rest
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

GRID_STRIDE_LOOP = """
#define FOR_EACH_THREAD(t, total) \\
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (total); \\
         t += (long long)blockDim.x * gridDim.x)
"""


@cache
def compiled(source: str, name: str, c_type: str):
    """Return the CuPy ``RawKernel`` ``name`` of ``source`` with ``T`` defined as ``c_type``."""
    return backend._cupy.RawKernel(GRID_STRIDE_LOOP + source, name, options=(f"-DT={c_type}",))


def launch(source: str, name: str, total: int, dtype, args: tuple) -> None:
    """Run kernel ``name`` of ``source`` with one thread per output element.

    Args:
        source: CUDA C source holding the kernel (``extern "C" __global__``).
        name: The kernel's function name.
        total: Number of output elements, the kernel's first argument.
        dtype: Element type of the floating-point arrays, float32 or float64.
        args: The remaining kernel arguments: C-contiguous CuPy arrays and Python ints
            (passed as ``long long``).
    """
    if total == 0:
        return
    kernel = compiled(source, name, C_TYPES[np.dtype(dtype)])
    blocks = min((total + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, MAX_BLOCKS)
    cast = tuple(np.int64(a) if isinstance(a, (int, np.integer)) else a for a in args)
    kernel((blocks,), (THREADS_PER_BLOCK,), (np.int64(total),) + cast)
