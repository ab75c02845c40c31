"""Checks of the clouds handed to an evaluation, made before any metric is computed: the files
hold the same kind of clouds with the same features, enough of them for the metrics, all finite."""

from __future__ import annotations

from collections.abc import Mapping

from pcgen.data.pointclouds import JET_FEATURES, SHOWER_FEATURES, PointClouds
from pcgen.train.nonfinite import check_finite_clouds

NEEDED_FEATURES = {"jets": JET_FEATURES, "showers": SHOWER_FEATURES}
"""The leading per-particle features the metrics of each kind of data read."""


def check_evaluation_inputs(clouds: Mapping[str, PointClouds]) -> None:
    """Raise ``ValueError`` naming the file when the clouds (by file name) cannot be compared, and
    :class:`~pcgen.train.nonfinite.NonFiniteError` when one holds NaN or infinite values."""
    (first_name, first), *others = clouds.items()
    for name, pc in clouds.items():
        needed = NEEDED_FEATURES.get(pc.kind)
        if needed is not None and tuple(pc.feature_names[: len(needed)]) != needed:
            raise ValueError(
                f"{name} holds {pc.kind} with {pc.points.shape[2]} features ({', '.join(pc.feature_names)}); "
                f"the {pc.kind} metrics need ({', '.join(needed)}) first"
            )
    for name, pc in others:
        if pc.kind != first.kind:
            raise ValueError(f"{name} holds {pc.kind} but {first_name} holds {first.kind}; compare like with like")
        if tuple(pc.feature_names) != tuple(first.feature_names):
            raise ValueError(
                f"{name} has {len(pc.feature_names)} features ({', '.join(pc.feature_names)}) but {first_name} has "
                f"{len(first.feature_names)} ({', '.join(first.feature_names)}); both files need the same features"
            )
    for name, pc in clouds.items():
        if len(pc) == 0:
            raise ValueError(f"{name} holds no clouds")
        check_finite_clouds(pc.points, pc.mask, name, "regenerate it from a model whose training did not diverge")
