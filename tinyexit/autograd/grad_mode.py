"""Whether operations record a graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""

from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """Return True when new operations are recorded for differentiation."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(mode: bool):
    """Context manager that turns graph recording on or off, restoring it on exit."""
    previous = is_grad_enabled()
    _state.enabled = bool(mode)
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager in which operations record nothing (as ``torch.no_grad``)."""
    return set_grad_enabled(False)


def enable_grad():
    """Context manager in which operations record their graph again."""
    return set_grad_enabled(True)
