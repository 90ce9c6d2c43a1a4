"""Checkpoints that cannot run code: one NumPy ``.npz`` archive, arrays plus a JSON description.

A checkpoint holds nested dicts, lists and tuples of numbers, strings and arrays. Every array is a
member of the archive; everything else is one JSON document (member ``__checkpoint__``) in which
each array is replaced by a reference to its member. Loading uses ``np.load(allow_pickle=False)``
and ``json.loads``: neither can execute code, whatever the file contains. The zip container's
CRC-32 of every member makes a truncated or altered file fail to load with a clear error.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import nn
from ..backend import to_device

FORMAT = "tinyexit-checkpoint"
FORMAT_VERSION = 2
_META = "__checkpoint__"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A file given as a checkpoint is not one, is of another format version, or is damaged."""


def module_state(module: nn.Module) -> dict:
    """A module's state_dict as host NumPy arrays."""
    return {k: to_device(v.data, "cpu").copy() for k, v in module.state_dict().items()}


def atomic_write(path: str | Path, write: Callable) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    A crash or kill mid-write leaves the previous file intact; the temporary file (named
    ``<name>.<random>.tmp``) is removed on any error, and ``remove_stale_temporaries`` removes
    one left behind by a kill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_savez(path: str | Path, **arrays) -> Path:
    """``np.savez(path, **arrays)``, written atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def remove_stale_temporaries(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Delete ``<name>.<random>.tmp`` files that ``atomic_write`` left in ``folder`` when killed.

    Only call this while holding the folder's run lock: another process's temporary file is
    otherwise still being written.
    """
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f"{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically as a safe ``.npz`` checkpoint.

    Args:
        path: the file to write (conventionally ``checkpoint.npz``).
        state: nested dicts/lists/tuples of None, bool, int, float, str and NumPy arrays or scalars.

    Raises:
        TypeError: ``state`` holds another kind of object (it could not be stored without pickle).
    """
    arrays: dict[str, np.ndarray] = {}
    document = {"format": FORMAT, "version": FORMAT_VERSION, "state": _encode(state, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    return atomic_savez(path, **arrays)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by ``save_checkpoint``; nothing in the file can run code.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: (a ``ValueError``) the file is not a tinyexit checkpoint (a pickle, another ``.npz``), is of
            another format version, or is truncated or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP_MAGIC:
        kind = "a Python pickle" if head[:1] == b"\x80" else "not a NumPy .npz archive"
        raise CheckpointError(
            f"{path} is not a tinyexit checkpoint ({kind}); checkpoints are .npz archives, and "
            "pickles are never loaded because loading one can run arbitrary code"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META not in archive.files:
                raise CheckpointError(f"{path} is a .npz archive but not a tinyexit checkpoint (no {_META})")
            document = json.loads(archive[_META].tobytes().decode())
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a tinyexit checkpoint")
            if document.get("version") != FORMAT_VERSION:
                raise CheckpointError(
                    f"{path} is a tinyexit checkpoint of format version {document.get('version')}; "
                    f"this version of tinyexit reads version {FORMAT_VERSION}"
                )
            return _decode(document["state"], archive)
    except CheckpointError:
        raise
    except (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{path} is truncated or damaged and cannot be read ({type(e).__name__}: {e})"
        ) from None


def _encode(obj, arrays: dict):
    """JSON-able form of ``obj``; arrays go into ``arrays`` and are referred to by name."""
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject:
            raise TypeError("a checkpoint cannot hold arrays of Python objects")
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj)
        return {"__array__": name, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays) for v in obj]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, arrays) for k, v in obj.items()}
        return {"__items__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    raise TypeError(f"a checkpoint cannot hold a {type(obj).__name__}")


def _decode(obj, archive):
    """Inverse of ``_encode``, reading arrays from the open archive."""
    if isinstance(obj, list):
        return [_decode(v, archive) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        array = archive[obj["__array__"]]
        return array[()] if obj["scalar"] else array
    if "__tuple__" in obj:
        return tuple(_decode(v, archive) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, archive): _decode(v, archive) for k, v in obj["__items__"]}
    return {k: _decode(v, archive) for k, v in obj.items()}


def rng_state(generator: np.random.Generator) -> dict:
    return generator.bit_generator.state


def restore_rng(generator: np.random.Generator, state: dict) -> None:
    generator.bit_generator.state = state
