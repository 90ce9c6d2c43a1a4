"""Pictures of the networks and of the L2W step: the structure read from the models, not pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from tinyexit.diagrams import (  # noqa: E402
    draw_l2w_step,
    draw_msdnet,
    draw_ranet,
    l2w_step_diagram,
    msdnet_diagram,
    ranet_diagram,
)
from tinyexit.models import create  # noqa: E402


@pytest.mark.parametrize("name", ["msdnet5", "msdnet4_tiny"])
def test_msdnet_grid_follows_the_model(name):
    model = create(name)
    d = msdnet_diagram(model)
    n_layers = sum(model.steps)
    assert d.count("exit") == model.num_exits
    assert d.count("stem") == model.n_scales
    columns = {int(nid.split(":")[0]) for nid in d.nodes if ":" in nid}
    assert columns == set(range(n_layers + 1))
    # every exit reads the coarsest scale of the last column of its block
    ends = [sum(model.steps[: b + 1]) for b in range(model.num_exits)]
    assert d.edges_of("classifier") == [
        (f"{c}:{model.n_scales - 1}", f"exit{k}") for k, c in enumerate(ends, 1)
    ]
    # each layer node is fed by its own scale in the previous column
    for nid, (*_, kind) in d.nodes.items():
        if kind in ("layer", "transition"):
            column, scale = map(int, nid.split(":"))
            assert (f"{column - 1}:{scale}", nid) in d.edges_of("regular")
    assert all(a in d.nodes and b in d.nodes for a, b, _ in d.edges)


def test_msdnet_grid_of_a_hand_counted_config():
    # one block of two layers; prune="max" over 3 scales drops the finest scale at layer 2, which is
    # then followed by a transition: columns of 3 and 2 nodes, the second of 1x1 transitions
    model = create("msdnet5", n_blocks=1, base=2)
    d = msdnet_diagram(model)
    assert d.count("stem") == 3 and d.count("layer") == 3 and d.count("transition") == 2
    assert d.count("exit") == 1 and "2:0" not in d.nodes
    # finest scale: regular only; the two coarser scales: regular and strided, in both columns
    assert sorted(d.edges_of("strided")) == sorted(
        [("0:0", "0:1"), ("0:1", "0:2"), ("0:0", "1:1"), ("0:1", "1:2"), ("1:0", "2:1"), ("1:1", "2:2")]
    )


@pytest.mark.parametrize("name", ["ranet6", "ranet4_tiny"])
def test_ranet_flows_follow_the_model(name):
    model = create(name)
    d = ranet_diagram(model)
    assert d.count("exit") == model.num_exits
    assert [
        sum(nid.startswith(f"{f}:") and nid[-4:] != "stem" for nid in d.nodes) for f in range(model.n_scales)
    ] == [len(flow) for flow in model.scale_flows]
    assert d.count("fusion") == sum(model.n_fused)
    # fusion edges join block i of flow f - 1 to block i of flow f, for the fused blocks only
    assert sorted(d.edges_of("fusion")) == sorted(
        (f"{f - 1}:{i}", f"{f}:{i}") for f in range(model.n_scales) for i in range(model.n_fused[f])
    )
    # exits in order: flow by flow, after each dense block
    exits = [a for a, b in d.edges_of("classifier")]
    assert exits == [
        f"{f}:{i}" for f, flow in enumerate(model.scale_flows) for i in range(model.n_fused[f], len(flow))
    ]


def test_l2w_step_has_each_part_in_order():
    d = l2w_step_diagram()
    assert d.edges_of("meta-gradient") == [("meta_loss", "wpn_update")]
    order = [
        "train",
        "forward",
        "wpn",
        "pseudo",
        "meta_forward",
        "meta_loss",
        "wpn_update",
        "weights",
        "real",
    ]
    reachable = {a: {b for b, _ in []} for a in d.nodes}
    for a, b, _ in d.edges:
        reachable[a].add(b)

    def reaches(a, b):
        stack, seen = [a], set()
        while stack:
            node = stack.pop()
            if node == b:
                return True
            seen.add(node)
            stack += [n for n in reachable[node] if n not in seen]
        return False

    assert all(reaches(a, b) for a, b in zip(order, order[1:]))
    assert not reaches("real", "wpn_update")


def test_drawings_have_a_text_per_node():
    for fig, diagram in [
        (draw_msdnet(create("msdnet4_tiny")), msdnet_diagram(create("msdnet4_tiny"))),
        (draw_ranet(create("ranet4_tiny")), ranet_diagram(create("ranet4_tiny"))),
        (draw_l2w_step(), l2w_step_diagram()),
    ]:
        ax = fig.axes[0]
        arrows = [t for t in ax.texts if isinstance(t, Annotation)]
        labels = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
        assert len(arrows) == len(diagram.edges)
        assert len(labels) == len(diagram.nodes) + len(diagram.rows)
        assert {label for *_, label, _ in diagram.nodes.values() if label} <= set(labels)
        plt.close(fig)


def test_a_wrong_model_is_named():
    with pytest.raises(TypeError, match="expects an MSDNet, got RANet"):
        msdnet_diagram(create("ranet4_tiny"))
    with pytest.raises(TypeError, match="expects an RANet, got MSDNet"):
        ranet_diagram(create("msdnet4_tiny"))
