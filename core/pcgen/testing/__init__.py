"""Testing helpers for plugin authors, shipped with the core (part of the public API).

- The model contract as a pytest plugin: ``pytest --pcgen-model NAME`` (see
  :mod:`pcgen.testing.pytest_plugin` and :mod:`pcgen.testing.contract`), or ``pcgen check NAME``.
- :func:`toy_jets` and :class:`ToyDataPlugin`: small synthetic jets and the data set ``toy``.
- :func:`quick_overrides`: ``--set`` strings for a short, deterministic CPU run on the toy jets.
"""

from pcgen.testing.toydata import ToyDataPlugin, quick_overrides, toy_jets

__all__ = ["ToyDataPlugin", "quick_overrides", "toy_jets"]
