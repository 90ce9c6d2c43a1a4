"""Running a multi-exit model over a dataset: softmax outputs of every exit, in eval mode."""

from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..data import normalize
from ..models import as_batch
from ..ops import softmax


def predict_probs(
    model: nn.Module, images: np.ndarray, batch_size: int = 500, normalization: tuple | None = None
) -> np.ndarray:
    """Softmax outputs of every exit, shape (K, N, classes), float32.

    Args:
        model: a multi-exit model (forward returns K logits); it is put in eval mode and left so.
        images: uint8 (N, 3, H, W) images (normalised here with ``normalization`` = (mean, std)),
            or float arrays already prepared.
        batch_size: images per forward pass.
        normalization: (mean, std) per channel, for uint8 input.
    """
    if len(images) == 0:
        raise ValueError("predict_probs got no images")
    model.eval()
    chunks = []
    with no_grad():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size]
            if batch.dtype == np.uint8:
                batch = normalize(batch, *(normalization or (None, None)))
            logits = model(as_batch(model, batch)[0])
            chunks.append(np.stack([softmax(z, dim=1).numpy() for z in logits]))
    return np.concatenate(chunks, axis=1).astype(np.float32)
