"""``BatchIterator``: a minimal, deterministic, resumable stand-in for ``torch.utils.data.DataLoader``.

Every random choice is drawn from a generator seeded by ``(seed, epoch)`` (the shuffle) or
``(seed, epoch, batch)`` (the augmentation of that batch). The whole random state is therefore
the position ``(epoch, batch)``: ``state_dict()`` saves it, ``load_state_dict()`` restores it, and
iteration continues with exactly the batches an uninterrupted run would have produced.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from .transforms import normalize as _normalize
from .transforms import random_crop_flip


class BatchIterator:
    """Iterate over ``(images, labels)`` in batches, one epoch per ``iter()``.

    Args:
        images: ``(N, C, H, W)`` array, uint8 in [0, 255] or float in [0, 1]; not copied.
        labels: ``(N,)`` integer labels.
        batch_size: Samples per batch.
        shuffle: Draw a new permutation every epoch (deterministic given ``seed`` and epoch).
        augment: Apply random crop (zero padding 4) and horizontal flip (p = 0.5).
        normalize: ``(mean, std)`` per channel in [0, 1] units, or None for ``x / 255`` only.
        drop_last: Drop the last batch if it is smaller than ``batch_size``.
        seed: Seed of the shuffles and augmentations.

    Yields:
        ``(x, y)``: float32 ``(B, C, H, W)`` and int64 ``(B,)``.

    Unlike a ``DataLoader``, an iterator abandoned in the middle of an epoch does not restart
    it: the next ``iter()`` continues at the next batch of the same epoch. The attribute
    ``epoch`` tells which epoch the next batch belongs to.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        augment: bool = False,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        labels = np.asarray(labels)
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"need images (N, C, H, W) and labels (N,), got {images.shape} and {labels.shape}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.normalize = normalize
        self.drop_last = drop_last
        self.seed = int(seed)
        self.epoch = 0
        self.batch = 0

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _order(self) -> np.ndarray:
        n = self.images.shape[0]
        return self._rng(self.epoch).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        num_batches = len(self)
        if self.batch >= num_batches:
            self.epoch, self.batch = self.epoch + 1, 0
        order = self._order()
        while self.batch < num_batches:
            b = self.batch
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = random_crop_flip(x, self._rng(self.epoch, b + 1))
            x = _normalize(x, *self.normalize) if self.normalize is not None else _normalize(x)
            y = self.labels[idx]
            if b + 1 == num_batches:
                self.epoch, self.batch = self.epoch + 1, 0
            else:
                self.batch = b + 1
            yield x, y
            if self.batch == 0:
                return

    def state_dict(self) -> dict[str, int]:
        """Return the position of the next batch (plain ints; JSON-serialisable)."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a position saved by ``state_dict``."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])
