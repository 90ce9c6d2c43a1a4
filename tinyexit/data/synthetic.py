"""A small synthetic image dataset of varied difficulty, for demos and tests that need no download.

Class ``c`` of ``C`` has a colour (hue ``c / C``) and a texture: fine horizontal or vertical
stripes (a period of 3 to 4 pixels) of a class-specific frequency; both survive the horizontal
flip of the CIFAR augmentation. Every image draws its own contrast, log-uniform over a 15-fold
range, and adds a random colour cast and pixel noise of fixed strength. A high-contrast image
shows its class at a glance; in a faint one the colour drowns in the cast and the stripes in the
noise, and only filters that pool the stripes over a large part of the image recover it. So the
accuracy of a network depends on how much of the hard end it learns, instead of every exit
scoring close to 100%.

The class prototypes depend only on ``num_classes``, never on ``seed``: two calls with different
seeds are a training and a test set of the same task.
"""

from __future__ import annotations

import colorsys

import numpy as np

_SIZE = 32
_CHUNK = 4096
_CONTRAST = (0.1, 1.5)  # range of the per-image contrast, log-uniform
_CAST = 0.06  # standard deviation of the per-image, per-channel colour cast


def _prototypes(num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class colour offset from grey ``(C, 3)``, stripe direction ``(C,)`` (0: vertical), frequency ``(C,)``."""
    colours = np.array([colorsys.hsv_to_rgb(c / num_classes, 1.0, 1.0) for c in range(num_classes)])
    colours -= colours.mean(axis=1, keepdims=True)
    horizontal = np.arange(num_classes) % 2
    freqs = 7.5 + (np.arange(num_classes) // 2) % 5  # cycles per image
    return colours, horizontal, freqs


def synthetic_dataset(
    n: int, num_classes: int = 10, seed: int = 0, noise: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a learnable CIFAR-shaped dataset whose images range from easy to hard.

    Args:
        n: Number of images.
        num_classes: Number of classes; labels are balanced (they differ by at most one per class).
        seed: Seed of the labels, contrasts, phases, colour casts and noise.
        noise: Standard deviation of the per-pixel Gaussian noise, in [0, 1] units.

    Returns:
        ``(images, labels)``: uint8 ``(n, 3, 32, 32)`` and int64 ``(n,)``.
    """
    if n < 0 or num_classes < 1:
        raise ValueError(f"need n >= 0 and num_classes >= 1, got n={n}, num_classes={num_classes}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    colours, horizontal, freqs = (a.astype(np.float32) for a in _prototypes(num_classes))
    coords = (np.arange(_SIZE, dtype=np.float32) + 0.5) / _SIZE
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    low, high = np.log(_CONTRAST[0]), np.log(_CONTRAST[1])
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        lab = labels[start : start + _CHUNK]
        m = lab.size
        contrast = np.exp(rng.uniform(low, high, size=(m, 1, 1, 1))).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, size=(m, 1, 1)).astype(np.float32)
        h = horizontal[lab][:, None, None]
        along = h * yy + (1 - h) * xx  # the coordinate across the stripes
        stripes = np.sin(np.float32(2 * np.pi) * freqs[lab][:, None, None] * along + phase)
        pattern = colours[lab][:, :, None, None] + 0.5 * stripes[:, None]
        x = 0.5 + contrast * pattern
        x += rng.normal(0.0, _CAST, size=(m, 3, 1, 1)).astype(np.float32)
        x += rng.standard_normal(size=x.shape, dtype=np.float32) * np.float32(noise)
        images[start : start + m] = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    return images, labels
