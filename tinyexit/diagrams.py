"""Pictures of the networks and of the L2W step: MSDNet's scale grid, RANet's flows and fusion.

``msdnet_diagram`` and ``ranet_diagram`` read a built model's modules (its blocks, layers, exits), so
the picture follows whatever configuration was built; ``l2w_step_diagram`` is a fixed schematic of
one half-step of Algorithm 1. Each returns a ``Diagram`` (placed nodes, typed edges) that tests can
read; ``draw_diagram`` draws any of them with matplotlib, and ``draw_msdnet``, ``draw_ranet`` and
``draw_l2w_step`` do both in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt

from .models.msdnet import MSDNet, MSDNFirstLayer, MSDNLayer, Transition
from .models.ranet import FusionBlock, RANet

NODE_COLOURS = {
    "input": "#eeeeee",
    "stem": "#d8f0d2",
    "layer": "#dbe9f6",
    "transition": "#c6d4f0",
    "dense": "#dbe9f6",
    "fusion": "#e3d7f2",
    "exit": "#fbe3c9",
    "step": "#dbe9f6",
    "loss": "#fbe3c9",
    "update": "#d8f0d2",
}
EDGE_STYLES = {
    "regular": ("#555555", "-"),
    "strided": ("#c0392b", "-"),
    "fusion": ("#8e44ad", "-"),
    "classifier": ("#e67e22", "-"),
    "data": ("#555555", "-"),
    "meta-gradient": ("#c0392b", "--"),
    "no grad": ("#7f8c8d", ":"),
}


@dataclass
class Diagram:
    """Placed nodes and typed edges.

    Attributes:
        nodes: node id -> (x, y, label, kind).
        edges: (from id, to id, kind) triples.
        rows: y -> label written left of the picture (e.g. a scale's resolution).
        title: the figure's title.
    """

    nodes: dict[str, tuple[float, float, str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    rows: dict[float, str] = field(default_factory=dict)
    title: str = ""

    def add(self, nid: str, x: float, y: float, label: str, kind: str) -> str:
        """Add a node and return its id."""
        self.nodes[nid] = (x, y, label, kind)
        return nid

    def count(self, kind: str) -> int:
        """How many nodes of one kind the diagram has."""
        return sum(k == kind for *_, k in self.nodes.values())

    def edges_of(self, kind: str) -> list[tuple[str, str]]:
        """The (from, to) pairs of the edges of one kind."""
        return [(a, b) for a, b, k in self.edges if k == kind]


def msdnet_diagram(model: MSDNet) -> Diagram:
    """MSDNet as a grid: a column per layer, a row per scale (finest on top), an exit per block.

    A layer's node at scale s is fed by the same scale of the previous column ("regular", a 3x3
    convolution) and, where the layer has a stride-2 path, by scale s - 1 ("strided"). Columns with
    a 1x1 transition are drawn as ``"transition"`` nodes. Each exit reads the coarsest scale.
    """
    if not isinstance(model, MSDNet):
        raise TypeError(f"msdnet_diagram expects an MSDNet, got {type(model).__name__}")
    n = model.n_scales
    d = Diagram(title=f"MSDNet: {n} scales, {model.num_exits} exits (each layer also keeps its inputs)")
    d.rows = {-s: f"{32 >> s}×{32 >> s}" for s in range(n)}
    d.add("input", -1, 0, "image", "input")
    column, exits = 0, 0
    for block in model.blocks:
        for layer in block:
            if isinstance(layer, MSDNFirstLayer):
                for s in range(n):
                    d.add(f"0:{s}", 0, -s, "stem", "stem")
                    d.edges.append(
                        ("input" if s == 0 else f"0:{s - 1}", f"0:{s}", "regular" if s == 0 else "strided")
                    )
            elif isinstance(layer, MSDNLayer):
                column += 1
                first = n - len(layer.layers)
                for s in range(first, n):
                    d.add(f"{column}:{s}", column, -s, "", "layer")
                    d.edges.append((f"{column - 1}:{s}", f"{column}:{s}", "regular"))
                    has_strided = s > first or layer.discard > 0
                    if has_strided:
                        d.edges.append((f"{column - 1}:{s - 1}", f"{column}:{s}", "strided"))
            elif isinstance(layer, Transition):
                for s in range(n - len(layer.m), n):
                    x, y, _, _ = d.nodes[f"{column}:{s}"]
                    d.nodes[f"{column}:{s}"] = (x, y, "1×1", "transition")
        exits += 1
        d.add(f"exit{exits}", column, -n, f"exit {exits}", "exit")
        d.edges.append((f"{column}:{n - 1}", f"exit{exits}", "classifier"))
    return d


def _downsamples(block: FusionBlock) -> bool:
    return any(layer.conv_normal.net[3].stride == 2 for layer in block.layers)


def ranet_diagram(model: RANet) -> Diagram:
    """RANet as rows of scale flows (coarsest on top), a column per block, exits in order.

    Within a flow each block feeds the next ("regular"); block i of a fusion flow also reads block i
    of the flow above ("fusion"); a fusion block that halves its flow's resolution is labelled
    ``F↓``; a ``T`` marks a transition. Dense blocks after the fused ones each end in an exit.
    """
    if not isinstance(model, RANet):
        raise TypeError(f"ranet_diagram expects an RANet, got {type(model).__name__}")
    n = model.n_scales
    sizes = [32]
    for stride in model.FirstLayer.strides[1:]:
        sizes.append(sizes[-1] // 2 if stride == 2 else sizes[-1])
    sizes = sizes[::-1]
    d = Diagram(title=f"RANet: {n} scale flows, {model.num_exits} exits; flows run top to bottom")
    d.rows = {-f: f"flow {f}\n{sizes[f]}×{sizes[f]}" for f in range(n)}
    d.add("input", -1, -(n - 1), "image", "input")
    for f in reversed(range(n)):  # the stem computes the finest map first
        d.add(f"{f}:stem", 0, -f, "stem", "stem")
        d.edges.append(("input" if f == n - 1 else f"{f + 1}:stem", f"{f}:stem", "regular"))
    exits = 0
    for f, flow in enumerate(model.scale_flows):
        previous = f"{f}:stem"
        for i, block in enumerate(flow):
            fused = isinstance(block, FusionBlock)
            label = ("F↓" if _downsamples(block) else "F") if fused else "D"
            label += " T" if block.trans is not None else ""
            nid = d.add(f"{f}:{i}", i + 1, -f, label, "fusion" if fused else "dense")
            d.edges.append((previous, nid, "regular"))
            if fused:
                d.edges.append((f"{f - 1}:{i}", nid, "fusion"))
            else:
                exits += 1
                d.add(f"exit{exits}", i + 1.4, -f + 0.4, f"exit {exits}", "exit")
                d.edges.append((nid, f"exit{exits}", "classifier"))
            previous = nid
    return d


def l2w_step_diagram() -> Diagram:
    """One L2W half-step (Algorithm 1): the meta update of the WPN, then the real update of θ.

    The batch is split in two halves; the step runs with (train, meta) = (first, second) half, then
    again with the halves exchanged. Dashed edges carry the meta-gradient back to the WPN.
    """
    d = Diagram(title="One L2W half-step; the step runs again with the two halves exchanged")
    d.add("batch", 0, 0, "batch", "input")
    d.add("train", 1.8, 1, "train half", "input")
    d.add("meta", 1.8, -1, "meta half", "input")
    d.add("forward", 3.6, 1, "forward with θ\nlosses l_ik, confidences", "step")
    d.add("wpn", 5.4, 1, "WPN(φ): weights w_ik\nweighted loss (Eq. 5)", "step")
    d.add("pseudo", 7.2, 1, "pseudo-update (Eq. 7)\nθ̂(φ) = θ − α ∇θ Σ w l", "step")
    d.add("meta_forward", 7.2, -1, "forward meta half\nwith θ̂(φ)", "step")
    d.add("allocation", 9, -1, "allocation: each meta\nsample to one exit (q)", "step")
    d.add("meta_loss", 10.8, -1, "meta loss (Eq. 6)", "loss")
    d.add("wpn_update", 10.8, 1, "WPN update (Eq. 8)\nφ ← Adam(∇φ meta loss)", "update")
    d.add("weights", 12.6, 1, "weights from new φ\n(no gradient to φ)", "step")
    d.add("real", 14.4, 1, "real update (Eq. 9)\nθ ← SGD(∇θ Σ w l)", "update")
    d.edges += [
        ("batch", "train", "data"),
        ("batch", "meta", "data"),
        ("train", "forward", "data"),
        ("forward", "wpn", "data"),
        ("wpn", "pseudo", "data"),
        ("pseudo", "meta_forward", "data"),
        ("meta", "meta_forward", "data"),
        ("meta_forward", "allocation", "no grad"),
        ("allocation", "meta_loss", "no grad"),
        ("meta_forward", "meta_loss", "data"),
        ("meta_loss", "wpn_update", "meta-gradient"),
        ("wpn_update", "weights", "data"),
        ("forward", "weights", "no grad"),
        ("weights", "real", "data"),
    ]
    return d


def draw_diagram(diagram: Diagram, ax=None, box_width: float = 0.8):
    """Draw a ``Diagram`` with matplotlib; returns the figure.

    Args:
        diagram: What to draw.
        ax: Axes to draw on (default: a new figure sized to the diagram).
        box_width: Width of a node's box in x units; a node with a longer label gets a wider box.
    """
    xs = [x for x, *_ in diagram.nodes.values()]
    ys = [y for _, y, *_ in diagram.nodes.values()]
    if ax is None:
        width = max(4.0, 0.9 * (max(xs) - min(xs) + 3))
        height = max(2.5, 1.0 * (max(ys) - min(ys) + 1.5))
        _, ax = plt.subplots(figsize=(min(width, 16), min(height, 9)))
    for a, b, kind in diagram.edges:
        (xa, ya, *_), (xb, yb, *_) = diagram.nodes[a], diagram.nodes[b]
        colour, style = EDGE_STYLES[kind]
        skips_nodes = ya == yb and any(  # bend over boxes in between instead of through them
            y == ya and min(xa, xb) < x < max(xa, xb) for x, y, *_ in diagram.nodes.values()
        )
        ax.annotate(
            "",
            xy=(xb, yb),
            xytext=(xa, ya),
            arrowprops={
                "arrowstyle": "->",
                "color": colour,
                "linestyle": style,
                "shrinkB": 9,
                "connectionstyle": f"arc3,rad={-0.3 if skips_nodes else 0}",
            },
        )
    for x, y, label, kind in diagram.nodes.values():
        ax.text(
            x,
            y,
            label or " ",
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "round,pad=0.3", "fc": NODE_COLOURS[kind], "ec": "#333333", "lw": 0.6},
        )
    for y, label in diagram.rows.items():
        ax.text(min(xs) - 0.6, y, label, ha="right", va="center", fontsize=8)
    kinds = list(dict.fromkeys(k for *_, k in diagram.edges))
    for kind in kinds:
        colour, style = EDGE_STYLES[kind]
        ax.plot([], [], color=colour, linestyle=style, label=kind)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    ax.set_xlim(min(xs) - 1.6 if diagram.rows else min(xs) - box_width, max(xs) + box_width)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 1.2)
    ax.set_title(diagram.title, fontsize=9, pad=16)
    ax.axis("off")
    return ax.figure


def draw_msdnet(model: MSDNet, ax=None):
    """Draw MSDNet's scale grid (see ``msdnet_diagram``); returns the figure."""
    return draw_diagram(msdnet_diagram(model), ax)


def draw_ranet(model: RANet, ax=None):
    """Draw RANet's scale flows and fusion (see ``ranet_diagram``); returns the figure."""
    return draw_diagram(ranet_diagram(model), ax)


def draw_l2w_step(ax=None):
    """Draw the schematic of one L2W half-step (see ``l2w_step_diagram``); returns the figure."""
    return draw_diagram(l2w_step_diagram(), ax)
