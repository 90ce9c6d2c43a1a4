"""Module registration, naming, state dicts, modes, conversion and functional_call."""

from __future__ import annotations

import numpy as np
import pytest

import tinyexit as te
from tinyexit import nn


def _net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 2),
    )


def test_names_follow_pytorch():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var"]
    assert list(net.state_dict()) == [
        "0.weight",
        "1.weight",
        "1.bias",
        "5.weight",
        "5.bias",
        "1.running_mean",
        "1.running_var",
    ]


def test_state_dict_round_trip_and_errors():
    a, b = _net(), _net()
    b.load_state_dict(a.state_dict())
    x = te.randn(2, 3, 4, 4)
    np.testing.assert_array_equal(a.eval()(x).numpy(), b.eval()(x).numpy())
    state = a.state_dict()
    del state["5.bias"]
    state["extra"] = te.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['5.bias'\].*unexpected keys \['extra'\]"):
        b.load_state_dict(state)
    state = a.state_dict()
    state["0.weight"] = te.zeros(4, 3, 1, 1)
    with pytest.raises(ValueError, match="0.weight"):
        b.load_state_dict(state)


def test_load_state_dict_copies():
    a, b = _net(), _net()
    b.load_state_dict(a.state_dict())
    b[0].weight.data += 1
    assert not np.allclose(a[0].weight.numpy(), b[0].weight.numpy())


def test_train_eval_switches_every_submodule():
    net = _net().eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_batchnorm_updates_running_stats_only_in_training():
    net = _net()
    x = te.randn(4, 3, 4, 4)
    net.eval()(x)
    assert np.all(net[1].running_mean.numpy() == 0)
    net.train()(x)
    assert not np.all(net[1].running_mean.numpy() == 0)


def test_double_keeps_parameter_identity():
    net = _net()
    p = net[0].weight
    net.double()
    assert net[0].weight is p and p.dtype == np.float64 and net[1].running_var.dtype == np.float64


def test_functional_call_replaces_without_changing_the_module():
    net = nn.Linear(3, 2)
    w = te.tensor(np.ones((2, 3)), dtype=np.float32, requires_grad=True)
    x = te.ones(1, 3)
    y = nn.functional_call(net, {"weight": w}, x)
    np.testing.assert_allclose(y.numpy(), 3 + net.bias.numpy()[None])
    (g,) = te.grad(y.sum(), w)
    np.testing.assert_allclose(g.numpy(), np.ones((2, 3)))
    assert net.weight is not w and not np.allclose(net.weight.numpy(), 1)
    with pytest.raises(KeyError, match="no parameter or buffer 'nope'"):
        nn.functional_call(net, {"nope": w}, x)
    with pytest.raises(ValueError, match="shape"):
        nn.functional_call(net, {"weight": te.ones(3, 3)}, x)


def test_missing_super_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(te.zeros(1))

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_init_distributions():
    te.manual_seed(1)
    conv = nn.Conv2d(64, 128, 3)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    assert conv.weight.numpy().std() == pytest.approx(np.sqrt(2 / (9 * 128)), rel=0.02)
    lin = nn.Linear(100, 50)
    assert np.abs(lin.weight.numpy()).max() <= 0.1 and np.abs(lin.weight.numpy()).max() > 0.09
