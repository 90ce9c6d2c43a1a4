"""Array modules and kernels for each device.

Everything outside this package is written once for NumPy and CuPy arrays (the array-module
idiom, ``xp = array_module(x)``). Hot loops live in three kernel packages with identical
function names and signatures:

- ``reference``: plain NumPy, the readable specification and the test oracle;
- ``cpu``: Numba kernels, used for NumPy arrays;
- ``gpu``: CuPy kernels, used for CuPy arrays.

All three check their arguments and compute output sizes with :mod:`tinyexit.backend.geometry`.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np

try:  # CuPy is optional: importing tinyexit never needs it.
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

DEVICES = ("cpu", "cuda")

# The array module behind the "cuda" device: CuPy, or a stand-in a test registered.
_device_xp: ModuleType | None = _cupy


def register_device_module(module: ModuleType | None) -> ModuleType | None:
    """Serve the ``"cuda"`` device with ``module`` instead of CuPy; return the previous one.

    For tests only: a CPU stand-in with CuPy's strictness (``module.ndarray``, ``module.asarray``,
    ``module.asnumpy`` and the NumPy functions the library uses) lets the whole device path run on
    a machine without a GPU. ``register_device_module(previous)`` restores the earlier state.
    """
    global _device_xp
    previous, _device_xp = _device_xp, module
    return previous


def cupy_available() -> bool:
    """Return True when CuPy imports and sees at least one CUDA device (or a stand-in is registered)."""
    if _device_xp is not _cupy:
        return _device_xp is not None
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def array_module(x) -> ModuleType:
    """Return ``cupy`` for CuPy arrays, else ``numpy``."""
    if _device_xp is not None and isinstance(x, _device_xp.ndarray):
        return _device_xp
    return np


def device_of(x) -> str:
    """Return ``"cuda"`` for CuPy arrays, else ``"cpu"``."""
    return "cuda" if array_module(x) is not np else "cpu"


def check_device(device: str) -> str:
    """Validate a device name and return it normalised (``"cuda:0"`` becomes ``"cuda"``)."""
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    if name == "cuda" and not cupy_available():
        raise RuntimeError(
            "device 'cuda' needs CuPy and a CUDA GPU; install the extra with "
            "pip install -e '.[gpu]' on a machine with an NVIDIA GPU"
        )
    return name


def to_device(data, device: str):
    """Copy an array to ``device`` (no copy when it is already there)."""
    device = check_device(device)
    if device == "cuda":
        return _device_xp.asarray(data)
    if _device_xp is not None and isinstance(data, _device_xp.ndarray):
        return _device_xp.asnumpy(data)
    return np.asarray(data)


def kernels(x) -> ModuleType:
    """Return the kernel package for the array ``x``.

    NumPy arrays use the Numba kernels unless ``TINYEXIT_KERNELS=reference`` is set, which
    selects the NumPy reference (handy for debugging a fast kernel against its oracle).
    """
    xp = array_module(x)
    if xp is _cupy:
        return importlib.import_module("tinyexit.backend.gpu")
    if xp is not np:  # a registered stand-in runs the array-module GPU code
        return importlib.import_module("tinyexit.backend.gpu.portable")
    if os.environ.get("TINYEXIT_KERNELS") == "reference":
        return importlib.import_module("tinyexit.backend.reference")
    return importlib.import_module("tinyexit.backend.cpu")


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` in place, with repeated indices adding up."""
    xp = array_module(target)
    if xp is _cupy:
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        xp.add.at(target, index, values)
