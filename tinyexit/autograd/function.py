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
    arrays, and ``backward(self, *grad_outputs)`` returning one Tensor (or None) per input; an
    output that got no gradient passes None. In ``backward``, ``self.inputs`` are the input Tensors,
    the keyword parameters of ``apply`` are attributes (``self.stride``), and ``self.output(i)`` is
    the i-th output Tensor for subclasses that set ``retain_outputs = True``.
    """

    retain_outputs = False

    inputs: tuple[Tensor, ...]
    n_outputs: int

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any):
        """Run ``forward`` on the inputs' arrays and record the node when a gradient may flow."""
        fn = cls()
        raw = fn.forward(*[t.data for t in inputs], **params)
        multiple = isinstance(raw, tuple)
        arrays = raw if multiple else (raw,)
        node = fn if is_grad_enabled() and any(t.requires_grad for t in inputs) else None
        outs = tuple(Tensor.wrap(a, node, i) for i, a in enumerate(arrays))
        if node is not None:
            vars(fn).update(params)
            fn.inputs, fn.n_outputs = inputs, len(arrays)
            if cls.retain_outputs:
                fn._output_refs = tuple(weakref.ref(o) for o in outs)  # weak: an output holds its node
        return outs if multiple else outs[0]

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        """Compute the outputs from raw arrays (NumPy or CuPy); ``params`` are non-tensor arguments."""
        raise NotImplementedError

    def backward(self, *grad_outputs: Tensor):  # pragma: no cover - abstract
        """Gradients of the inputs from the outputs' gradients, written with differentiable ops."""
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        """The i-th output Tensor (alive during ``backward``: the caller or a consumer node holds it)."""
        out = self._output_refs[i]()
        if out is None:
            raise RuntimeError(f"{self!r}.output({i}): the output tensor was freed before this backward call")
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
