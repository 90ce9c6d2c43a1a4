"""Where datasets live: the data root.

The root is chosen in this order, the first that is given wins:

1. the ``root`` argument of a loader,
2. the environment variable ``TINYEXIT_DATA``,
3. ``~/.tinyexit/data``.

A dataset's folder (for example ``cifar-10-batches-py``) is looked for inside the root; a root
that *is* that folder is accepted too, so pointing ``TINYEXIT_DATA`` at either works.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TINYEXIT_DATA"
DEFAULT_ROOT = Path("~/.tinyexit/data")

PathLike = str | os.PathLike


def data_root(root: PathLike | None = None) -> Path:
    """Return the data root that loaders use.

    Args:
        root: An explicit root; wins over the environment and the default.

    Returns:
        The root as an absolute path with ``~`` expanded. It need not exist.
    """
    return _root_and_origin(root)[0]


def _root_and_origin(root: PathLike | None) -> tuple[Path, str]:
    """Return the data root and a sentence saying where it came from."""
    env = os.environ.get(ENV_VAR)
    if root is not None:
        origin = "from the root argument"
        if env:
            origin += f" (it takes precedence over {ENV_VAR}={env})"
        return Path(root).expanduser().resolve(), origin
    if env:
        return Path(env).expanduser().resolve(), f"from {ENV_VAR}={env}"
    return (DEFAULT_ROOT.expanduser().resolve(), f"the default {DEFAULT_ROOT}, because {ENV_VAR} is not set")


def candidate_folders(root: Path, folder: str) -> list[Path]:
    """Return the paths where the dataset folder ``folder`` is looked for, in order."""
    candidates = [root / folder]
    if root.name == folder:
        candidates.insert(0, root)
    return candidates
