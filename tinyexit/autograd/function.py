"""``Function``: one node of the graph, with ``forward`` on raw arrays and a differentiable ``backward``.

This is the design of Chainer's FunctionNode and of needle: ``forward`` computes on NumPy or
CuPy arrays; ``backward`` receives the output gradients as Tensors and returns the input
gradients computed with tinyexit's own operations. Run with graph recording on
(``create_graph=True``), the backward pass is itself a graph, so gradients of gradients work.

What a node keeps for its backward: its input tensors (only their shapes, dtypes and graph edges
when the class sets ``saves_inputs = False``: an ``InputEdge`` each), its outputs' arrays when it
sets ``retain_outputs = True``, and the arrays its ``forward`` stores on ``self``. As in PyTorch, a
backward pass that does not retain the graph frees all of it once the node's backward has run
(``release``); the node keeps its place in the graph, and a second pass through it raises.
"""

from __future__ import annotations

from typing import Any

from .grad_mode import is_grad_enabled
from .tensor import Tensor


def second_backward_error(node: str) -> RuntimeError:
    """The error of a backward pass that reaches ``node`` (its repr) after its saved tensors were freed."""
    return RuntimeError(
        f"Trying to backward through the graph a second time (or to use the saved tensors of {node} "
        "after they were freed): a backward or grad call frees what each node it runs through saved "
        "for it. Specify retain_graph=True in the first call if you need to backward through the graph "
        "a second time (create_graph=True retains it too)."
    )


class InputEdge:
    """An input of a node without its data: the graph edge, shape, dtype, device and requires_grad.

    A node holds one in place of an input tensor it does not save (``saves_inputs = False``) or
    that a backward pass freed. It names the same edge as the tensor (its ``grad_fn`` and output
    index); reading ``data`` raises.
    """

    __slots__ = ("_ctx", "_idx", "requires_grad", "shape", "dtype", "device", "_op", "_freed")

    def __init__(self, t: Tensor, node: Function, freed: bool):
        self._ctx, self._idx, self.requires_grad = t._ctx, t._idx, t.requires_grad
        self.shape, self.dtype, self.device = t.shape, t.dtype, t.device
        self._op, self._freed = type(node).__name__, freed

    @property
    def grad_fn(self) -> Function | None:
        """The node that produced the freed tensor, or None for a constant."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        """True when no recorded operation produced the freed tensor."""
        return self._ctx is None

    @property
    def data(self):
        """Raises: the node does not hold this input's array (any more)."""
        if self._freed:
            raise second_backward_error(f"<{self._op}>")
        raise RuntimeError(
            f"<{self._op}> does not save its inputs (saves_inputs = False): its backward can use their "
            "shape, dtype, device and requires_grad, not their data"
        )


def _edges(inputs: tuple, node: Function, freed: bool) -> tuple:
    """The inputs with every computed tensor replaced by its ``InputEdge``.

    A leaf stays as it is: a parameter or a constant the user holds anyway, and the engine names
    a leaf by its identity.
    """
    return tuple(t if t._ctx is None else InputEdge(t, node, freed) for t in inputs)


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays, **params)`` returning an array or a tuple of
    arrays, and ``backward(self, *grad_outputs)`` returning one Tensor (or None) per input; an
    output that got no gradient passes None. In ``backward``, ``self.inputs`` are the input Tensors
    (for a subclass that sets ``saves_inputs = False``, the computed ones are ``InputEdge``s: shape,
    dtype, device and requires_grad, no data), the keyword parameters of ``apply`` are attributes
    (``self.stride``), and ``self.output(i)`` is the i-th output for subclasses that set
    ``retain_outputs = True``.
    """

    retain_outputs = False  # keep the outputs' arrays for ``output(i)``
    saves_inputs = True  # False: backward needs only the inputs' shapes, dtypes and edges
    released = False  # True once a backward pass freed what this node saved

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
            fn.inputs = inputs if cls.saves_inputs else _edges(inputs, fn, freed=False)
            fn.n_outputs = len(arrays)
            if cls.retain_outputs:
                fn._saved_outputs = arrays  # the arrays, not the Tensors: an output holds its node
        return outs if multiple else outs[0]

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        """Compute the outputs from raw arrays (NumPy or CuPy); ``params`` are non-tensor arguments."""
        raise NotImplementedError

    def backward(self, *grad_outputs: Tensor):  # pragma: no cover - abstract
        """Gradients of the inputs from the outputs' gradients, written with differentiable ops."""
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        """The i-th output as a Tensor of this node (the same graph edge as the forward's output)."""
        return Tensor.wrap(self._saved_outputs[i], self, i)

    def release(self) -> None:
        """Free what this node saved for its backward, keeping its edges: what a backward pass that
        does not retain the graph does once the node's backward has run."""
        inputs, n_outputs = self.inputs, self.n_outputs
        vars(self).clear()
        self.inputs, self.n_outputs, self.released = _edges(inputs, self, freed=True), n_outputs, True

    def __getattr__(self, name: str):
        # called only for a missing attribute: on a released node, a saved value that was freed
        if vars(self).get("released"):
            raise second_backward_error(repr(self))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
