"""``Function``: one node of the graph, with ``forward`` on raw arrays and a differentiable ``backward``.

This is the design of Chainer's FunctionNode and of needle: ``forward`` computes on NumPy or
CuPy arrays; ``backward`` receives the output gradients as Tensors and returns the input
gradients computed with tinyexit's own operations. Run with graph recording on
(``create_graph=True``), the backward pass is itself a graph, so gradients of gradients work.
"""
from __future__ import annotations

import weakref
from typing import Any

from .grad_mode import is_grad_enabled
from .tensor import Tensor


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays, **params)`` returning an array or a tuple of
    arrays, and ``backward(self, *grad_outputs)`` returning one Tensor (or None) per input.
    In ``backward``, ``self.inputs`` are the input Tensors and ``self.output(i)`` the i-th output
    as a Tensor (only for subclasses that set ``retain_outputs = True``).
    """

    retain_outputs = False
    #: pass zeros for outputs that received no gradient (False: pass None, as
    #: ``ctx.set_materialize_grads(False)`` in PyTorch; needed for multi-output ops without retain_outputs)
    materialize_grads = True

    inputs: tuple[Tensor, ...]
    n_outputs: int

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any):
        """Run ``forward`` on the inputs' arrays and record the node when a gradient may flow."""
        fn = cls()
        raw = fn.forward(*[t.data for t in inputs], **params)
        multiple = isinstance(raw, tuple)
        arrays = raw if multiple else (raw,)
        record = is_grad_enabled() and any(t.requires_grad for t in inputs)
        if not record:
            outs = tuple(Tensor._make(a) for a in arrays)
            return outs if multiple else outs[0]
        fn.inputs = inputs
        fn.n_outputs = len(arrays)
        outs = tuple(Tensor._make(a, fn, i) for i, a in enumerate(arrays))
        if cls.retain_outputs:
            fn._output_data = arrays
            fn._output_refs = tuple(weakref.ref(o) for o in outs)
        return outs if multiple else outs[0]

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        """Compute the outputs from raw arrays (NumPy or CuPy); ``params`` are non-tensor arguments."""
        raise NotImplementedError

    def backward(self, *grad_outputs: Tensor):  # pragma: no cover - abstract
        """Gradients of the inputs from the outputs' gradients, written with differentiable ops."""
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        """The i-th output as a Tensor attached to this node (rebuilt if the original was freed)."""
        out = self._output_refs[i]()
        if out is None:
            out = Tensor._make(self._output_data[i], self, i)
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
