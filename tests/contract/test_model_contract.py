"""The model contract against every installed model plugin (add a plugin, get these for free).

The tests live once, in :mod:`pcgen.testing.contract` (shipped with the core); ``pytest
--pcgen-model NAME`` runs them for one model from any folder.
"""

from pcgen.testing.contract import *  # noqa: F403 - the contract's tests, collected here
