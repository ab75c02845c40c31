"""pcgen: a zoo of generative models for particle point clouds.

The public API a plugin may import lives here; everything else is internal to the core.
"""

from pcgen.data.pointclouds import PointClouds
from pcgen.hookspecs import CONTRACT_VERSION, hookimpl
from pcgen.models import AdversarialModel, GenerativeModel
from pcgen.specs import DataInfo, DatasetSpec, MetricSpec, ModelSpec, RecipeSpec, StageSpec
from pcgen.train.autoregressive import IGNORE, AutoregressiveModel
from pcgen.train.likelihood import LikelihoodModel
from pcgen.train.objective import ObjectiveModel
from pcgen.train.recipe import Batch
from pcgen.train.staged import StagedModel

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
    "ObjectiveModel",
    "PointClouds",
    "RecipeSpec",
    "StageSpec",
    "StagedModel",
    "__version__",
    "hookimpl",
]
