"""What a graph holds and when it frees it: retain_graph, create_graph and the saved tensors, as PyTorch."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from conftest import rand

import tinyexit as te
from tinyexit.autograd.function import InputEdge

F = te.nn.functional
SECOND_PASS = r"backward through the graph a second time.*retain_graph=True"


def _nodes(t: te.Tensor) -> list:
    seen, stack = {}, [t.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn
        stack.extend(x.grad_fn for x in fn.inputs)
    return list(seen.values())


def _held_arrays(t: te.Tensor) -> list[np.ndarray]:
    """Every array the nodes of ``t``'s graph hold: computed inputs, kept outputs, saved attributes."""
    held = []
    for fn in _nodes(t):
        held += [x.data for x in fn.inputs if isinstance(x, te.Tensor) and x.grad_fn is not None]
        held += list(vars(fn).get("_saved_outputs", ()))
        held += list(vars(fn).values())
    return [a for a in held if isinstance(a, np.ndarray)]  # NumPy's 0-d results are scalars, not arrays


def _block(x, w1, w2, bn_w, bn_b, lin_w):
    """conv -> batch norm -> relu -> conv, a concatenation, pooling and a linear exit: a small MSDNet."""
    h = F.relu(F.batch_norm(F.conv2d(x, w1, padding=1), None, None, bn_w, bn_b, training=True))
    h = te.cat([h, F.relu(F.conv2d(h, w2, padding=1))], dim=1)
    return F.linear(F.avg_pool2d(h, 2).flatten(1), lin_w)


def _block_inputs(seed=0):
    rng = np.random.default_rng(seed)

    def leaf(*shape):
        return te.tensor(rng.standard_normal(shape), requires_grad=True)

    x = te.tensor(rng.standard_normal((4, 2, 6, 6)))
    return x, leaf(3, 2, 3, 3), leaf(3, 3, 3, 3), leaf(3), leaf(3), leaf(5, 6 * 3 * 3)


def test_backward_frees_every_saved_array_and_a_second_backward_raises():
    inputs = _block_inputs()
    loss = (_block(*inputs) ** 2).mean()
    refs = [weakref.ref(a) for a in _held_arrays(loss)]
    assert len(refs) > 10
    loss.backward()
    assert all(fn.released for fn in _nodes(loss))
    assert _held_arrays(loss) == []
    assert [r for r in refs if r() is not None] == []  # nothing else kept them alive either
    grads = [p.grad.numpy().copy() for p in inputs[1:]]
    with pytest.raises(RuntimeError, match=SECOND_PASS):
        loss.backward()
    for p, g in zip(inputs[1:], grads):  # the refused pass added nothing
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_a_freed_node_raises_a_clear_error_on_its_saved_values():
    x = rand(2, 3, 4, 4)
    y = F.batch_norm(x, None, None, None, None, training=True).exp()
    bn = y.grad_fn.inputs[0].grad_fn
    assert bn.mu.shape == (1, 3, 1, 1)
    te.grad(y.sum(), x)
    assert bn.released and isinstance(y.grad_fn.inputs[0], InputEdge)
    with pytest.raises(RuntimeError, match=SECOND_PASS):
        _ = bn.mu
    with pytest.raises(RuntimeError, match=SECOND_PASS):
        _ = y.grad_fn.inputs[0].data
    with pytest.raises(RuntimeError, match=SECOND_PASS):
        te.grad(y.sum(), x)


def test_retain_graph_allows_a_second_backward_that_accumulates():
    inputs = _block_inputs(1)
    loss = (_block(*inputs) ** 2).mean()
    once = te.grad(loss, list(inputs[1:]), retain_graph=True)
    assert not any(fn.released for fn in _nodes(loss))
    loss.backward(retain_graph=True)
    loss.backward()
    for p, g in zip(inputs[1:], once):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g.numpy(), rtol=1e-12)
    assert all(fn.released for fn in _nodes(loss))


def test_grad_frees_only_the_nodes_it_ran():
    x, w = rand(3, seed=1), rand(3, seed=2)
    side = (w * w).exp()  # not on a path to x
    y = (x.tanh() * side).sum()
    te.grad(y, x)
    assert side.grad_fn.released is False and y.grad_fn.released
    (gw,) = te.grad(side.sum(), w)  # its graph is intact
    np.testing.assert_allclose(gw.numpy(), 2 * w.numpy() * np.exp(w.numpy() ** 2))


def test_create_graph_keeps_the_forward_graph_for_the_meta_gradient_and_the_real_step():
    # Algorithm 1 of L2W on one forward graph: a pseudo-update with create_graph (Eq. 7), the
    # meta-gradient in the weights φ (Eq. 8), then the real backward through the same forward (Eq. 9)
    x, *params = _block_inputs(2)
    x_meta = _block_inputs(3)[0]
    per_sample = (_block(x, *params) ** 2).mean(dim=1)
    phi = te.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    grads = te.grad((phi * per_sample).mean(), params, create_graph=True)
    assert not any(fn.released for fn in _nodes(per_sample))
    meta = (_block(x_meta, *[p - 0.1 * g for p, g in zip(params, grads)]) ** 2).mean()
    (d_phi,) = te.grad(meta, phi)

    def meta_at(phi_value):
        ps = [te.tensor(p.numpy(), requires_grad=True) for p in params]
        gs = te.grad((te.tensor(phi_value) * (_block(x, *ps) ** 2).mean(dim=1)).mean(), ps)
        return (_block(x_meta, *[p - 0.1 * g for p, g in zip(ps, gs)]) ** 2).mean().item()

    eps, p0 = 1e-6, phi.numpy()
    numeric = [(meta_at(p0 + eps * e) - meta_at(p0 - eps * e)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(d_phi.numpy(), numeric, rtol=1e-5, atol=1e-10)
    assert not any(fn.released for fn in _nodes(per_sample))  # the meta-gradient did not run through it
    (phi.detach() * per_sample).mean().backward()
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12)
    assert all(fn.released for fn in _nodes(per_sample))


def test_ops_that_need_no_input_data_do_not_hold_it():
    x = rand(2, 3, 4, 4)
    h = F.batch_norm(x, None, None, None, None, training=True)
    ref = weakref.ref(h.data)
    y = F.relu(h)  # relu's gradient reads its output, not its input
    del h
    assert ref() is None
    assert isinstance(y.grad_fn.inputs[0], InputEdge) and y.grad_fn.inputs[0].shape == (2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="does not save its inputs"):
        _ = y.grad_fn.inputs[0].data
    (g,) = te.grad((y * y).sum(), x)  # and the gradient is still right
    xn = x.numpy()
    xh = (xn - xn.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(xn.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    d = 2 * np.maximum(xh, 0)  # d sum(relu(xh)^2) / d xh, then back through the normalisation
    s = 1 / np.sqrt(xn.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    mean = lambda u: u.mean(axis=(0, 2, 3), keepdims=True)  # noqa: E731
    np.testing.assert_allclose(g.numpy(), s * (d - mean(d) - xh * mean(d * xh)), rtol=1e-9, atol=1e-12)
