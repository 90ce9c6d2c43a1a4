"""Named model configurations: the paper's CIFAR and ImageNet networks and small variants for CPU.

Measured with ``count_ops`` for CIFAR-10, cumulative per exit, shallowest first. For CIFAR-100
each head's Linear has ``(head_channels + 1) * 90`` more parameters and Mul-Adds (11,610 for the
128-wide heads), added up over the exits so far. The step time is one forward + backward of the summed cross entropies
at batch 64, float32, with the NumPy reference kernels on the 2-core development machine.

=============  =====  ======================================  ================================  ======
preset         exits  Mul-Adds per exit (M)                   params per exit (M)               step
=============  =====  ======================================  ================================  ======
msdnet5        5      6.85 14.33 27.50 41.67 58.42            0.29 0.63 0.98 1.45 2.02          3.5 s
msdnet7        7      6.85 14.33 27.26 48.40 76.37 108.8      0.29 0.63 1.08 1.68 2.33 2.98     7.2 s
                      137.2                                   3.89
ranet6         6      8.36 21.77 32.84 41.52 53.23 58.92      0.35 0.88 1.27 1.75 2.13 2.55     3.8 s
msdnet3_small  3      1.82 4.04 6.14                          0.035 0.074 0.120                 0.35 s
msdnet4_tiny   4      0.52 1.09 2.12 3.18                     0.009 0.021 0.037 0.055           0.25 s
ranet4_small   4      1.45 3.31 4.83 5.76                     0.035 0.091 0.130 0.155           0.41 s
ranet4_tiny    4      0.51 1.63 2.68 3.37                     0.011 0.038 0.058 0.070           0.26 s
=============  =====  ======================================  ================================  ======

``msdnet5``, ``msdnet7`` and ``ranet6`` are the paper's CIFAR configurations (their Mul-Adds and
parameters are in docs/design-choices.md, "Models"). ``ranet8`` is the paper's second CIFAR RANet
(four base features of 32, 16, 16 and 8 pixels with 8, 6, 4, 2 blocks and 16, 32, 32, 64 channels,
8 exits); the paper prints no counts for it, its CIFAR-10 Mul-Adds per exit (M) measure 10.73 24.13
35.21 43.89 93.01 114.61 163.94 175.65 and its parameters (M) 0.356 0.886 1.279 1.764 2.660 3.616
4.381 5.094. The small ones keep their structure with fewer channels
and narrower heads.
``ranet4_*`` use one-layer fusion blocks (``step=1``), which the reference code cannot build.

The ImageNet presets (``list_presets("imagenet")``, 224x224 images, 1000 classes) are the L2W
paper's MSDNets with s = 4, 6, 7 (``msdnet_imagenet4``, ``_6``, ``_7``: 5 exits; 1.36, 2.19 and
2.68 G Mul-Adds and 24.0, 38.7 and 47.5 M parameters at the last exit, as the paper prints) and
the RANet authors' ImageNet configuration (``ranet_imagenet``: 8 exits, 2.83 G Mul-Adds and
131.1 M parameters at the last). docs/design-choices.md has their per-exit table.
"""

from __future__ import annotations

from typing import Any

from ..nn import Module
from .blocks import check_stem
from .msdnet import MSDNet
from .ranet import RANet

#: ``arch`` value -> model class
ARCHS: dict[str, type[Module]] = {"msdnet": MSDNet, "ranet": RANet}

_MSDNET = dict(
    arch="msdnet",
    step_mode="lin_grow",
    step=1,
    base=1,
    n_channels=16,
    growth_rate=6,
    gr_factor=[1, 2, 4],
    bn_factor=[1, 2, 4],
    prune="max",
    reduction=0.5,
    head_channels=128,
)
_RANET = dict(
    arch="ranet",
    n_blocks=2,
    block_step=2,
    step=2,
    step_mode="lg",
    n_channels=16,
    growth_rate=6,
    scale_list=[1, 2, 3],
    gr_factor=[4, 2, 1],
    bn_factor=[4, 2, 1],
    compress_factor=0.25,
    reduction=0.5,
    head_channels=128,
)

