"""The errors of unusable data files and data settings (re-exported by :mod:`pcgen.data.store`)."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or data setting is unusable; the message names the file and how to fix it."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file does not exist (both a :class:`DataError` and a ``FileNotFoundError``)."""


class NonFiniteDataError(DataError, FloatingPointError):
    """A data file holds NaN or infinite values (a :class:`DataError` and a ``FloatingPointError``, so
    the command line reports it with the exit status of non-finite values, 3)."""
