"""``Module`` and ``Parameter``: parameters and buffers registered by attribute, named as PyTorch names them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import array_module, check_device, to_device


class Parameter(Tensor):
    """A leaf tensor that a ``Module`` registers as a learnable parameter."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models; subclasses define ``forward``.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it; ``register_buffer``
    registers a non-learnable tensor (such as batch-norm running statistics).
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning attributes"
            )
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Register a tensor that is saved in ``state_dict`` but not trained."""
        self._buffers[name] = tensor

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        """The computation of the module; subclasses define it and are called as ``module(*args)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module and every submodule, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every submodule, depth first."""
        return (m for _, m in self.named_modules())

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs, names like ``blocks.0.conv.weight``; shared ones once."""
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of this module and its submodules, in registration order."""
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(name, tensor)`` for every buffer (e.g. batch-norm running statistics)."""
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self) -> Iterator[Tensor]:
        """Every buffer of this module and its submodules."""
        return (b for _, b in self.named_buffers())

    # --- modes and conversion -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (batch statistics in batch norm) here and below; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode (running statistics in batch norm); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset the ``.grad`` of every parameter to None."""
        for p in self.parameters():
            p.grad = None

    def _convert(self, fn) -> Module:
        """Replace the data of every parameter and buffer in place (identities are kept)."""
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = fn(t.data)
            if t.grad is not None:
                t.grad = Tensor(fn(t.grad.data))
        return self

    def to(self, target) -> Module:
        """Move to a device (``"cpu"``/``"cuda"``) or cast floating tensors to a dtype, in place."""
        if isinstance(target, str):
            device = check_device(target)
            return self._convert(lambda a: to_device(a, device))
        dtype = np.dtype(target)
        return self._convert(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def float(self) -> Module:
        """Cast parameters and buffers to float32 in place; returns self."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast parameters and buffers to float64 in place; returns self."""
        return self.to(np.float64)

    # --- saving and loading -------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Parameters and buffers by name, as detached tensors sharing this module's data."""
        state = OrderedDict((n, p.detach()) for n, p in self.named_parameters())
        state.update((n, b.detach()) for n, b in self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy values into this module's parameters and buffers.

        Raises:
            KeyError: with ``strict``, listing missing and unexpected keys.
            ValueError: naming every entry whose shape differs.
        """
        own = OrderedDict(self.named_parameters())
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        mismatched = []
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                shape = tuple(v.shape)
                if shape != t.shape:
                    mismatched.append(f"{k}: checkpoint {shape}, model {t.shape}")
        if mismatched:
            raise ValueError("load_state_dict: shape mismatch for " + "; ".join(mismatched))
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                v = v.data if isinstance(v, Tensor) else v
                xp = array_module(t.data)
                t.data = xp.array(to_device(v, t.device), dtype=t.dtype, copy=True)

    def extra_repr(self) -> str:
        """The module's own settings, shown by ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"
