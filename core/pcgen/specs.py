"""Typed descriptions of what plugins register: models, data sets, metrics, training recipes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from pcgen.data.pointclouds import PointClouds
    from pcgen.models import GenerativeModel


@dataclass(frozen=True)
class DataInfo:
    """The shape of the data a model is built for."""

    max_particles: int
    """Padded length N of every point cloud."""
    feature_names: tuple[str, ...]
    """Per-particle features, e.g. ``("eta_rel", "phi_rel", "pt_rel")``."""
    cond_dim: int = 1
    """Width of the per-cloud condition vector (the multiplicity n / N)."""
    kind: str = "jets"
    """What the clouds are: ``"jets"`` (eta_rel, phi_rel, pt_rel) or ``"showers"`` (x, y, z, E hits)."""

    @property
    def num_features(self) -> int:
        return len(self.feature_names)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a model trained in stages (recipe ``"staged"``), e.g. a flow's likelihood stage.

    The stage trains the part of the model that ``model.part(name)`` returns, with the registered
    recipe ``recipe``; its settings are the ``[recipe.<name>]`` table of the run configuration.
    """

    name: str
    """Stage name: the key of its config table and of the model part it trains (e.g. ``"flow"``)."""
    recipe: str
    """Registered recipe that drives this stage (e.g. ``"likelihood"``, ``"adversarial"``)."""
    fraction: float
    """Default share of the run's steps spent in this stage (the shares of all stages sum to 1)."""
    description: str = ""


@dataclass(frozen=True)
class PretrainedWeights:
    """Trained weights a plugin ships or points to (timm's pretrained config is the model).

    ``location`` is a path inside an installed package (``"package:pcgen_epic_fm/weights/x.safetensors"``),
    a file path, or an ``https://`` URL (downloaded once into the cache). The model card, a JSON file
    with the same stem beside the weights (or at ``card_location``), records the config, the data
    recipe and fingerprint, the hardware, the training time and the metrics with their truth row.
    """

    name: str
    """Name used on the command line (``pcgen sample --pretrained NAME``), e.g. ``"epic-fm-top30"``."""
    location: str
    sha256: str
    """Checksum of the weights file; a file that does not match is refused."""
    description: str = ""
    card_location: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A generative model a plugin offers."""

    name: str
    """Unique name used on the command line (``pcgen run --plugin NAME``)."""
    config_class: type[BaseModel]
    """Pydantic model of the architecture's settings, with the paper's defaults."""
    build: Callable[[Any, DataInfo], GenerativeModel]
    """Factory: (validated config, data shape) -> model."""
    recipe: str = "adversarial"
    """Name of the training recipe that trains this model."""
    recipe_defaults: dict[str, Any] = field(default_factory=dict)
    """The paper's optimisation settings, overriding the recipe's generic defaults (nested tables
    are merged key by key, e.g. one sub-table per stage of a staged recipe)."""
    stages: tuple[StageSpec, ...] = ()
    """For ``recipe="staged"``: the stages, in training order, each with its recipe and share of the run."""
    train_defaults: dict[str, Any] = field(default_factory=dict)
    """Overrides of the core's generic training defaults (batch size, ...)."""
    quick_config: dict[str, Any] = field(default_factory=dict)
    """Model settings of a small, fast variant of the architecture, for CPU smoke tests and CI."""
    quick_recipe: dict[str, Any] = field(default_factory=dict)
    """Recipe settings for the contract's short training test only (:mod:`pcgen.testing`), over
    :attr:`recipe_defaults`: e.g. a learning rate that moves the quick variant within a few hundred
    CPU steps where the paper's suits a long GPU run. Nested tables for staged recipes."""
    multiplicity: str = "empirical"
    """How generation draws multiplicities from the training set: ``"empirical"`` or ``"kde"``."""
    preprocessing: str = "minmax"
    """Particle feature scaling the model expects: ``"minmax"`` (to [-1, 1]) or ``"standard"``."""
    log_features: tuple[str, ...] = ()
    """Features taken as a logarithm before scaling, where the data has them (e.g. ``("pt_rel", "E")``)."""
    feature_spread: float = 1.0
    """Standard deviation (standard scaling) or half-range (minmax) of the scaled features."""
    paper: str = ""
    """Citation: authors, title, arXiv id."""
    description: str = ""
    permutation_equivariant: bool = True
    """Whether permuting the input noise's particles permutes the output (checked by contract tests)."""
    critic_permutation_invariant: bool = True
    """Whether the critic's score ignores particle order (checked by contract tests)."""
    pretrained: tuple[PretrainedWeights, ...] = ()
    """Trained weights of this model that ``pcgen sample --pretrained`` can load (see :mod:`pcgen.pretrained`)."""


@dataclass(frozen=True)
class DatasetSpec:
    """A data source: ``load(config, progress)`` returns the whole data set as point clouds."""

    name: str
    load: Callable[..., PointClouds]
    description: str = ""
    kind: str = "jets"
    """``"jets"`` or ``"showers"``: which metrics and plots apply."""
    config_defaults: dict[str, Any] = field(default_factory=dict)
    """Run settings this data set needs, under the user's (e.g. ``{"data": {"num_particles": 1700}}``
    for showers); tables ``data``, ``train`` and ``eval``."""


@dataclass(frozen=True)
class MetricSpec:
    """An evaluation metric: ``factory(**options)`` returns a torchmetrics ``Metric``.

    The metric is updated with ``update(real, real_mask, fake, fake_mask)`` in physical units and
    its ``compute()`` returns ``(value, error)``.
    """

    name: str
    factory: Callable[..., Any]
    kind: str = "jets"
    description: str = ""
    scale: float = 1.0
    """Factor the value is multiplied by for tables (e.g. 1e3 for W1 in units of 1e-3)."""
    during_training: bool = False
    """Cheap enough to be computed at every in-training evaluation (when ``eval.during_training`` is unset)."""
    label: str = ""
    """Column title in tables (default: the upper-cased name)."""


@dataclass(frozen=True)
class RecipeSpec:
    """A training recipe: how the core optimises a model (adversarial, likelihood, ...)."""

    name: str
    recipe_class: type
    """Subclass of :class:`pcgen.train.recipe.Recipe`."""
    config_class: type[BaseModel]
    description: str = ""
    configure: Callable[[ModelSpec, Any], type[BaseModel]] | None = None
    """Optional factory ``(model spec, registry) -> config class`` for recipes whose settings depend
    on the model (e.g. one sub-table per stage); None: :attr:`config_class` serves every model."""

    def config_class_for(self, model: ModelSpec, registry: Any) -> type[BaseModel]:
        """The class that validates the ``[recipe]`` table of a run training ``model``."""
        return self.configure(model, registry) if self.configure is not None else self.config_class
