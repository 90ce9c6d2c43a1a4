"""Kernels: the plain NumPy reference, the readable specification and the test oracle."""

from .conv import conv2d, conv2d_input_grad, conv2d_weight_grad
from .elementwise import select
from .matmul import matmul
from .normalization import batch_norm, batch_norm_grad, batch_norm_grad_grad
from .pool import avg_pool2d, avg_pool2d_adjoint, max_pool2d, max_pool2d_gather, max_pool2d_scatter
from .resize import interpolate_bilinear, interpolate_bilinear_adjoint
