"""Shape operations: reshape, permute/transpose, indexing and its adjoint, cat, stack."""

from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor, as_shape
from ..backend import array_module, scatter_add
from ._dims import canonical_dim, canonical_dims


class Reshape(Function):
    saves_inputs = False

    def forward(self, x, shape):
        return x.reshape(shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """View with a new shape (one dimension may be -1)."""
    shape = as_shape(shape)
    if shape == x.shape:
        return x
    try:
        return Reshape.apply(x, shape=shape)
    except ValueError:
        raise ValueError(
            f"cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) into shape {shape}"
        ) from None


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one (a 0-d tensor becomes 1-d, as PyTorch)."""
    s, e = canonical_dim(start_dim, x.ndim), canonical_dim(end_dim, x.ndim)
    if x.ndim == 0:
        return reshape(x, 1)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Drop size-1 dimensions: all of them, or those among ``dim`` (an int or a tuple) of size 1."""
    dims = range(x.ndim) if dim is None else canonical_dims(dim, x.ndim)
    drop = {d for d in dims if x.shape[d] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop)) if drop else x


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim`` (in [-ndim - 1, ndim], as PyTorch)."""
    dim = canonical_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Permute(Function):
    saves_inputs = False

    def forward(self, x, dims):
        return x.transpose(dims)

    def backward(self, gy):
        return permute(
            gy, *sorted(range(len(self.dims)), key=self.dims.__getitem__)
        )  # the inverse permutation


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder dimensions (as ``torch.permute``)."""
    dims = tuple(canonical_dim(d, x.ndim) for d in as_shape(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute needs a permutation of {x.ndim} dimensions, got {dims}")
    return x if dims == tuple(range(x.ndim)) else Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    dims = list(range(x.ndim))
    dim0, dim1 = canonical_dim(dim0, x.ndim), canonical_dim(dim1, x.ndim)
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, *dims)


def _raw_index(index, xp):
    """Replace Tensors and host index arrays inside an index by arrays of the module ``xp``.

    A device array indexed by a NumPy array would mix host and device memory (CuPy refuses it).
    """
    if isinstance(index, tuple):
        return tuple(_raw_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, (list, np.ndarray)) and xp is not np:
        return xp.asarray(index)
    return index


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in parts)


class GetItem(Function):
    saves_inputs = False

    def forward(self, x, index):
        return x[index]

    def backward(self, gy):
        return index_add(gy, self.index, self.inputs[0].shape)


class IndexAdd(Function):
    """Adjoint of indexing: zeros of ``shape`` with ``gy`` added at ``index`` (repeats add up)."""

    saves_inputs = False

    def forward(self, gy, index, shape):
        xp = array_module(gy)
        out = xp.zeros(shape, dtype=gy.dtype)
        if _is_basic(index):
            out[index] = gy
        else:
            scatter_add(out, index, gy)
        return out

    def backward(self, ggx):
        return getitem(ggx, self.index)


def index_add(gy: Tensor, index, shape: tuple[int, ...]) -> Tensor:
    """Zeros of ``shape`` with ``gy`` added at ``index``: the gradient of ``getitem``."""
    return IndexAdd.apply(gy, index=index, shape=shape)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]`` with NumPy semantics (basic slicing and integer/boolean arrays)."""
    index = _raw_index(index, array_module(x.data))
    try:
        return GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexError(f"bad index for a tensor of shape {x.shape}: {e}") from None


class Cat(Function):
    saves_inputs = False

    def forward(self, *xs, dim):
        return array_module(xs[0]).concatenate(xs, axis=dim)

    def backward(self, gy):
        grads, start = [], 0
        lead = (slice(None),) * self.dim
        for x in self.inputs:
            n = x.shape[self.dim]
            grads.append(getitem(gy, lead + (slice(start, start + n),)))
            start += n
        return tuple(grads)


def _check_same(tensors, dim: int, what: str, same_dim: bool) -> int:
    if len(tensors) == 0:
        raise ValueError(f"{what} needs at least one tensor")
    ref = tensors[0]
    dim = canonical_dim(dim, ref.ndim + (0 if same_dim else 1))
    for i, t in enumerate(tensors):
        a = t.shape[:dim] + t.shape[dim + 1 :] if same_dim else t.shape
        b = ref.shape[:dim] + ref.shape[dim + 1 :] if same_dim else ref.shape
        if t.ndim != ref.ndim or a != b:
            raise ValueError(
                f"{what}: tensor {i} has shape {t.shape}, incompatible with tensor 0's "
                f"{ref.shape} along dim {dim}"
            )
        if t.dtype != ref.dtype:
            raise TypeError(f"{what}: tensor {i} has dtype {t.dtype}, tensor 0 has {ref.dtype}")
    return dim


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension (as ``torch.cat``)."""
    tensors = list(tensors)
    dim = _check_same(tensors, dim, "cat", same_dim=True)
    return tensors[0] if len(tensors) == 1 else Cat.apply(*tensors, dim=dim)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack along a new dimension (as ``torch.stack``)."""
    tensors = list(tensors)
    dim = _check_same(tensors, dim, "stack", same_dim=False)
    return cat([unsqueeze(t, dim) for t in tensors], dim)
