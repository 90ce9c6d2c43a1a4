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


def cupy_available() -> bool:
    """Return True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def array_module(x) -> ModuleType:
    """Return ``cupy`` for CuPy arrays, else ``numpy``."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
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
        return _cupy.asarray(data)
    if _cupy is not None and isinstance(data, _cupy.ndarray):
        return _cupy.asnumpy(data)
    return np.asarray(data)


def kernels(x) -> ModuleType:
    """Return the kernel package for the array ``x``.

    NumPy arrays use the Numba kernels unless ``TINYEXIT_KERNELS=reference`` is set, which
    selects the NumPy reference (handy for debugging a fast kernel against its oracle).
    """
    if array_module(x) is not np:
        return importlib.import_module("tinyexit.backend.gpu")
    if os.environ.get("TINYEXIT_KERNELS") == "reference":
        return importlib.import_module("tinyexit.backend.reference")
    return importlib.import_module("tinyexit.backend.cpu")


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` in place, with repeated indices adding up."""
    if array_module(target) is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)
