"""A small synthetic image dataset of varied difficulty, for demos and tests that need no download.

Every image shows one shape near its centre, and the shape is the class: a disc, a ring, a
square, a square outline, a triangle, a triangle outline, a diamond, a diamond outline, a plus
and a diagonal cross. The shape's radius (7 to 12 pixels), its centre (up to 3 pixels off the
middle) and its brightness above the background (log-uniform over a 5-fold range) are drawn per
image, then a colour cast and pixel noise are added.

Telling the shapes apart takes their outline at full resolution: a disc, a square and a diamond
of the same size differ only along their edges, a filled shape and its outline only in a
few-pixel-wide interior. The first exit of a multi-scale network classifies from coarse 8x8 maps
after a few layers, the last one after many more layers that also read the finer scales, so late
exits are clearly more accurate than early ones. Some images are easy at any depth: the
background carries a tint of a class colour whose strength is drawn per image (the square of a
uniform number, so mostly faint and now and then strong), and bright, large shapes show their
outline even at coarse resolution. Those leave a network at its first exit, the rest need the
last one, which is what budgeted-batch evaluation measures.

The class shapes and colours depend only on the class, never on ``seed``: two calls with
different seeds are a training and a test set of the same task.
"""

from __future__ import annotations

import colorsys

import numpy as np

_SIZE = 32
_CHUNK = 2048
_RADIUS = (7.0, 12.0)  # range of the shape's radius in pixels, uniform
_JITTER = 3.0  # largest offset of the shape's centre from the middle of the image, in pixels
_CONTRAST = (0.15, 0.75)  # range of the shape's brightness above the background, log-uniform
_TINT = 0.2  # largest strength of the class colour in the background
_CAST = 0.05  # standard deviation of the per-image, per-channel colour cast
_OUTLINE = 1.0  # half-width of an outline in pixels

#: The shape of each class: (name, outline); class ``c`` is ``SHAPES[c]``.
SHAPES: tuple[tuple[str, bool], ...] = (
    ("disc", False),
    ("disc", True),
    ("square", False),
    ("square", True),
    ("triangle", False),
    ("triangle", True),
    ("diamond", False),
    ("diamond", True),
    ("plus", False),
    ("cross", False),
)


def _bar_cross(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to two bars of length ``2r`` and width ``0.6r`` along u and v."""
    along_u = np.maximum(np.abs(v) - 0.3 * r, np.abs(u) - r)
    along_v = np.maximum(np.abs(u) - 0.3 * r, np.abs(v) - r)
    return np.minimum(along_u, along_v)


def _signed_distance(shape: str, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance in pixels from ``(x, y)`` (relative to the centre) to ``shape``."""
    if shape == "disc":
        return np.hypot(x, y) - r
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) - r
    if shape == "diamond":  # a square turned by 45 degrees, a little smaller to match the others' area
        return (np.abs(x) + np.abs(y)) / np.sqrt(2) - 0.85 * r
    if shape == "triangle":  # pointing up: the bottom edge and the two slanted ones
        return np.maximum(y - 0.5 * r, 0.866 * np.abs(x) - 0.5 * y - 0.5 * r)
    if shape == "plus":
        return _bar_cross(x, y, r)
    if shape == "cross":
        return _bar_cross((x + y) / np.sqrt(2), (x - y) / np.sqrt(2), r)
    raise ValueError(f"unknown shape {shape!r}")


def synthetic_dataset(
    n: int, num_classes: int = 10, seed: int = 0, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a learnable CIFAR-shaped dataset of shapes whose images range from easy to hard.

    Args:
        n: Number of images.
        num_classes: Number of classes, 1 to 10: the first ``num_classes`` entries of ``SHAPES``.
            Labels are balanced (they differ by at most one per class).
        seed: Seed of the labels, sizes, positions, contrasts, tints, colour casts and noise.
        noise: Standard deviation of the per-pixel Gaussian noise, in [0, 1] units.

    Returns:
        ``(images, labels)``: uint8 ``(n, 3, 32, 32)`` and int64 ``(n,)``.

    Raises:
        ValueError: for a negative ``n`` or ``noise``, or ``num_classes`` outside 1 to 10.
    """
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(
            f"num_classes must be between 1 and {len(SHAPES)} (one shape each), got {num_classes}"
        )
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    hues = np.array([colorsys.hsv_to_rgb(c / num_classes, 1.0, 1.0) for c in range(num_classes)])
    hues = (hues - hues.mean(axis=1, keepdims=True)).astype(np.float32)
    pixels = np.arange(_SIZE, dtype=np.float32) + 0.5
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        lab = labels[start : start + _CHUNK]
        m = lab.size
        radius = rng.uniform(*_RADIUS, size=m).astype(np.float32)
        cy, cx = (rng.uniform(-_JITTER, _JITTER, size=(2, m)) + _SIZE / 2).astype(np.float32)
        contrast = np.exp(rng.uniform(*np.log(_CONTRAST), size=m)).astype(np.float32)
        tint = _TINT * rng.uniform(0, 1, size=(m, 1)).astype(np.float32) ** 2
        background = 0.5 + tint * hues[lab] + rng.normal(0.0, _CAST, size=(m, 3)).astype(np.float32)
        y = pixels[None, :, None] - cy[:, None, None]
        x = pixels[None, None, :] - cx[:, None, None]
        coverage = np.empty((m, _SIZE, _SIZE), dtype=np.float32)
        for c in range(num_classes):
            i = lab == c
            shape, outline = SHAPES[c]
            d = _signed_distance(shape, x[i], y[i], radius[i][:, None, None])
            if outline:
                d = np.abs(d) - _OUTLINE
            coverage[i] = np.clip(0.5 - d, 0.0, 1.0)  # the share of each pixel inside: antialiased edges
        x_img = background[:, :, None, None] + contrast[:, None, None, None] * coverage[:, None]
        x_img += rng.standard_normal(size=x_img.shape, dtype=np.float32) * np.float32(noise)
        images[start : start + m] = np.clip(np.rint(x_img * 255), 0, 255).astype(np.uint8)
    return images, labels
