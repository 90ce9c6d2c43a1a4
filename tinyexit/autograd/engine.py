"""The reverse-mode engine: ``grad`` and ``backward``.

A graph node is a ``Function``; a tensor is an edge, identified by ``(node, output index)``
(or by the tensor itself for a leaf). The engine

1. walks from the outputs down through ``fn.inputs`` and records a topological order,
2. keeps only the nodes that lie on a path to a wanted input (``grad`` walks no other part),
3. visits them from the outputs back, calling each ``fn.backward`` once with the summed
   gradients of its outputs, with graph recording on only when ``create_graph`` is asked for.

As in PyTorch, unless ``retain_graph`` (by default ``create_graph``) is true, each node that ran
frees what it saved right after its backward (``Function.release``), and the gradient of an edge
is dropped as soon as the node that consumes it has run. A later pass through a freed node raises
before any gradient is computed.

``backward`` is ``grad`` with respect to every leaf that requires grad, added into ``.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backend import array_module
from .function import Function, second_backward_error
from .grad_mode import set_grad_enabled
from .tensor import Tensor


def _key(t: Tensor):
    """The edge a tensor stands for: the leaf itself, or (producing node, output index)."""
    return id(t) if t._ctx is None else (id(t._ctx), t._idx)


def _topological_order(tensors: Sequence[Tensor]) -> list[Function]:
    """The nodes ``tensors`` were computed by, every node after all the nodes it consumes (post-order)."""
    order: list[Function] = []
    visited: set[int] = set()
    stack = [(t._ctx, False) for t in tensors if t._ctx is not None]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t._ctx is not None and id(t._ctx) not in visited:
                stack.append((t._ctx, False))
    return order


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _seed_gradients(outputs, grad_outputs) -> list[Tensor]:
    """Check the outputs and build their incoming gradients (ones for a scalar output)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"output {i} is a {type(out).__name__}, not a Tensor")
        if not out.requires_grad:
            raise RuntimeError(
                f"output {i} does not require grad and has no grad_fn: nothing to differentiate"
            )
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; output {i} has shape "
                    f"{out.shape}: pass a gradient of that shape"
                )
            g = Tensor.wrap(array_module(out.data).ones_like(out.data))  # 1, even for an inf or NaN output
        elif not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != out.shape:
            raise RuntimeError(
                f"gradient for output {i} has shape {g.shape}, the output has shape {out.shape}"
            )
        seeds.append(g)
    return seeds


def _run(
    outputs, seeds, inputs, create_graph: bool, retain_graph: bool, order: list[Function] | None = None
) -> dict:
    """Propagate the seeds back to ``inputs``; return the gradient of each input's edge key.

    A node runs only if one of its inputs is wanted or leads to a wanted input. Once a node has
    run, the gradients of its outputs are dropped, unless an output is itself wanted, and, unless
    ``retain_graph``, the node frees what it saved.
    """
    wanted = {_key(t) for t in inputs}
    order = _topological_order(outputs) if order is None else order
    relevant: set[int] = set()  # the nodes that lie on a path to a wanted edge

    def leads_to_wanted(t: Tensor) -> bool:
        return t.requires_grad and (_key(t) in wanted or (t._ctx is not None and id(t._ctx) in relevant))

    for fn in order:
        if any(leads_to_wanted(t) for t in fn.inputs):
            if fn.released:
                raise second_backward_error(repr(fn))
            relevant.add(id(fn))

    grads: dict = {}

    def accumulate(t: Tensor, g: Tensor) -> None:
        k = _key(t)
        grads[k] = g if k not in grads else grads[k] + g

    with set_grad_enabled(create_graph):
        for out, g in zip(outputs, seeds):
            accumulate(out, g)
        for fn in reversed(order):
            if id(fn) not in relevant:
                continue
            # every consumer of this node has run, so its output gradients are complete
            keys = [(id(fn), i) for i in range(fn.n_outputs)]
            gys = [grads.get(k) if k in wanted else grads.pop(k, None) for k in keys]
            gxs = () if all(g is None for g in gys) else _as_tuple(fn.backward(*gys))
            for t, gx in zip(fn.inputs, gxs):
                if gx is None or not leads_to_wanted(t):
                    continue
                if gx.shape != t.shape:
                    raise RuntimeError(
                        f"{fn!r}.backward returned a gradient of shape {gx.shape} "
                        f"for an input of shape {t.shape}"
                    )
                accumulate(t, gx)
            gys = gxs = gx = None  # from here the gradients live in ``grads`` only, until consumed
            if not retain_graph:
                fn.release()
    return grads


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs`` (as ``torch.autograd.grad``).

    Args:
        outputs: a Tensor or a sequence of Tensors to differentiate.
        inputs: a Tensor or a sequence of Tensors to differentiate with respect to.
        grad_outputs: the vector(s) in the vector-Jacobian product; None means ones for scalars.
        retain_graph: keep what the nodes saved, so a second pass can run through the graph; when
            False, each node frees it as soon as its backward has run. None means ``create_graph``.
        create_graph: record the backward pass, so the returned gradients can be differentiated.
        allow_unused: return None for an input the outputs do not depend on, instead of raising.

    Returns:
        A tuple with one gradient per input. No ``.grad`` attribute is touched.
    """
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"input {i} does not require grad: nothing to differentiate with respect to")
    seeds = _seed_gradients(outputs, grad_outputs)
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads = _run(outputs, seeds, inputs, create_graph, retain_graph)
    result = []
    for i, t in enumerate(inputs):
        g = grads.get(_key(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {i} was not used to compute the outputs; pass allow_unused=True to get None for it"
            )
        result.append(g if g is None or create_graph else g.detach())
    return tuple(result)


def backward(
    tensor: Tensor, gradient=None, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """Accumulate the gradient of ``tensor`` into ``.grad`` of every leaf that requires grad.

    As in PyTorch, ``.grad`` adds up over calls; with ``create_graph=True`` it keeps its history.
    ``retain_graph`` (None: ``create_graph``) keeps the graph for another backward pass; otherwise
    each node frees what it saved as soon as its backward has run.
    """
    order = _topological_order([tensor])  # walked once: it gives the leaves and the visiting order
    edges = [tensor] + [t for fn in order for t in fn.inputs]
    leaves = list({id(t): t for t in edges if t._ctx is None and t.requires_grad}.values())
    seeds = _seed_gradients((tensor,), None if gradient is None else (gradient,))
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads = _run((tensor,), seeds, leaves, create_graph, retain_graph, order)
    with set_grad_enabled(create_graph):
        for leaf in leaves:
            g = grads.get(_key(leaf))
            if g is not None:
                g = g if create_graph else g.detach()
                leaf.grad = g if leaf.grad is None else leaf.grad + g
