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
