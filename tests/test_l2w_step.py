"""The L2W step: the meta-gradient against finite differences, a full step against a NumPy derivation,
batch-norm statistics, the WPN and the ablations."""

from __future__ import annotations

import numpy as np
import pytest

import tinyexit as te
from tinyexit import nn
from tinyexit.exercises.checks_l2w import _TwoExitNet as SmallConvNet  # the exercise checks use it too
from tinyexit.l2w import L2WTrainer, WeightPredictionNet
from tinyexit.models import exit_confidences, exit_losses


def _trainer(model, wpn, lr=0.5, **kwargs):
    opt = te.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    wopt = te.optim.Adam(wpn.parameters(), lr=1e-3, weight_decay=1e-4) if wpn is not None else None
    return L2WTrainer(model, wpn, opt, wopt, **kwargs)


def test_meta_gradient_matches_finite_differences():
    """∇φ L_meta(θ̂(φ)) through the pseudo-update (Eq. 7) equals central differences, every WPN parameter."""
    te.manual_seed(3)
    model = SmallConvNet()
    wpn = WeightPredictionNet(2, hidden=6).double()
    trainer = _trainer(model, wpn)
    rng = np.random.default_rng(0)
    x_tr, x_me = (te.tensor(rng.standard_normal((6, 2, 5, 5))) for _ in range(2))
    y_tr, y_me = rng.integers(0, 3, 6), rng.integers(0, 3, 6)
    logits = model(x_tr)
    losses, conf = exit_losses(logits, y_tr), exit_confidences(logits)
    # a first real step gives the optimiser a momentum buffer, so Eq. 7's momentum term is exercised too
    losses.sum().backward()
    trainer.optimizer.step()
    logits = model(x_tr)
    losses, conf = exit_losses(logits, y_tr), exit_confidences(logits)
    assert te.gradcheck(
        lambda *phi: trainer.meta_loss(losses, conf, x_me, y_me)[0],
        list(wpn.parameters()),
        eps=1e-6,
        atol=1e-8,
        rtol=1e-4,
    )


# --- a full step derived by hand in NumPy ---------------------------------------------------------


class LinearTwoExit(nn.Module):
    def __init__(self, d, c):
        super().__init__()
        self.exit1 = nn.Linear(d, c, bias=False, dtype=np.float64)
        self.exit2 = nn.Linear(d, c, bias=False, dtype=np.float64)

    def forward(self, x):
        return [self.exit1(x), self.exit2(x)]


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ce_grad(z, y):
    """d CE / d z per sample: softmax minus one-hot."""
    g = _softmax(z)
    g[np.arange(len(y)), y] -= 1
    return g