_MSDNET_IMAGENET = dict(
    arch="msdnet",
    stem="imagenet",
    n_blocks=5,
    step_mode="even",
    base=4,
    n_channels=32,
    growth_rate=16,
    gr_factor=[1, 2, 4, 4],
    bn_factor=[1, 2, 4, 4],
    prune="max",
    reduction=0.5,
    head_channels=None,
)
_RANET_IMAGENET = dict(
    arch="ranet",
    stem="imagenet",
    n_blocks=2,
    block_step=2,
    step=8,
    step_mode="even",
    n_channels=32,
    growth_rate=16,
    scale_list=[1, 2, 3, 4],
    gr_factor=[4, 2, 2, 1],
    bn_factor=[4, 2, 2, 1],
    compress_factor=0.25,
    reduction=0.5,
    head_channels=None,
)

#: name -> configuration: ``arch`` ("msdnet" or "ranet") and the constructor's keyword arguments
#: except ``num_classes``.
PRESETS: dict[str, dict[str, Any]] = {
    "msdnet5": dict(_MSDNET, n_blocks=5),
    "msdnet7": dict(_MSDNET, n_blocks=7),
    "ranet6": dict(_RANET),
    "ranet8": dict(_RANET, scale_list=[1, 2, 2, 3], gr_factor=[4, 2, 2, 1], bn_factor=[4, 2, 2, 1]),
    "msdnet3_small": dict(_MSDNET, n_blocks=3, n_channels=8, growth_rate=4, head_channels=32),
    "msdnet4_tiny": dict(_MSDNET, n_blocks=4, n_channels=4, growth_rate=2, head_channels=16),
    "ranet4_small": dict(_RANET, block_step=1, step=1, n_channels=8, growth_rate=4, head_channels=32),
    "ranet4_tiny": dict(_RANET, block_step=1, step=1, n_channels=4, growth_rate=4, head_channels=16),
    "msdnet_imagenet4": dict(_MSDNET_IMAGENET, step=4),
    "msdnet_imagenet6": dict(_MSDNET_IMAGENET, step=6),
    "msdnet_imagenet7": dict(_MSDNET_IMAGENET, step=7),
    "ranet_imagenet": dict(_RANET_IMAGENET),
}


def list_presets(stem: str | None = None) -> list[str]:
    """Return the preset names, the paper's CIFAR configurations first.

    Args:
        stem: ``"cifar"`` (32x32 images) or ``"imagenet"`` (224x224 images) lists only the
            presets built for those images; ``None`` lists them all.

    Raises:
        ValueError: for an unknown stem.
    """
    if stem is None:
        return list(PRESETS)
    check_stem(stem)
    return [name for name, config in PRESETS.items() if config.get("stem", "cifar") == stem]


def build(config: dict[str, Any], num_classes: int = 10) -> Module:
    """Build a model from a configuration dict shaped like a ``PRESETS`` entry.

    Raises:
        ValueError: for an unknown ``arch``, or an invalid configuration.
    """
    kwargs = dict(config)
    arch = kwargs.pop("arch", None)
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    return ARCHS[arch](num_classes=num_classes, **kwargs)


def create(name: str, num_classes: int = 10, init: str = "official", **overrides: Any) -> Module:
    """Build the preset ``name`` for ``num_classes`` classes.

    Args:
        name: one of ``list_presets()``.
        num_classes: classes of every exit (10 for CIFAR-10, 100 for CIFAR-100).
        init: one of ``INITS``: ``"official"``, the initialisation the paper's runs trained from
            (PyTorch's default for MSDNet; the reference He init for RANet except its first layer),
            or ``"he"``, the He init the reference code intended on every convolution.
        **overrides: constructor arguments replacing the preset's, e.g. ``head_channels=64``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid names: {', '.join(list_presets())}")
    return build(dict(PRESETS[name], init=init, **overrides), num_classes)
