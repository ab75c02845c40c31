"""The command line in its own words: option ranges taken from the config fields they fill, so a
bad value is reported by flag name with its allowed range (``--jets``: "x>=20"), not as a config
class's validation dump."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel


def field_range(model: type[BaseModel], name: str) -> dict[str, Any]:
    """``typer.Option`` keywords (``min``, ``max``) for an integer option that fills ``model.name``."""
    bounds: dict[str, Any] = {}
    for rule in model.model_fields[name].metadata:  # pydantic keeps ge/gt/le/lt as annotated-types objects
        if getattr(rule, "ge", None) is not None:
            bounds["min"] = rule.ge
        elif getattr(rule, "gt", None) is not None:
            bounds["min"] = math.floor(rule.gt) + 1
        elif getattr(rule, "le", None) is not None:
            bounds["max"] = rule.le
        elif getattr(rule, "lt", None) is not None:
            bounds["max"] = math.ceil(rule.lt) - 1
    return bounds


def whole_number(minimum: int) -> Any:
    """A ``typer.Option`` parser of a count that also takes scientific notation (``--n 1e5``), refusing
    fractions and numbers below ``minimum`` in the words of the other range checks."""
    import typer

    def parse(value: str | int) -> int:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise typer.BadParameter(f"{text!r} is not a number") from None
            if not as_float.is_integer():
                raise typer.BadParameter(f"{text!r} is not a whole number") from None
            number = int(as_float)
        if number < minimum:
            raise typer.BadParameter(f"Input should be greater than or equal to {minimum}")
        return number

    return parse
