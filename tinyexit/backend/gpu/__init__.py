"""Kernels for CuPy arrays.

With CuPy installed, the hot kernels are the CUDA C ``RawKernel`` modules ``raw_conv``,
``raw_pool`` and ``raw_resize``. The array-module modules ``conv``, ``pool`` and ``resize``
(collected in ``portable``: the same functions written with operations NumPy and CuPy share) are
the fallback without CuPy and a second oracle: the tests run them on NumPy arrays against the
reference, and on the strict CPU stand-in for the device.
"""

from tinyexit.backend import _cupy

if _cupy is not None:
    from .raw_conv import conv2d, conv2d_input_grad, conv2d_weight_grad
    from .raw_pool import avg_pool2d, avg_pool2d_adjoint, max_pool2d, max_pool2d_gather, max_pool2d_scatter
    from .raw_resize import interpolate_bilinear, interpolate_bilinear_adjoint
else:
    from .portable import (
        avg_pool2d,
        avg_pool2d_adjoint,
        conv2d,
        conv2d_input_grad,
        conv2d_weight_grad,
        interpolate_bilinear,
        interpolate_bilinear_adjoint,
        max_pool2d,
        max_pool2d_gather,
        max_pool2d_scatter,
    )
from .elementwise import select
from .matmul import matmul
from .normalization import batch_norm, batch_norm_grad, batch_norm_grad_grad
