"""tinyexit: Learning to Weight Samples for Dynamic Early-exiting Networks (L2W), from scratch.

Public names follow PyTorch where PyTorch has one: ``te.tensor``, ``te.grad``, ``te.no_grad``,
``te.nn``, ``te.optim``, ...
"""
from .autograd import (Function, Tensor, arange, bool_, enable_grad, float32, float64, full, grad, gradcheck,
                       gradgradcheck, int32, int64, is_grad_enabled, manual_seed, no_grad, ones, ones_like, rand,
                       randn, set_grad_enabled, tensor, zeros, zeros_like)
from .ops import (abs, amax, amin, argmax, argmin, broadcast_to, cat, clamp, exp, flatten, log, log_softmax, matmul,
                  max, maximum, mean, min, minimum, permute, relu, reshape, sigmoid, softmax, sqrt, squeeze, stack,
                  sum, tanh, transpose, unsqueeze, var, where)

from . import evaluate, l2w, models, nn, optim

__version__ = "0.1.0"
