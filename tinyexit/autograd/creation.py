"""Making tensors: ``tensor``, ``zeros``, ``ones``, ``randn``, ... and the global random seed."""

from __future__ import annotations

import numpy as np

from ..backend import check_device, to_device
from .tensor import Tensor, as_shape, check_dtype

float32, float64, int64, int32, bool_ = np.float32, np.float64, np.int64, np.int32, np.bool_

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed the generator behind ``randn``, ``rand`` and the layers' initialisation."""
    global _rng
    _rng = np.random.default_rng(seed)


def default_generator() -> np.random.Generator:
    """The global NumPy Generator that tinyexit draws random numbers from."""
    return _rng


def tensor(data, requires_grad: bool = False, dtype=None, device: str = "cpu") -> Tensor:
    """Build a tensor from an array, a list or a number (copies the data, as ``torch.tensor``).

    Python floats become float32 and Python ints int64, as in PyTorch; NumPy arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    from_python = not hasattr(data, "dtype")
    try:
        array = np.array(data) if from_python else data
    except ValueError:
        raise TypeError(f"cannot make a tensor from {type(data).__name__} of ragged content") from None
    if array.dtype.kind in "USOV":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} holding {array.dtype} values")
    if dtype is not None:
        array = array.astype(check_dtype(dtype))
    elif from_python and array.dtype == np.float64:
        array = array.astype(np.float32)
    array = to_device(array, check_device(device))
    if array is data:
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def _filled(fill, shape, dtype, device, requires_grad) -> Tensor:
    array = to_device(
        np.full(as_shape(shape), fill, dtype=check_dtype(dtype or np.float32)), check_device(device)
    )
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _filled(0, shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return _filled(1, shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``."""
    return _filled(fill_value, (shape,), dtype, device, requires_grad)


def zeros_like(x: Tensor, dtype=None) -> Tensor:
    """Zeros of ``x``'s shape, dtype (unless given) and device."""
    return zeros(x.shape, dtype=dtype or x.dtype, device=x.device)


def ones_like(x: Tensor, dtype=None) -> Tensor:
    """Ones of ``x``'s shape, dtype (unless given) and device."""
    return ones(x.shape, dtype=dtype or x.dtype, device=x.device)


def randn(*shape, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the global generator."""
    array = _rng.standard_normal(as_shape(shape)).astype(check_dtype(dtype or np.float32))
    return Tensor(to_device(array, check_device(device)), requires_grad=requires_grad)


def rand(*shape, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from the global generator."""
    array = _rng.random(as_shape(shape)).astype(check_dtype(dtype or np.float32))
    return Tensor(to_device(array, check_device(device)), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device: str = "cpu") -> Tensor:
    """Evenly spaced values in [start, end), as ``torch.arange``."""
    array = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is not None:
        array = array.astype(check_dtype(dtype))
    elif array.dtype == np.float64:
        array = array.astype(np.float32)
    return Tensor(to_device(array, check_device(device)))
