"""Readable numbers for metric tables, whatever their size: fixed notation in a normal range,
scientific notation past it, and ``nan`` explained."""

from __future__ import annotations

import math

SCIENTIFIC_ABOVE = 1e5
"""Magnitudes from here up are written in scientific notation."""
SCIENTIFIC_BELOW = 1e-3
"""Non-zero magnitudes below this are written in scientific notation."""
NAN_NOTE = "nan: not computable from these clouds (too few clouds for an error, or non-finite values)"
"""Printed under a table that holds a ``nan``."""


def _scientific(x: float) -> bool:
    return x != 0 and not SCIENTIFIC_BELOW <= abs(x) < SCIENTIFIC_ABOVE


def format_number(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits: ``"1234"``, ``"0.0123"``, ``"1.23e+59"``, ``"nan"``."""
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if _scientific(x):
        return f"{x:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def format_entry(value: float, error: float) -> str:
    """``"0.76 ± 0.07"``: the error to one significant digit (two if it starts with 1), the value to the
    same decimal place; past the normal range both in scientific notation (``"1.23e+59 ± 4e+57"``)."""
    if not math.isfinite(value):
        return format_number(value)
    if not math.isfinite(error):
        return f"{format_number(value)} ± nan"
    if error <= 0:
        return f"{format_number(value)} ± 0"
    if _scientific(max(abs(value), error)) or (value != 0 and error < SCIENTIFIC_BELOW * abs(value)):
        return f"{format_number(value)} ± {error:.0e}"
    exponent = math.floor(math.log10(error))
    leading = int(error / 10**exponent + 1e-9)
    decimals = min(max(0, -exponent + (1 if leading == 1 else 0)), 8)
    return f"{value:.{decimals}f} ± {error:.{decimals}f}"
