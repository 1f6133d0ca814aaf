"""Errors that name the problem and the fix."""

from __future__ import annotations


class DataError(ValueError):
    """Input data is malformed: a missing column, NaN ids, an empty frame, an unknown id..."""


class DataNotFoundError(FileNotFoundError):
    """A data set file is neither in the local-data directory, the cache, nor downloadable."""


class ChecksumError(DataError):
    """A file's sha256 (or size / row count) does not match the registry."""
