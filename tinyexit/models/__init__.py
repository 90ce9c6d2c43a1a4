"""Multi-exit networks for CIFAR (MSDNet, RANet), their per-exit costs, and named configurations.

A multi-exit model is a ``Module`` whose ``forward`` returns a list of K logit tensors, one per
exit, shallowest first.
"""

from .blocks import INITS
from .counting import ExitCounts, count_ops
from .msdnet import MSDNet
from .multi_exit import as_batch, exit_confidences, exit_losses
from .presets import ARCHS, PRESETS, build, create, list_presets
from .ranet import RANet

__all__ = [
    "MSDNet",
    "RANet",
    "count_ops",
    "ExitCounts",
    "create",
    "build",
    "list_presets",
    "PRESETS",
    "ARCHS",
    "INITS",
    "as_batch",
    "exit_losses",
    "exit_confidences",
]
