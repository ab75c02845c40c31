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
    ModelConfig,
    NoiseDrivenGenerator,
    ObjectiveModel,
    StagedModel,
)
from pcgen.specs import (  # noqa: E402
    ANY_CONDITION,
    ConditionSpec,
    DataInfo,
    DatasetSpec,
    KindSpec,
    MetricSpec,
    ModelSpec,
    PretrainedWeights,
    RecipeSpec,
    StageSpec,
)

__version__ = "0.1.0"

__all__ = [
    "ANY_CONDITION",
    "CONTRACT_VERSION",
    "IGNORE",
    "AdversarialModel",
    "AutoregressiveModel",
    "Batch",
    "ConditionSpec",
    "DataInfo",
    "DatasetSpec",
    "GenerativeModel",
    "KindSpec",
    "LikelihoodModel",
    "MetricSpec",
    "ModelConfig",
    "ModelSpec",
    "NoiseDrivenGenerator",
    "PretrainedWeights",
    "ObjectiveModel",
    "PointClouds",
    "RecipeSpec",
    "StageSpec",
    "StagedModel",
    "__version__",
    "hookimpl",
]
