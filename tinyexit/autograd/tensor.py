"""``Tensor``: an array (NumPy or CuPy) with an optional link to the node that produced it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import array_module, check_device, device_of, to_device

if TYPE_CHECKING:
    from .function import Function


def as_shape(args: tuple) -> tuple:
    """The shape (or dims) passed as ``f(2, 3)`` or as ``f((2, 3))``, as one tuple."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype tinyexit computes in: bool, an integer type, float32 or float64.

    Raises:
        TypeError: for any other dtype (float16, complex, strings, objects), naming it.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" or dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind == "f":
        raise TypeError(f"dtype {dtype} is not supported: tinyexit computes in float32 or float64")
    raise TypeError(f"dtype {dtype} is not supported: tensors hold numbers (bool, int, float32, float64)")


class Tensor:
    """An n-dimensional array that records how it was computed.

    Attributes:
        data: the NumPy (cpu) or CuPy (cuda) array.
        grad: accumulated gradient (a Tensor) after ``backward``, as in PyTorch.
        requires_grad: whether gradients flow to this tensor.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "__weakref__")
    __array_priority__ = 1000  # numpy_scalar * Tensor calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        xp = array_module(data)
        data = xp.asarray(data)
        check_dtype(data.dtype)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {data.dtype}")
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None
        self._idx = 0

    @classmethod
    def wrap(cls, data, grad_fn: Function | None = None, output_index: int = 0) -> Tensor:
        """A tensor around a NumPy or CuPy array as it is: no copy, no conversion, no checks.

        ``Function.apply`` passes ``grad_fn`` and ``output_index``; without them it is a constant.
        """
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = grad_fn is not None
        t._ctx = grad_fn
        t._idx = output_index
        return t

    # --- properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, as a tuple of ints."""
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self):
        """The NumPy dtype of the data."""
        return self.data.dtype

    @property
    def device(self) -> str:
        """``"cpu"`` for NumPy data, ``"cuda"`` for CuPy data."""
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True when no recorded operation produced this tensor."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        """The Function node that produced this tensor, or None for a leaf."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        """The tensor with all its dimensions reversed."""
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        """The shape, or the length of dimension ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions."""
        return self.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        extra = ""
        if self._ctx is not None:
            extra = f", grad_fn={self._ctx!r}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    __hash__ = object.__hash__

    # --- conversion -------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on cpu, copies from a GPU)."""
        return to_device(self.data, "cpu")

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        """The data as (nested) Python numbers."""
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor.wrap(self.data)

    def requires_grad_(self, mode: bool = True) -> Tensor:
        """Set whether this leaf tensor records operations for gradients; returns it."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad_ can only change leaf tensors; use detach() first")
        if mode and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(mode)
        return self

    def to(self, target) -> Tensor:
        """Move to a device (``"cpu"``, ``"cuda"``) or cast to a dtype; differentiable for casts."""
        if isinstance(target, str):
            return _ops.to_device_op(self, check_device(target))
        dtype = check_dtype(target)
        if dtype == self.dtype:
            return self
        return _ops.cast(self, dtype)

    def cpu(self) -> Tensor:
        """This tensor on the CPU (differentiable)."""
        return self.to("cpu")

    def cuda(self) -> Tensor:
        """This tensor on the GPU (differentiable; needs CuPy and a GPU)."""
        return self.to("cuda")

    def float(self) -> Tensor:
        """Cast to float32 (differentiable)."""
        return self.to(np.float32)

    def double(self) -> Tensor:
        """Cast to float64 (differentiable)."""
        return self.to(np.float64)

    def long(self) -> Tensor:
        """Cast to int64 (not differentiable)."""
        return Tensor.wrap(self.data.astype(np.int64))

    # --- differentiation --------------------------------------------------------------------
    def backward(
        self, gradient: Tensor | None = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Unless ``retain_graph`` (None: ``create_graph``), each node of the graph frees what it saved
        once its backward has run, so a second ``backward`` through the same graph raises.
        """
        _engine.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # --- operators (the differentiable ones live in tinyexit.ops) ------------------------------
    def __add__(self, o):
        return _ops.add(self, o)

    def __radd__(self, o):
        return _ops.add(o, self)

    def __sub__(self, o):
        return _ops.sub(self, o)

    def __rsub__(self, o):
        return _ops.sub(o, self)

    def __mul__(self, o):
        return _ops.mul(self, o)

    def __rmul__(self, o):
        return _ops.mul(o, self)

    def __truediv__(self, o):
        return _ops.div(self, o)

    def __rtruediv__(self, o):
        return _ops.div(o, self)

    def __pow__(self, o):
        return _ops.pow(self, o)

    def __rpow__(self, o):
        return _ops.pow(o, self)

    def __matmul__(self, o):
        return _ops.matmul(self, o)

    def __rmatmul__(self, o):
        return _ops.matmul(o, self)

    def __neg__(self):
        return _ops.neg(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __lt__(self, o):
        return _ops.lt(self, o)

    def __le__(self, o):
        return _ops.le(self, o)

    def __gt__(self, o):
        return _ops.gt(self, o)

    def __ge__(self, o):
        return _ops.ge(self, o)

    def __eq__(self, o):
        return _ops.eq(self, o)

    def __ne__(self, o):
        return _ops.ne(self, o)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def abs(self):
        return _ops.abs(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    def sum(self, dim=None, keepdim=False):
        return _ops.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return _ops.mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops.var(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False):
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _ops.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return _ops.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return _ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.argmin(self, dim, keepdim)

    def softmax(self, dim):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim):
        return _ops.log_softmax(self, dim)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        """Same as ``reshape`` (PyTorch's name)."""
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def expand(self, *shape):
        """Same as ``te.broadcast_to`` (PyTorch's name)."""
        return _ops.broadcast_to(self, *shape)


from .. import ops as _ops  # noqa: E402
from . import engine as _engine  # noqa: E402  (circular: the engine and ops use Tensor)
