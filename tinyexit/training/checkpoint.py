"""Checkpoints: one pickle holding everything needed to resume a run, written atomically."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from .. import nn
from ..backend import to_device

FORMAT_VERSION = 1


def module_state(module: nn.Module) -> dict:
    """A module's state_dict as host NumPy arrays."""
    return {k: to_device(v.data, "cpu").copy() for k, v in module.state_dict().items()}


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"format": FORMAT_VERSION, **state}, f, protocol=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by ``save_checkpoint``, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as e:
        raise ValueError(f"{path} is not a readable tinyexit checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a tinyexit checkpoint of format {FORMAT_VERSION}")
    return state


def rng_state(generator: np.random.Generator) -> dict:
    return generator.bit_generator.state


def restore_rng(generator: np.random.Generator, state: dict) -> None:
    generator.bit_generator.state = state
