"""Differentiable operations. Each op class is followed by its functional alias."""

from .arithmetic import add, div, mul, neg, pow, sub
from .broadcast import broadcast_to, sum_to
from .compare import eq, ge, gt, le, lt, ne
from .loss import cross_entropy
from .matmul import matmul
from .reduce import amax, amin, argmax, argmin, max, mean, min, sum, var
from .shape import cat, flatten, getitem, permute, reshape, squeeze, stack, transpose, unsqueeze
from .softmax import log_softmax, softmax
from .unary import (
    abs,
    cast,
    clamp,
    exp,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    to_device_op,
    where,
)