class _HandL2W:
    """L2W for z_k = x W_k^T derived by hand: SGD (momentum 0.9, wd) backbone, Adam WPN, q allocation."""

    def __init__(self, ws, phi, lr, wlr, wd, delta, q):
        self.ws, self.phi = [w.copy() for w in ws], [p.copy() for p in phi]
        self.lr, self.wlr, self.wd, self.delta, self.q = lr, wlr, wd, delta, q
        self.buf = None
        self.m = self.v = None
        self.t = 0

    def wpn(self, L):
        u1, b1, u2, b2 = self.phi
        r = L @ u1.T + b1
        h = np.maximum(r, 0)
        t = np.tanh(h @ u2.T + b2)
        return 1 + self.delta * (t - t.mean(1, keepdims=True)), (L, r, h, t)

    def wpn_backward(self, a, cache):
        L, r, h, t = cache
        u1, b1, u2, b2 = self.phi
        dt = self.delta * (a - a.mean(1, keepdims=True))  # through w = 1 + δ(t − mean t)
        ds = dt * (1 - t * t)
        dr = (ds @ u2) * (r > 0)
        return [dr.T @ L, dr.sum(0), ds.T @ h, ds.sum(0)]

    def half_step(self, xt, yt, xm, ym):
        b, k_exits = len(yt), len(self.ws)
        zs = [xt @ w.T for w in self.ws]
        L = np.stack([-np.log(_softmax(z)[np.arange(b), yt]) for z in zs], 1)
        ds = [_ce_grad(z, yt) for z in zs]
        w, cache = self.wpn(L)
        # Eq. 7 with the real momentum buffer: θ̂ = W − lr (mom·buf + G(w) + wd W)
        g = [(w[:, k, None] * ds[k]).T @ xt / b for k in range(k_exits)]
        d = [g[k] + self.wd * self.ws[k] for k in range(k_exits)]
        step = d if self.buf is None else [0.9 * self.buf[k] + d[k] for k in range(k_exits)]
        theta_hat = [self.ws[k] - self.lr * step[k] for k in range(k_exits)]
        # Eq. 6 with the allocation by q on θ̂'s confidences
        zm = [xm @ th.T for th in theta_hat]
        conf = np.stack([_softmax(z).max(1) for z in zm])
        shares = self.q ** np.arange(1, k_exits + 1) / (self.q ** np.arange(1, k_exits + 1)).sum()
        free, subsets = np.ones(len(ym), bool), []
        for k in range(k_exits - 1):
            order = np.argsort(-conf[k], kind="stable")
            chosen = order[free[order]][: int(np.floor(len(ym) * shares[k] + 1e-9))]
            free[chosen] = False
            subsets.append(chosen)
        subsets.append(np.flatnonzero(free))
        ms = [_ce_grad(zm[k][s], ym[s]).T @ xm[s] / len(s) for k, s in enumerate(subsets)]
        # dL_meta/dw_ik = −lr/B · (p_ik − e_y)ᵀ M_k x_i
        a = np.stack([-self.lr / b * ((ds[k] @ ms[k]) * xt).sum(1) for k in range(k_exits)], 1)
        grads = [gp + self.wd * p for gp, p in zip(self.wpn_backward(a, cache), self.phi)]
        # Eq. 8: Adam
        self.t += 1
        self.m = (
            [0.1 * gp for gp in grads]
            if self.m is None
            else [0.9 * m + 0.1 * gp for m, gp in zip(self.m, grads)]
        )
        self.v = (
            [0.001 * gp * gp for gp in grads]
            if self.v is None
            else [0.999 * v + 0.001 * gp * gp for v, gp in zip(self.v, grads)]
        )
        for i in range(4):
            denom = np.sqrt(self.v[i]) / np.sqrt(1 - 0.999**self.t) + 1e-8
            self.phi[i] = self.phi[i] - self.wlr / (1 - 0.9**self.t) * self.m[i] / denom
        # Eq. 9: SGD with momentum on the loss weighted by the updated WPN
        w_new, _ = self.wpn(L)
        g = [(w_new[:, k, None] * ds[k]).T @ xt / b for k in range(k_exits)]
        d = [g[k] + self.wd * self.ws[k] for k in range(k_exits)]
        self.buf = d if self.buf is None else [0.9 * self.buf[k] + d[k] for k in range(k_exits)]
        self.ws = [self.ws[k] - self.lr * self.buf[k] for k in range(k_exits)]


