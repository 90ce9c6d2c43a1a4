"""Running a module with some parameters (or buffers) replaced, without changing the module."""

from __future__ import annotations

from collections.abc import Mapping

from ..autograd.tensor import Tensor
from .module import Module


def functional_call(module: Module, params: Mapping[str, Tensor], *args, **kwargs):
    """Call ``module(*args, **kwargs)`` with the tensors in ``params`` standing in for its own.

    Keys are names as in ``named_parameters()`` / ``named_buffers()``. The replacement tensors may
    carry a graph (for example a pseudo-updated θ̂ that depends on the WPN), so gradients flow
    through them. The module's own parameters are restored afterwards, even on error.
    """
    modules = dict(module.named_modules())
    swapped = []
    try:
        for name, value in params.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = modules.get(owner_name)
            table = None
            if owner is not None:
                table = (
                    owner._parameters
                    if leaf in owner._parameters
                    else (owner._buffers if leaf in owner._buffers else None)
                )
            if table is None:
                raise KeyError(
                    f"functional_call: {type(module).__name__} has no parameter or buffer {name!r}"
                )
            if not isinstance(value, Tensor) or value.shape != table[leaf].shape:
                raise ValueError(
                    f"functional_call: {name!r} must be a Tensor of shape {table[leaf].shape}, "
                    f"got {getattr(value, 'shape', type(value).__name__)}"
                )
            swapped.append((table, leaf, table[leaf]))
            table[leaf] = value
        return module(*args, **kwargs)
    finally:
        for table, leaf, original in reversed(swapped):
            table[leaf] = original
