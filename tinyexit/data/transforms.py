"""Normalisation and augmentation on whole batches of NCHW images.

The augmentation of the CIFAR recipes, random crop 32 with zero padding 4 and horizontal flip
with probability 0.5, is applied to a batch at once: the random choices are drawn as arrays
(``sample_crop_flip``) and then applied with one gather (``crop_flip``), no per-image Python
loop. As in torchvision, where ``RandomCrop`` comes before ``Normalize``, the padding is zero in
pixel space (black), which is ``-mean / std`` after normalisation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def _scale(images: np.ndarray) -> float:
    """uint8 images are in [0, 255]; anything else is taken to be in [0, 1] already."""
    return 255.0 if images.dtype == np.uint8 else 1.0


def compute_mean_std(images: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of NCHW images in [0, 1] units.

    Args:
        images: ``(N, C, H, W)``; uint8 is divided by 255.
        chunk: Images per chunk, to bound the float64 temporaries.

    Returns:
        ``(mean, std)``, tuples of ``C`` floats, ready for ``normalize``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be NCHW, got shape {images.shape}")
    total = np.zeros(images.shape[1])
    total_sq = np.zeros(images.shape[1])
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].astype(np.float64)
        total += block.sum(axis=(0, 2, 3))
        total_sq += np.square(block).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    scale = _scale(images)
    return tuple((mean / scale).tolist()), tuple((std / scale).tolist())


def normalize(images: np.ndarray, mean=None, std=None) -> np.ndarray:
    """Return float32 ``(x / 255 - mean) / std`` per channel (``x / 255`` alone without stats).

    Args:
        images: ``(N, C, H, W)``; uint8 is divided by 255, other dtypes are taken as [0, 1].
        mean: ``C`` channel means in [0, 1] units, or None.
        std: ``C`` channel standard deviations, or None (then ``mean`` must be None too).

    Returns:
        A new float32 array of the same shape.
    """
    out = images.astype(np.float32)
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is None:
        if _scale(images) != 1.0:
            out *= np.float32(1.0 / _scale(images))
        return out
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != (images.shape[1],) or std.shape != (images.shape[1],):
        raise ValueError(f"mean and std need {images.shape[1]} values each, got {mean.shape} and {std.shape}")
    shape = (1, -1) + (1,) * (images.ndim - 2)
    out *= (1.0 / (_scale(images) * std)).astype(np.float32).reshape(shape)
    out += (-mean / std).astype(np.float32).reshape(shape)
    return out


def sample_crop_flip(
    n: int, rng: np.random.Generator, padding: int = 4, flip_p: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the random choices of ``random_crop_flip`` for ``n`` images.

    Returns:
        ``(dy, dx, flip)``: crop offsets into the padded image, each in ``[0, 2 * padding]``
        (int64, ``(n,)``), and a boolean ``(n,)`` mask of the images to flip.
    """
    offsets = rng.integers(0, 2 * padding + 1, size=(2, n))
    flip = rng.random(n) < flip_p
    return offsets[0], offsets[1], flip


def crop_flip(
    images: np.ndarray, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray, padding: int = 4
) -> np.ndarray:
    """Zero-pad, crop back to the original size at the given offsets, then flip the chosen images.

    Image ``i`` of the result is ``padded[i, :, dy[i]:dy[i]+H, dx[i]:dx[i]+W]``, mirrored left to
    right where ``flip[i]``; ``dy = dx = padding`` with no flip is the identity.

    Args:
        images: ``(N, C, H, W)`` of any dtype.
        dy, dx: Offsets in ``[0, 2 * padding]``, shape ``(N,)``.
        flip: Boolean mask, shape ``(N,)``.
        padding: Zeros added on each side before cropping.

    Returns:
        A new array of the same shape and dtype.
    """
    n, c, h, w = images.shape
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=images.dtype)
    padded[:, :, padding : padding + h, padding : padding + w] = images
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))
    out = windows[np.arange(n), :, dy, dx]
    out[flip] = out[flip, :, :, ::-1]
    return out


def random_crop_flip(
    images: np.ndarray, rng: np.random.Generator, padding: int = 4, flip_p: float = 0.5
) -> np.ndarray:
    """Random crop with zero padding and random horizontal flip of a whole batch.

    Args:
        images: ``(N, C, H, W)`` of any dtype (uint8 before normalisation is cheapest).
        rng: The generator the choices are drawn from.
        padding: Zeros added on each side before cropping back to ``H x W``.
        flip_p: Probability of flipping each image.

    Returns:
        A new array of the same shape and dtype.
    """
    dy, dx, flip = sample_crop_flip(images.shape[0], rng, padding, flip_p)
    return crop_flip(images, dy, dx, flip, padding)