def test_full_step_matches_a_hand_derivation():
    te.manual_seed(1)
    d, c, n = 5, 3, 16
    model = LinearTwoExit(d, c)
    wpn = WeightPredictionNet(2, hidden=4).double()
    trainer = L2WTrainer(
        model,
        wpn,
        te.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3),
        te.optim.Adam(wpn.parameters(), lr=1e-2, weight_decay=1e-3),
        q=0.75,
    )
    hand = _HandL2W(
        [model.exit1.weight.numpy(), model.exit2.weight.numpy()],
        [p.numpy() for p in wpn.parameters()],
        lr=0.5,
        wlr=1e-2,
        wd=1e-3,
        delta=0.8,
        q=0.75,
    )
    rng = np.random.default_rng(0)
    for _ in range(2):  # two loaded batches: four half-steps, momentum and Adam state carried over
        x, y = rng.standard_normal((n, d)), rng.integers(0, c, n)
        out = trainer.step(x, y)
        hand.half_step(x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :])
        hand.half_step(x[n // 2 :], y[n // 2 :], x[: n // 2], y[: n // 2])
    np.testing.assert_allclose(model.exit1.weight.numpy(), hand.ws[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.exit2.weight.numpy(), hand.ws[1], rtol=1e-10, atol=1e-12)
    for p, expected in zip(wpn.parameters(), hand.phi):
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-9, atol=1e-12)
    assert out["allocation"] == [2 * int(np.floor(8 * 0.75 / (0.75 + 0.5625))), 2 * (8 - 4)]


class InputBNNet(nn.Module):
    """BN on the raw input first: its batch mean is the input's, whatever θ is."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(2, momentum=1.0, dtype=np.float64)
        self.head1 = nn.Linear(2, 3, dtype=np.float64)
        self.head2 = nn.Linear(2, 3, dtype=np.float64)

    def forward(self, x):
        h = self.bn(x).mean(dim=(2, 3))
        return [self.head1(h), self.head2(h.tanh())]


def test_running_statistics_come_from_the_real_passes_only():
    model = InputBNNet()
    trainer = _trainer(model, WeightPredictionNet(2, hidden=4).double())
    x = np.random.default_rng(0).standard_normal((8, 2, 3, 3))
    x[:4] += 5.0  # the halves have very different means
    trainer.step(x, np.arange(8) % 3)
    # the last real pass trained on the second half; the last meta pass saw the first half
    np.testing.assert_allclose(model.bn.running_mean.numpy(), x[4:].mean(axis=(0, 2, 3)))


def test_wpn_weights_and_layout():
    wpn = WeightPredictionNet(4, hidden=7)
    assert [tuple(p.shape) for p in wpn.parameters()] == [(7, 4), (7,), (4, 7), (4,)]
    losses = te.tensor(np.random.default_rng(0).random((5, 4)), dtype=np.float32)
    w = wpn(losses).numpy()
    np.testing.assert_allclose(w.sum(1), 4, rtol=1e-5)  # "col": each sample's K weights sum to K
    assert np.all(np.abs(w - 1) <= 2 * 0.8)
    mat = WeightPredictionNet(4, hidden=7, centre="mat")(losses).numpy()
    assert mat.mean() == pytest.approx(1, rel=1e-5)
    both = WeightPredictionNet(4, input="both", depth=2)
    assert both(losses, losses).shape == (5, 4) and both.mlp[0].weight.shape == (500, 8)
    with pytest.raises(ValueError, match="needs the confidences"):
        both(losses)
    with pytest.raises(ValueError, match="unknown centre"):
        WeightPredictionNet(4, centre="row")
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        wpn(te.ones(5, 3))


@pytest.mark.parametrize("weighting", ["frozen", "fixed_increasing", "fixed_decreasing", "selection"])
def test_ablations_run_and_leave_the_wpn_alone(weighting):
    te.manual_seed(0)
    model = LinearTwoExit(4, 3)
    wpn = WeightPredictionNet(2, hidden=4).double()
    before = [p.numpy().copy() for p in wpn.parameters()]
    trainer = _trainer(model, wpn, weighting=weighting)
    w0 = model.exit1.weight.numpy().copy()
    out = trainer.step(np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3)
    assert out["meta_loss"] is None and not np.allclose(model.exit1.weight.numpy(), w0)
    for p, b in zip(wpn.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)
    if weighting == "fixed_increasing":
        np.testing.assert_allclose(out["weights"], np.tile([0.6, 1.4], (10, 1)))
    if weighting == "fixed_decreasing":
        np.testing.assert_allclose(out["weights"], np.tile([1.4, 0.6], (10, 1)))


def test_vanilla_objective_uses_every_meta_sample_at_every_exit():
    te.manual_seed(0)
    trainer = _trainer(
        LinearTwoExit(4, 3), WeightPredictionNet(2, hidden=4).double(), meta_objective="vanilla"
    )
    out = trainer.step(np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3)
    assert out["allocation"] == [10, 10] and out["meta_loss"] is not None


def test_meta_interval_skips_meta_steps():
    te.manual_seed(0)
    trainer = _trainer(LinearTwoExit(4, 3), WeightPredictionNet(2, hidden=4).double(), meta_interval=2)
    x, y = np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3
    assert [trainer.step(x, y)["meta_loss"] is None for _ in range(3)] == [False, True, False]


def test_meta_interval_counts_batches_within_the_epoch():
    """As the official code: the meta step runs on batches 0, I, 2I, ... of every epoch."""
    from tinyexit.training import train_epoch

    te.manual_seed(0)
    trainer = _trainer(LinearTwoExit(4, 3), WeightPredictionNet(2, hidden=4).double(), meta_interval=2)
    x, y = np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3
    record, step = [], trainer.step

    def recording_step(images, labels):
        out = step(images, labels)
        record.append(out["meta_loss"] is not None)
        return out

    trainer.step = recording_step
    for _ in range(2):  # epochs of 3 batches; one count over both epochs would give T F T F T F
        train_epoch(trainer, [(x, y)] * 3, progress=False)
    assert record == [True, False, True, True, False, True]


def test_bad_batches_and_options():
    trainer = _trainer(LinearTwoExit(4, 3), WeightPredictionNet(2, hidden=4).double())
    with pytest.raises(ValueError, match="at least 2"):
        trainer.step(np.zeros((1, 4)), np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError, match="do not match"):
        trainer.step(np.zeros((4, 4)), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="unknown weighting"):
        _trainer(LinearTwoExit(4, 3), None, weighting="magic")
