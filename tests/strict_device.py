"""A strict CPU stand-in for CuPy, so every test run checks the device path without a GPU.

``StrictArray`` holds a NumPy array but behaves like ``cupy.ndarray`` where host/device mixing
would crash on a GPU:

- implicit conversion to NumPy (``np.asarray(a)``, ``np.array(a)``, a NumPy function or ufunc
  called on it) raises ``TypeError``, as CuPy's ``__array__`` does;
- arithmetic, comparisons, indexing and assignment with a NumPy array raise ``TypeError``;
- reductions return 0-d device arrays, not NumPy scalars (``float(a)``, ``a.item()`` and
  ``.get()`` bring a value back);
- ``.get()`` and ``xp.asnumpy`` are the only ways back to NumPy; ``xp.asarray``/``xp.array`` the
  only ways there.

``xp`` is the module namespace (the role of ``cupy``): NumPy's functions, taking and returning
stand-in arrays. ``use_strict_device()`` registers it as the ``"cuda"`` device with
:func:`tinyexit.backend.register_device_module`, so ``array_module``, ``to_device``,
``device_of`` and the kernel dispatch (the array-module GPU kernels) all see it.

It is stricter than CuPy in one respect: NumPy functions on device arrays raise even where CuPy's
``__array_function__`` would dispatch them; the library calls ``xp`` functions instead.
"""

from __future__ import annotations

import contextlib
import operator
import types

import numpy as np

from tinyexit.backend import register_device_module

_IMPLICIT = (  # CuPy's message
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


def _mixing(what: str) -> TypeError:
    return TypeError(f"{what}: a NumPy array cannot be mixed with a device array (move it with xp.asarray)")


def _unwrap(value, what: str):
    """The NumPy array inside ``value`` (recursing into lists/tuples/dicts); NumPy arrays raise."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise _mixing(what)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, what) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, what) for k, v in value.items()}
    return value


def _wrap(value):
    """Device arrays for NumPy arrays and NumPy scalars in a result (as CuPy's 0-d arrays)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return StrictArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _call(fn, what: str):
    def call(*args, **kwargs):
        return _wrap(fn(*_unwrap(args, what), **_unwrap(kwargs, what)))

    call.__name__ = getattr(fn, "__name__", what)
    return call


class StrictArray:
    """A NumPy array posing as a ``cupy.ndarray``: no implicit way to or from NumPy."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # np_array + device_array defers to __radd__, which refuses

    def __init__(self, array: np.ndarray):
        self._a = array

    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a device array: use the array module (xp) instead")

    def get(self) -> np.ndarray:
        """Copy to the host, as ``cupy.ndarray.get``."""
        return self._a.copy()

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ or __array_struct__ for NumPy to read
            raise AttributeError(name)
        attr = getattr(self._a, name)
        return _call(attr, f"ndarray.{name}") if callable(attr) else _wrap(attr)

    def __setattr__(self, name, value):
        if name == "_a":
            object.__setattr__(self, name, value)
        elif name == "shape":
            self._a.shape = value
        else:
            raise AttributeError(f"cannot set {name!r} on a device array")

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index, "indexing")])

    def __setitem__(self, index, value):
        self._a[_unwrap(index, "indexing")] = _unwrap(value, "assignment")

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self) -> str:
        return f"StrictArray({self._a!r})"

    def __format__(self, spec: str) -> str:
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __index__(self) -> int:
        return operator.index(self._a)

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __reduce__(self):
        raise TypeError("a device array cannot be pickled directly: bring it to the host with .get() first")


def _operator(name: str):
    return getattr(operator, name + "_" if name in ("and", "or") else name)


def _binary(name: str):
    fn = _operator(name)

    def method(self, other):
        return _wrap(fn(self._a, _unwrap(other, f"operator {name}")))

    return method


def _reflected(name: str):
    fn = _operator(name)

    def method(self, other):
        return _wrap(fn(_unwrap(other, f"operator {name}"), self._a))

    return method


def _inplace(name: str):
    fn = getattr(operator, f"i{name}")

    def method(self, other):
        fn(self._a, _unwrap(other, f"operator i{name}"))
        return self

    return method


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(StrictArray, f"__{_op}__", _binary(_op))
    setattr(StrictArray, f"__r{_op}__", _reflected(_op))
    setattr(StrictArray, f"__i{_op}__", _inplace(_op))
for _op in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(StrictArray, f"__{_op}__", _binary(_op))


def _unary(name: str):
    fn = getattr(operator, name)

    def method(self):
        return _wrap(fn(self._a))

    return method


for _op in ("neg", "pos", "abs", "invert"):
    setattr(StrictArray, f"__{_op}__", _unary(_op))
StrictArray.__hash__ = None


class _Ufunc:
    """A NumPy ufunc on device arrays, with ``.at`` (scatter) and ``.reduce``."""

    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return _call(self._ufunc, self._ufunc.__name__)(*args, **kwargs)

    def __getattr__(self, name):
        return _call(getattr(self._ufunc, name), f"{self._ufunc.__name__}.{name}")


def _host(a, name: str):
    """What ``xp.asarray``/``xp.array`` accept from the host: NumPy arrays, scalars, lists."""
    if isinstance(a, (list, tuple)) and any(isinstance(v, StrictArray) for v in a):
        raise TypeError(f"xp.{name}: a list of device arrays (use xp.stack)")
    return a


def _asarray(a, dtype=None):
    if isinstance(a, StrictArray):  # the same array when no cast is needed, as cupy.asarray
        return a if dtype is None or np.dtype(dtype) == a._a.dtype else StrictArray(a._a.astype(dtype))
    return StrictArray(np.array(_host(a, "asarray"), dtype=dtype))  # a host-to-device copy


def _array(a, dtype=None, copy=True):
    if isinstance(a, StrictArray):
        return StrictArray(np.array(a._a, dtype=dtype, copy=copy))
    return StrictArray(np.array(_host(a, "array"), dtype=dtype))


def _asnumpy(a) -> np.ndarray:
    return a.get() if isinstance(a, StrictArray) else np.asarray(a)


class _Namespace(types.ModuleType):
    """The ``cupy`` of the stand-in: NumPy's names, on and returning device arrays."""

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            return _Ufunc(attr)
        if isinstance(attr, types.ModuleType):
            raise AttributeError(
                f"xp.{name}: the stand-in provides no submodules (CuPy's differ from NumPy's)"
            )
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes (xp.float32), constants (xp.inf, xp.newaxis)
        return _call(attr, f"xp.{name}")


xp = _Namespace("strict_device_xp")
xp.ndarray = StrictArray
xp.asarray = _asarray
xp.array = _array
xp.asnumpy = _asnumpy


@contextlib.contextmanager
def use_strict_device():
    """Serve the ``"cuda"`` device with the stand-in inside the block."""
    previous = register_device_module(xp)
    try:
        yield xp
    finally:
        register_device_module(previous)
