"""Exceptions raised by the data package.

They subclass the built-in exceptions a caller would already catch (``FileNotFoundError``,
``ValueError``), and their messages are meant to be read by a person: they name the file, the
problem, and how to fix it.
"""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk and could not be downloaded (or downloading was disabled)."""


class CorruptDatasetError(ValueError):
    """A dataset file exists but cannot be read, or its contents are not what the format says."""


class ChecksumError(ValueError):
    """A downloaded or local archive does not have the expected MD5 checksum."""


class UnsafeArchiveError(ValueError):
    """An archive contains a member that would be written outside the destination folder."""
