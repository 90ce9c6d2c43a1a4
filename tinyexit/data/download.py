"""Downloading an archive with MD5 verification, and extracting it safely.

Both steps are atomic: the download goes to a temporary file next to its destination and is
renamed only once its checksum is verified; the archive is extracted into a temporary folder next
to the destination and its top-level entries are renamed into place only when every member has
been extracted. An interrupted run therefore never leaves a half-written dataset that a later run
would mistake for a complete one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

from .errors import ChecksumError, UnsafeArchiveError

_CHUNK = 1 << 20


def md5sum(path: str | os.PathLike) -> str:
    """Return the hexadecimal MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and verify its MD5 checksum.

    Args:
        url: The address to fetch (with ``urllib``).
        dest: The file to create. Its folder is created if needed.
        md5: The expected hexadecimal MD5 digest.
        timeout: Seconds to wait for the server before giving up.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        OSError: The download failed (no network, HTTP error, disk full); ``urllib``'s own error.
        ChecksumError: The downloaded bytes do not have the expected checksum. Nothing is left
            at ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        print(f"tinyexit: downloading {url} to {dest}", file=sys.stderr)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ChecksumError(
                f"{url}: MD5 checksum mismatch (expected {md5}, got {digest.hexdigest()}); "
                "the download is incomplete or the file on the server changed"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def check_md5(path: str | os.PathLike, md5: str) -> None:
    """Raise ``ChecksumError`` naming ``path`` unless its MD5 digest is ``md5``."""
    actual = md5sum(path)
    if actual != md5:
        raise ChecksumError(f"{path}: MD5 checksum mismatch (expected {md5}, got {actual})")


def _checked_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Return the archive's members, refusing any that could escape the destination."""
    members = tar.getmembers()
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or ":" in member.name or "\\" in member.name:
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract member {member.name!r}: its path points "
                "outside the destination folder"
            )
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract member {member.name!r}: only regular files "
                "and folders are allowed (links and devices are not)"
            )
    return members


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract a tar archive into ``dest`` safely and atomically.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    links and device files are refused. The archive is unpacked into a temporary folder inside
    ``dest``, then each top-level entry is renamed into ``dest``; an entry that already exists
    there is left as it is.

    Args:
        archive: A tar file, optionally gzip/bz2/xz compressed.
        dest: The folder to extract into; created if needed.

    Returns:
        The top-level paths in ``dest`` that the archive provides.

    Raises:
        UnsafeArchiveError: A member would be written outside ``dest`` or is not a plain file
            or folder.
        tarfile.TarError: The archive cannot be read.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = _checked_members(tar, archive)
        tops = sorted({PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts})
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, members=members, filter="data")
            else:
                tar.extractall(tmp, members=members)
            for top in tops:
                if not (dest / top).exists():
                    os.replace(tmp / top, dest / top)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [dest / top for top in tops]
