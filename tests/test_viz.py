"""Drawing autograd graphs: the structure read from a small graph, its DOT text and its matplotlib figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tinyexit as te  # noqa: E402
from tinyexit.viz import draw_graph, to_dot, trace  # noqa: E402


def _dot_product():
    x = te.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = te.tensor([0.5, -1.0, 2.0], requires_grad=True)
    return x, w, (x * w).sum()


def test_trace_of_a_dot_product():
    x, w, y = _dot_product()
    graph = trace(y, {"x": x, "w": w})
    reduce_fn, mul_fn = y.grad_fn, y.grad_fn.inputs[0].grad_fn
    labels = sorted(label for label, _ in graph.nodes.values())
    assert labels == sorted(["x", "w", type(mul_fn).__name__, type(reduce_fn).__name__, "output scalar"])
    counts = [graph.count(kind) for kind in ("leaf", "function", "output", "constant")]
    assert counts == [2, 2, 1, 0]
    by_label = {label: nid for nid, (label, _) in graph.nodes.items()}
    mul, red = by_label[type(mul_fn).__name__], by_label[type(reduce_fn).__name__]
    assert sorted(graph.edges) == sorted(
        [(by_label["x"], mul), (by_label["w"], mul), (mul, red), (red, by_label["output scalar"])]
    )


def test_a_reused_node_appears_once():
    x = te.tensor([0.3, -0.2], requires_grad=True)
    a = x * x
    y = (a.exp() + a).sum()  # a feeds two consumers
    graph = trace(y)
    assert graph.count("function") == 4 and graph.count("leaf") == 1 and graph.count("output") == 1
    a_id = [a for a, _ in graph.edges]
    shared = [nid for nid in graph.nodes if a_id.count(nid) == 2]
    assert len(shared) == 2  # the leaf x (used twice by x * x) and the node a
    assert len(graph.edges) == 7


def test_the_backward_pass_is_a_graph_only_with_create_graph():
    x = te.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g_const,) = te.grad((x**3).sum(), x)
    graph = trace(g_const, {"x": x})
    assert list(graph.nodes.values()) == [("output 3", "output")] and graph.edges == []
    (g,) = te.grad((x**3).sum(), x, create_graph=True)
    graph = trace(g, {"x": x})
    assert graph.count("function") >= 2 and graph.count("leaf") == 1  # the backward's ops, reaching back to x
    assert ("x", "leaf") in graph.nodes.values()
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)


def test_dot_text():
    x, w, y = _dot_product()
    dot = to_dot(y, {"x": x, "w": w})
    assert dot.startswith("digraph autograd {\n") and dot.endswith("}\n")
    assert dot.count(" -> ") == 4 and dot.count("[label=") == 5
    assert '[label="x", shape=ellipse' in dot
    assert f'[label="{type(y.grad_fn).__name__}", shape=box' in dot


def test_draw_graph_draws_every_node_and_edge(tmp_path):
    x, w, y = _dot_product()
    fig = draw_graph(y, {"x": x, "w": w}, path=tmp_path / "g.png", title="y = x·w")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts if t.get_text()]
    arrows = [t for t in ax.texts if not t.get_text()]  # annotations without text are the edges
    assert sorted(texts) == sorted(label for label, _ in trace(y, {"x": x, "w": w}).nodes.values())
    assert len(arrows) == 4
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plt.close(fig)


def test_trace_rejects_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="expects a Tensor"):
        trace([np.ones(3)])
