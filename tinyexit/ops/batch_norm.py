"""Batch normalisation built from differentiable ops, so second derivatives pass through the batch statistics."""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .reduce import mean, var
from .unary import sqrt


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of an (N, C, ...) tensor, as ``torch.nn.functional.batch_norm``.

    In training, batch statistics are used (biased variance) and the running statistics are
    updated in place: r <- (1 - momentum) r + momentum * stat, with the unbiased variance. In eval,
    the running statistics are used.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got {input.shape}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({c},) for input {input.shape}")
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    dims = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c
        if count < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel, input {input.shape}")
        mu = mean(input, dims, keepdim=True)
        sigma2 = var(input, dims, keepdim=True, unbiased=False)
        if running_mean is not None:
            with no_grad():
                running_mean.data *= 1 - momentum
                running_mean.data += momentum * mu.data.reshape(c)
        if running_var is not None:
            with no_grad():
                running_var.data *= 1 - momentum
                running_var.data += momentum * sigma2.data.reshape(c) * (count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        mu, sigma2 = running_mean.reshape(stat_shape), running_var.reshape(stat_shape)
    y = (input - mu) / sqrt(sigma2 + eps)  # x_hat = (x - mu) / sqrt(sigma^2 + eps)
    if weight is not None:
        y = y * weight.reshape(stat_shape)
    if bias is not None:
        y = y + bias.reshape(stat_shape)
    return y
