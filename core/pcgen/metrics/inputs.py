"""Checks of the clouds handed to an evaluation, made before any metric is computed: the files
hold the same kind of clouds with the same features, enough of them for the metrics, all finite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pcgen.data.pointclouds import PointClouds
from pcgen.specs import KindSpec
from pcgen.runtime.nonfinite import check_finite_clouds


def check_evaluation_inputs(clouds: Mapping[str, PointClouds], registry: Any) -> KindSpec:
    """The kind of the clouds (by file name) to compare; raises ``ValueError`` naming the file when they
    cannot be compared, and :class:`~pcgen.runtime.nonfinite.NonFiniteError` when one holds NaN or
    infinite values."""
    kinds = {}
    for name, pc in clouds.items():
        try:
            kind = kinds[name] = registry.kind_of(pc)
        except Exception as err:  # noqa: BLE001 - an unknown kind is reported against its file
            raise ValueError(f"{name}: {err}") from None
        needed = kind.feature_names
        if tuple(pc.feature_names[: len(needed)]) != needed:
            raise ValueError(
                f"{name} holds {kind.noun} with {pc.points.shape[2]} features ({', '.join(pc.feature_names)}); "
                f"the {kind.noun} metrics need ({', '.join(needed)}) first"
            )
    (first_name, first), *others = clouds.items()
    for name, pc in others:
        if kinds[name] is not kinds[first_name]:
            raise ValueError(f"{name} holds {kinds[name].noun} but {first_name} holds {kinds[first_name].noun}; "
                             "compare like with like")
        if tuple(pc.feature_names) != tuple(first.feature_names):
            raise ValueError(
                f"{name} has {len(pc.feature_names)} features ({', '.join(pc.feature_names)}) but {first_name} has "
                f"{len(first.feature_names)} ({', '.join(first.feature_names)}); both files need the same features"
            )
    for name, pc in clouds.items():
        if len(pc) == 0:
            raise ValueError(f"{name} holds no clouds")
        check_finite_clouds(pc.points, pc.mask, name, "regenerate it from a model whose training did not diverge")
    return kinds[first_name]
