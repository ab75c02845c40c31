"""\"Did you mean\" hints for mistyped names (plugins, data sets, config keys)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" Did you mean 'igapt'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
