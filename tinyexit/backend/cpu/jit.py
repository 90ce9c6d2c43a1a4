"""``njit`` with Numba's on-disk cache when a cache folder can be written, else plain compilation.

Numba stores compiled kernels next to the source (``__pycache__``) or in ``NUMBA_CACHE_DIR`` or the
user's cache folder. On a read-only installation with a read-only home none of these can be
written, and ``numba.njit(cache=True)`` raises at import. The kernels are then compiled in memory
on first use, as without ``cache=True``: correct, only slower to start each time.
"""

from __future__ import annotations

import warnings

import numba

_warned = False


def njit(*args, **options):
    """``numba.njit`` with ``cache=True`` by default, falling back to no cache with one warning."""
    options.setdefault("cache", True)

    def decorate(function):
        global _warned
        try:
            return numba.njit(**options)(function)
        except RuntimeError as e:
            if not options["cache"] or "cannot cache" not in str(e):
                raise
        if not _warned:
            _warned = True
            warnings.warn(
                "tinyexit: no writable Numba cache folder (set NUMBA_CACHE_DIR to a writable one to keep "
                "compiled kernels); compiling kernels without a cache",
                RuntimeWarning,
                stacklevel=2,
            )
        return numba.njit(**{**options, "cache": False})(function)

    return decorate(args[0]) if args and callable(args[0]) else decorate
