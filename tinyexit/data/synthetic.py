"""A small synthetic image dataset for demos and tests that need no download.

Class ``c`` of ``C`` has a colour (hue ``c / C``) and a pattern of stripes with a class-specific
orientation and frequency; each image draws a random stripe phase, a brightness shift and pixel
noise. Colour alone separates classes only roughly (neighbouring hues are close), the stripes
need a few convolutions to see, so a small network learns it well above chance in a minute, and
its early exits are visibly weaker than its late ones.

The class prototypes depend only on ``num_classes``, never on ``seed``: two calls with different
seeds are a training and a test set of the same task.
"""

from __future__ import annotations

import colorsys

import numpy as np

_SIZE = 32
_CHUNK = 4096


def _prototypes(num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class RGB colour ``(C, 3)``, stripe angle ``(C,)`` and frequency ``(C,)``."""
    colours = np.array([colorsys.hsv_to_rgb(c / num_classes, 0.35, 0.7) for c in range(num_classes)])
    angles = np.pi * ((np.arange(num_classes) * 3) % num_classes) / num_classes
    freqs = 2.0 + (np.arange(num_classes) % 3)
    return colours, angles, freqs


def synthetic_dataset(
    n: int, num_classes: int = 10, seed: int = 0, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a learnable CIFAR-shaped dataset.

    Args:
        n: Number of images.
        num_classes: Number of classes; labels are balanced (they differ by at most one per class).
        seed: Seed of the labels, phases, brightness and noise.
        noise: Standard deviation of the per-pixel Gaussian noise, in [0, 1] units.

    Returns:
        ``(images, labels)``: uint8 ``(n, 3, 32, 32)`` and int64 ``(n,)``.
    """
    if n < 0 or num_classes < 1:
        raise ValueError(f"need n >= 0 and num_classes >= 1, got n={n}, num_classes={num_classes}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    colours, angles, freqs = (a.astype(np.float32) for a in _prototypes(num_classes))
    coords = (np.arange(_SIZE, dtype=np.float32) + 0.5) / _SIZE
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        lab = labels[start : start + _CHUNK]
        m = lab.size
        phase = rng.uniform(0, 2 * np.pi, size=(m, 1, 1)).astype(np.float32)
        direction = np.cos(angles[lab])[:, None, None] * xx + np.sin(angles[lab])[:, None, None] * yy
        stripes = np.sin(np.float32(2 * np.pi) * freqs[lab][:, None, None] * direction + phase)
        x = colours[lab][:, :, None, None] * (0.7 + 0.3 * stripes)[:, None]
        x += rng.normal(0.0, 0.1, size=(m, 1, 1, 1)).astype(np.float32)
        x += rng.standard_normal(size=x.shape, dtype=np.float32) * np.float32(noise)
        images[start : start + m] = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    return images, labels
