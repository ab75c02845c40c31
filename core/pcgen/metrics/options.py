"""How an evaluation's settings become a metric's keywords: the ``options`` of the core's metric specs."""

from __future__ import annotations

from typing import Any


def bootstrap_options(config: Any, normalisation: Any = None) -> dict[str, Any]:
    """A bootstrapped W1: its error is the spread over ``eval.num_batches`` subsamples."""
    return {"num_batches": config.num_batches}


def physics_distance_options(config: Any, normalisation: Any = None) -> dict[str, Any]:
    """FPD / KPD: ``eval.protocol`` and its disjoint batch pairs; under pcgen's protocol the evaluation's
    fixed EFP normalisation, when there is one."""
    options: dict[str, Any] = {"protocol": config.protocol, "num_splits": config.num_splits}
    if config.protocol == "pcgen" and normalisation is not None:
        options["normalisation"] = normalisation
    return options
