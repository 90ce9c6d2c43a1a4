"""What the checks share: the error a wrong answer raises, and comparisons that say what differs."""

from __future__ import annotations

import numpy as np


class WrongAnswer(Exception):
    """An answer ran but gave a wrong result; the message is shown to the student."""


def expect(condition: bool, message: str) -> None:
    """Raise ``WrongAnswer(message)`` unless ``condition`` holds."""
    if not condition:
        raise WrongAnswer(message)


def expect_close(got, want, what: str, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    """Raise ``WrongAnswer`` naming ``what`` unless ``got`` has ``want``'s shape and values."""
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    want = np.asarray(want)
    expect(got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}")
    wrong = ~np.isclose(got, want, rtol=rtol, atol=atol)
    if wrong.any():
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise WrongAnswer(
            f"{what}: {int(wrong.sum())} wrong values; at index {first} got {got[first].item()!r}, "
            f"expected {want[first].item()!r}"
        )
