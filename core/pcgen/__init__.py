"""pcgen: a zoo of generative models for particle point clouds.

The public plugin API is what ``pcgen``, :mod:`pcgen.nn` and :mod:`pcgen.testing` export (their
``__all__``); it is versioned by :data:`CONTRACT_VERSION`. Everything else in the core is internal
and may change without notice.
"""

from pcgen.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch loads OpenMP: waiting threads sleep instead of spinning (pcgen.threads)

from pcgen.data.pointclouds import PointClouds  # noqa: E402
from pcgen.hookspecs import CONTRACT_VERSION, hookimpl  # noqa: E402
from pcgen.models import (  # noqa: E402
    IGNORE,
    AdversarialModel,
    AutoregressiveModel,
    Batch,
    GenerativeModel,
    LikelihoodModel,
    ObjectiveModel,
    StagedModel,
)
from pcgen.specs import DataInfo, DatasetSpec, MetricSpec, ModelSpec, PretrainedWeights, RecipeSpec, StageSpec  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "IGNORE",
    "AdversarialModel",
    "AutoregressiveModel",
    "Batch",
    "DataInfo",
    "DatasetSpec",
    "GenerativeModel",
    "LikelihoodModel",
    "MetricSpec",
    "ModelSpec",
    "PretrainedWeights",
    "ObjectiveModel",
    "PointClouds",
    "RecipeSpec",
    "StageSpec",
    "StagedModel",
    "__version__",
    "hookimpl",
]
