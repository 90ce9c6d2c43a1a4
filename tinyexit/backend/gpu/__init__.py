"""Kernels: CuPy, for CuPy arrays (written with the array-module idiom, so they also run on NumPy arrays)."""
from .conv import conv2d, conv2d_input_grad, conv2d_weight_grad
from .pool import avg_pool2d, avg_pool2d_adjoint, max_pool2d, max_pool2d_gather, max_pool2d_scatter
from .resize import interpolate_bilinear, interpolate_bilinear_adjoint
from .matmul import matmul
