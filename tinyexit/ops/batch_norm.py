"""Batch normalisation as one fused op whose backward is itself a fused, differentiable op.

Per channel, with ⟨u⟩ the mean of u over the N values of a channel (batch and spatial axes),
μ = ⟨x⟩, s = (⟨(x − μ)²⟩ + eps)^(-1/2) and x̂ = (x − μ)·s:

    forward        y  = w·x̂ + b
    first order    gx = w·s·P(gy),  gw = Σ gy·x̂,  gb = Σ gy,   with P(u) = u − ⟨u⟩ − x̂·⟨u·x̂⟩

``BatchNorm`` computes y with the backend's batch-norm kernel on raw arrays, keeping only μ and s
besides its inputs. Its backward is ``BatchNormGrad`` (x, w, gy) -> (gx, gw, gb), also one op on raw arrays, so a
first-order backward costs one node; its own backward (the second derivative that the L2W
meta-gradient needs) is ``BatchNormGradGrad``, a third op on raw arrays, whose backward
differentiates the same formula written with tinyexit's differentiable ops
(:func:`batch_norm_second_order`), so every order works.
"""

from __future__ import annotations

from ..autograd.engine import grad
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..autograd.tensor import Tensor
from ..backend import array_module, kernels
from .broadcast import broadcast_to
from .reduce import mean, sum
from .unary import sqrt


class BatchNorm(Function):
    """y = w·(x − μ)·s + b with batch statistics; w and b of shape (1, C, 1, ...).

    The running statistics (raw arrays, or None) are updated in place, as PyTorch's kernel does:
    r ← (1 − momentum)·r + momentum·stat, with the unbiased variance.
    """

    def forward(self, x, w, b, axes, eps, running_mean, running_var, momentum):
        c = x.shape[1]
        y, mean, var = kernels(x).batch_norm(x, w.reshape(c), b.reshape(c), eps)
        self.mu = mean.reshape(w.shape)
        self.s = 1 / array_module(x).sqrt(var.reshape(w.shape) + eps)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            n = x.size // c
            running_var *= 1 - momentum
            running_var += (momentum * n / (n - 1)) * var
        return y

    def backward(self, gy):
        x, w, _ = self.inputs
        return batch_norm_grad(x, w, gy, self.axes, self.eps, self.mu, self.s)


class BatchNormGrad(Function):
    """(gx, gw, gb) of batch norm for the output gradient gy; μ and s are passed in from the forward."""

    def forward(self, x, w, gy, axes, eps, mu, s):
        c = x.shape[1]
        gx, gw, gb = kernels(x).batch_norm_grad(x, w.reshape(c), gy, mu.reshape(c), s.reshape(c))
        return gx, gw.reshape(w.shape), gb.reshape(w.shape)

    def backward(self, ggx, ggw, ggb):
        x, w, gy = self.inputs
        if ggx is None:
            return batch_norm_second_order(x, w, gy, None, ggw, ggb, self.axes, self.eps)
        xp = array_module(x.data)
        ggw, ggb = (Tensor.wrap(xp.zeros(w.shape, x.dtype)) if g is None else g for g in (ggw, ggb))
        return BatchNormGradGrad.apply(
            x, w, gy, ggx, ggw, ggb, axes=self.axes, eps=self.eps, mu=self.mu, s=self.s
        )


def batch_norm_second_order(x: Tensor, w: Tensor, gy: Tensor, ggx, ggw, ggb, axes, eps) -> tuple:
    """The backward of ``BatchNormGrad`` for (ggx, ggw, ggb), any of them None, written with
    differentiable ops: the specification of ``BatchNormGradGrad`` and its own backward."""

    def avg(u: Tensor) -> Tensor:
        return mean(u, axes, keepdim=True)

    def project(u: Tensor) -> Tensor:  # P(u) = u − ⟨u⟩ − x̂·⟨u·x̂⟩
        return u - avg(u) - xh * avg(u * xh)

    centred = x - avg(x)
    s = 1 / sqrt(avg(centred * centred) + eps)
    xh = centred * s
    a = w * s
    g_gy = broadcast_to(ggb, x.shape) if ggb is not None else None
    if ggw is not None:
        g_gy = ggw * xh if g_gy is None else g_gy + ggw * xh
    if ggx is None:
        return (None if ggw is None else s * project(ggw * gy)), None, g_gy
    p_gy = project(gy)
    g_gy = a * project(ggx) if g_gy is None else g_gy + a * project(ggx)
    g_w = sum(ggx * p_gy * s, axes, keepdim=True)  # Σ ggx·∂gx/∂w, ∂gx/∂w = s·P(gy)
    # x̂ with s fixed: u = −a·(ggx·⟨gy·x̂⟩ + gy·⟨ggx·x̂⟩) + ggw·gy; s itself: ∂s/∂x = −s²·x̂/n
    u = -a * (ggx * avg(gy * xh) + gy * avg(ggx * xh))
    if ggw is not None:
        u = u + ggw * gy
    g_x = s * project(u) - s * xh * avg(ggx * a * p_gy)
    return g_x, g_w, g_gy


