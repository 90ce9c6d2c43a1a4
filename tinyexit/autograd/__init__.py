"""Reverse-mode automatic differentiation whose backward passes are themselves differentiable."""

from .creation import (
    arange,
    bool_,
    default_generator,
    float32,
    float64,
    full,
    int32,
    int64,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .engine import backward, grad
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck, gradgradcheck
from .tensor import Tensor
