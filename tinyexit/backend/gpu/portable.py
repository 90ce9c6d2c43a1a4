"""The array-module GPU kernels (no CUDA C): the fallback without CuPy and a second oracle.

Same names and signatures as the ``reference``, ``cpu`` and ``gpu`` kernel packages.
"""

from .conv import conv2d, conv2d_input_grad, conv2d_weight_grad
from .elementwise import select
from .matmul import matmul
from .normalization import batch_norm, batch_norm_grad, batch_norm_grad_grad
from .pool import avg_pool2d, avg_pool2d_adjoint, max_pool2d, max_pool2d_gather, max_pool2d_scatter
from .resize import interpolate_bilinear, interpolate_bilinear_adjoint

__all__ = [
    "avg_pool2d",
    "avg_pool2d_adjoint",
    "batch_norm",
    "batch_norm_grad",
    "batch_norm_grad_grad",
    "conv2d",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "interpolate_bilinear",
    "interpolate_bilinear_adjoint",
    "matmul",
    "max_pool2d",
    "max_pool2d_gather",
    "max_pool2d_scatter",
    "select",
]