class BatchNormGradGrad(Function):
    """(g_x, g_w, g_gy), the backward of ``BatchNormGrad``, as one op on raw arrays (the backend's
    ``batch_norm_grad_grad`` kernel: a few passes where the composed formula takes about 45
    full-size ops). Its own backward, a third derivative no training step needs, differentiates
    :func:`batch_norm_second_order` with the engine, so every order still works."""

    def forward(self, x, w, gy, ggx, ggw, ggb, axes, eps, mu, s):
        c = x.shape[1]
        g_x, g_w, g_gy = kernels(x).batch_norm_grad_grad(
            x, w.reshape(c), gy, ggx, ggw.reshape(c), ggb.reshape(c), mu.reshape(c), s.reshape(c)
        )
        return g_x, g_w.reshape(w.shape), g_gy

    def backward(self, h_x, h_w, h_gy):
        # the formula is rebuilt on aliases of the inputs, so that the engine's walk ends at this
        # node's inputs instead of going on into the graph that computed them
        with enable_grad():
            aliases = [Alias.apply(t) if t.requires_grad else t for t in self.inputs]
            outs = batch_norm_second_order(*aliases, self.axes, self.eps)
        pairs = [(o, h) for o, h in zip(outs, (h_x, h_w, h_gy)) if h is not None and o.requires_grad]
        wanted = [a for a in aliases if a.requires_grad]
        if not pairs:
            return (None,) * len(aliases)
        grads = iter(
            grad(
                [o for o, _ in pairs],
                wanted,
                [h for _, h in pairs],
                create_graph=is_grad_enabled(),
                allow_unused=True,
            )
        )
        return tuple(next(grads) if a.requires_grad else None for a in aliases)


class Alias(Function):
    """y = x, as a node of its own (its backward passes the gradient on)."""

    saves_inputs = False

    def forward(self, x):
        return x

    def backward(self, gy):
        return gy


def batch_norm_grad(x: Tensor, w: Tensor, gy: Tensor, axes, eps, mu, s) -> tuple[Tensor, Tensor, Tensor]:
    """The first-order gradients (gx, gw, gb) of ``BatchNorm`` as one differentiable op."""
    return BatchNormGrad.apply(x, w, gy, axes=axes, eps=eps, mu=mu, s=s)


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of an (N, C, ...) tensor, as ``torch.nn.functional.batch_norm``.

    In training, batch statistics are used (biased variance) and the running statistics are
    updated in place: r <- (1 - momentum) r + momentum * stat, with the unbiased variance. In eval,
    the running statistics are used: y = x·scale + shift with scale = w / sqrt(r_var + eps).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got {input.shape}")
    c = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and t.shape != (c,):
            raise ValueError(
                f"batch_norm: {name} has shape {t.shape}, expected ({c},) for input {input.shape}"
            )
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    xp = array_module(input.data)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        scale = 1 / sqrt(running_var + eps)
        if weight is not None:
            scale = scale * weight
        shift = -running_mean * scale if bias is None else bias - running_mean * scale
        return input * scale.reshape(stat_shape) + shift.reshape(stat_shape)
    if c == 0:
        return input * 1.0  # no channel to normalise: an empty result, as PyTorch
    if input.numel() // c < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, input {input.shape}")
    w = weight.reshape(stat_shape) if weight is not None else Tensor.wrap(xp.ones(stat_shape, input.dtype))
    b = bias.reshape(stat_shape) if bias is not None else Tensor.wrap(xp.zeros(stat_shape, input.dtype))
    return BatchNorm.apply(
        input,
        w,
        b,
        axes=(0,) + tuple(range(2, input.ndim)),
        eps=eps,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        momentum=momentum,
    )
