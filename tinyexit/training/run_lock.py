"""An exclusive lock on a run folder, so that two processes never write one run at the same time.

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic: exactly one process succeeds) that
names its owner's process id, host and command line. It is removed when the owner finishes,
normally or by an exception. A lock left by a process that was killed is recognised as stale when
its process id is no longer running on this host, and replaced.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".tinyexit.lock"
_UNWRITTEN_GRACE_S = 10.0  # a lock file this young may still be receiving its owner's details


class RunFolderInUseError(RuntimeError):
    """Another running process holds the lock on the run folder."""


class RunLock:
    """Context manager holding the lock of ``folder`` (created if missing).

    Entering it also checks that the folder can be written, before any work is done.

    Raises:
        RunFolderInUseError: another live process holds the lock; the message names it.
        OSError: the folder cannot be created or written; the message names it.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME

    def __enter__(self) -> RunLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while not self._try_create():
                owner = self._owner()
                if not _is_stale(owner, self.path):
                    raise RunFolderInUseError(_in_use_message(self.folder, self.path, owner))
                self.path.unlink(missing_ok=True)
        except OSError as e:
            raise type(e)(f"cannot write to the run folder {self.folder}: {e.strerror or e}") from None
        return self

    def __exit__(self, *exc) -> None:
        if (self._owner() or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        with os.fdopen(fd, "w") as f:
            json.dump(owner, f)
        return True

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None


def _is_stale(owner: dict | None, path: Path) -> bool:
    """Whether the lock's owner is gone: its process is not running (checked on this host only)."""
    if owner is None:  # unreadable: its owner is either writing it right now or died doing so
        try:
            return time.time() - path.stat().st_mtime > _UNWRITTEN_GRACE_S
        except FileNotFoundError:
            return True
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # running, as another user
        return False
    return False


def _in_use_message(folder: Path, path: Path, owner: dict | None) -> str:
    who = (
        f"process {owner.get('pid')} on {owner.get('host')} (started {owner.get('since')}: {owner.get('command')})"
        if owner
        else "another process"
    )
    return (
        f"{folder} is in use by {who}; wait for it to finish or choose another folder "
        f"(if that process no longer exists, delete {path})"
    )
