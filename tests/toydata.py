"""The toy jets of the tests live in :mod:`pcgen.testing` (shipped with the core); re-exported here."""

from pcgen.testing import toy_jets

__all__ = ["toy_jets"]
