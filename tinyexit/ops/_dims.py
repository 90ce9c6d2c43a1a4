"""Checking ``dim`` arguments as PyTorch does: out-of-range dims raise IndexError, repeats raise."""

from __future__ import annotations

import operator


def canonical_dim(dim, ndim: int) -> int:
    """``dim`` as a non-negative axis of an ``ndim``-dimensional tensor (a 0-d tensor accepts 0 and -1).

    Raises:
        TypeError: if ``dim`` is not an integer.
        IndexError: if ``dim`` lies outside [-ndim, ndim - 1], with PyTorch's message.
    """
    if isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {dim!r}")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an int, got {type(dim).__name__} {dim!r}") from None
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], but got {dim})"
        )
    return dim % span


def canonical_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence of ints) as a sorted tuple of distinct axes.

    None and the empty tuple mean every dimension, as in PyTorch's sum, mean and amax. A dim that
    appears twice raises RuntimeError with PyTorch's message.
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    axes = [canonical_dim(d, ndim) for d in dims]
    for a in axes:
        if axes.count(a) > 1:
            raise RuntimeError(f"dim {a} appears multiple times in the list of dims")
    return tuple(sorted(axes)) if ndim else ()
