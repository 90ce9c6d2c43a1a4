"""Pictures of an autograd graph: ``trace`` reads it, ``to_dot`` writes Graphviz DOT text, ``draw_graph`` draws it.

The graph is read only through public links: a tensor's ``grad_fn`` and a node's ``inputs``. Nodes are
the ``Function`` objects (labelled with their class name), the leaf tensors that require grad, the
constants the graph uses, and the output tensors; each edge carries a tensor from its producer to a
consumer. ``draw_graph`` lays the nodes out in columns by depth with matplotlib alone, so no Graphviz
install is needed; ``to_dot`` gives the same graph to Graphviz where it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt

from .autograd.tensor import Tensor

COLOURS = {"function": "#dbe9f6", "leaf": "#d8f0d2", "constant": "#eeeeee", "output": "#fbe3c9"}


@dataclass
class Graph:
    """The nodes and edges of an autograd graph.

    Attributes:
        nodes: node id -> (label, kind), kind one of ``"function"``, ``"leaf"``, ``"constant"``, ``"output"``.
        edges: (from id, to id) pairs, in the order they were found.
    """

    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """How many nodes of one kind the graph has."""
        return sum(k == kind for _, k in self.nodes.values())


def _shape(t: Tensor) -> str:
    return "×".join(map(str, t.shape)) or "scalar"


def trace(outputs: Tensor | Sequence[Tensor], names: Mapping[str, Tensor] | None = None) -> Graph:
    """Read the graph that produced ``outputs``.

    Args:
        outputs: A tensor or several; each becomes an ``"output"`` node.
        names: Optional labels for tensors, e.g. ``{"x": x, "w": w}``; other tensors are labelled
            with their shape (a constant with one element, with its value).

    Returns:
        The ``Graph``; a tensor without ``grad_fn`` among the outputs is a single output node.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if not all(isinstance(t, Tensor) for t in outputs):
        raise TypeError("trace expects a Tensor or a sequence of Tensors")
    label_of = {id(t): name for name, t in (names or {}).items()}
    graph, ids = Graph(), {}

    def node_id(obj) -> str:
        return ids.setdefault(id(obj), f"n{len(ids)}")

    def visit(fn) -> str:
        nid = node_id(fn)
        if nid in graph.nodes:
            return nid
        graph.nodes[nid] = (type(fn).__name__, "function")
        for t in fn.inputs:
            if t.grad_fn is not None:
                graph.edges.append((visit(t.grad_fn), nid))
            else:
                tid = node_id(t)
                if tid not in graph.nodes:
                    kind = "leaf" if t.requires_grad else "constant"
                    default = (
                        f"{float(t.numpy().reshape(-1)[0]):g}"
                        if kind == "constant" and t.data.size == 1
                        else f"{kind} {_shape(t)}"
                    )
                    graph.nodes[tid] = (label_of.get(id(t), default), kind)
                graph.edges.append((tid, nid))
        return nid

    for i, out in enumerate(outputs):
        oid = f"out{i}"
        graph.nodes[oid] = (label_of.get(id(out), f"output {_shape(out)}"), "output")
        if out.grad_fn is not None:
            graph.edges.append((visit(out.grad_fn), oid))
    return graph


def to_dot(outputs: Tensor | Sequence[Tensor], names: Mapping[str, Tensor] | None = None) -> str:
    """The graph of ``outputs`` as Graphviz DOT text (render it with ``dot -Tpng``)."""
    graph = trace(outputs, names)
    shapes = {"function": "box", "leaf": "ellipse", "constant": "ellipse", "output": "doubleoctagon"}
    lines = ["digraph autograd {", "  rankdir=LR;", '  node [style=filled, fontname="Helvetica"];']
    for nid, (label, kind) in graph.nodes.items():
        escaped = label.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'  {nid} [label="{escaped}", shape={shapes[kind]}, fillcolor="{COLOURS[kind]}"];')
    lines += [f"  {a} -> {b};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _columns(graph: Graph) -> dict[str, int]:
    # a node one column right of its deepest input; a leaf or constant just left of its first consumer
    preds: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    succs: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
        succs[a].append(b)
    depth: dict[str, int] = {}
    for nid in graph.nodes:
        stack = [nid]
        while stack:
            top = stack[-1]
            waiting = [p for p in preds[top] if p not in depth]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            depth[top] = 1 + max((depth[p] for p in preds[top]), default=-1)
    return {
        nid: max(min(depth[s] for s in succs[nid]) - 1, 0) if not preds[nid] and succs[nid] else d
        for nid, d in depth.items()
    }


def draw_graph(
    outputs: Tensor | Sequence[Tensor],
    names: Mapping[str, Tensor] | None = None,
    ax=None,
    path: str | Path | None = None,
    title: str | None = None,
):
    """Draw the graph that produced ``outputs`` with matplotlib, inputs on the left, outputs on the right.

    Args:
        outputs: A tensor or several.
        names: Optional labels for tensors, e.g. ``{"x": x}``.
        ax: A matplotlib Axes to draw into; a new figure when None.
        path: Also save the figure there as PNG.
        title: Optional title.

    Returns:
        The matplotlib Figure.
    """
    graph = trace(outputs, names)
    column = _columns(graph)
    width = max(column.values()) + 1
    rows: dict[int, list[str]] = {}
    for nid in graph.nodes:
        rows.setdefault(column[nid], []).append(nid)
    height = max(len(r) for r in rows.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 1.5 * width, 0.6 + 0.7 * height))
    xy = {nid: (c, (len(r) - 1) / 2 - j) for c, r in rows.items() for j, nid in enumerate(r)}
    boxes = {}
    for nid, (label, kind) in graph.nodes.items():
        boxes[nid] = ax.text(
            *xy[nid],
            label,
            ha="center",
            va="center",
            fontsize=8,
            zorder=2,
            bbox=dict(
                boxstyle="round,pad=0.3" if kind == "function" else "round4,pad=0.3",
                fc=COLOURS[kind],
                ec="0.4",
            ),
        )
    for a, b in graph.edges:  # after the boxes, so that their outlines are placed when the arrows are clipped
        ax.annotate(
            "",
            xy=xy[b],
            xytext=xy[a],
            zorder=3,
            arrowprops=dict(
                arrowstyle="->",
                color="0.45",
                lw=0.9,
                shrinkA=1,
                shrinkB=1,
                patchA=boxes[a].get_bbox_patch(),
                patchB=boxes[b].get_bbox_patch(),
            ),
        )
    ax.set_xlim(-0.7, width - 0.3)
    ax.set_ylim(-height / 2, height / 2)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig = ax.figure
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
