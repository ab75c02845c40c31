"""Typed descriptions of what plugins register: models, data sets, metrics, training recipes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from pcgen.data.observables import Profile
    from pcgen.data.pointclouds import PointClouds
    from pcgen.models import GenerativeModel


ANY_CONDITION = "*"
"""``ModelSpec.conditions`` entry of a model whose networks take any conditions (sized by ``cond_dim``)."""


@dataclass(frozen=True)
class DataInfo:
    """The shape of the data a model is built for."""

    max_particles: int
    """Padded length N of every point cloud."""
    feature_names: tuple[str, ...]
    """Per-particle features, e.g. ``("eta_rel", "phi_rel", "pt_rel")``."""
    cond_dim: int = 1
    """Width of the per-cloud condition vector: the multiplicity n / N, then one column per condition."""
    kind: str = "jets"
    """The registered :class:`KindSpec` the clouds are (``"jets"``, ``"showers"``, a plugin's kind)."""
    condition_names: tuple[str, ...] = ()
    """The kind's conditions the model is trained on, in the order of ``cond[:, 1:]`` (preprocessed)."""

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
    conditions: tuple[str, ...] = ()
    """Conditions (names of a kind's :class:`ConditionSpec`) the model can be trained on with
    ``data.conditions``, beyond the multiplicity every model receives: they arrive preprocessed as
    ``cond[:, 1:]``. ``("*",)`` (:data:`ANY_CONDITION`): any number of any kind's conditions (networks
    sized by ``DataInfo.cond_dim``); ``()``: unconditional only."""


@dataclass(frozen=True)
class DatasetSpec:
    """A data source: ``load(config, progress)`` returns the whole data set as point clouds."""

    name: str
    load: Callable[..., PointClouds]
    description: str = ""
    kind: str = "jets"
    """The registered kind of its clouds (which metrics, plots and data settings apply); ``""`` when
    only the data decide (a file's own ``meta["kind"]`` or its features)."""
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
    """The registered kind of clouds the metric compares."""
    description: str = ""
    scale: float = 1.0
    """Factor the value is multiplied by for tables (e.g. 1e3 for W1 in units of 1e-3)."""
    during_training: bool = False
    """Cheap enough to be computed at every in-training evaluation (when ``eval.during_training`` is unset)."""
    label: str = ""
    """Column title in tables (default: the upper-cased name)."""
    options: Callable[[Any, Any], dict[str, Any]] | None = None
    """``options(eval_config, efp_normalisation)`` -> keywords of ``factory`` for an evaluation (bootstrap
    batches, a protocol); None: the factory's defaults."""
    uses_efps: bool = False
    """Computed on EFPs: skipped with ``eval.efp = false``; its table records the FPD/KPD protocol."""
    needs_normalisation: bool = False
    """Takes the evaluation's fixed EFP normalisation (``normalisation=``) under pcgen's protocol."""
    jetnet_scale: float | None = None
    """Display scale under jetnet's protocol, where it differs from :attr:`scale` (KPD: 1e6)."""


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


@dataclass(frozen=True)
class ConditionSpec:
    """A per-cloud quantity a kind of clouds can be conditioned on (a jet's pT, a shower's incident energy).

    ``values(clouds)`` returns it for every cloud in ``unit`` (NaN where the clouds do not know it).
    A multiplicity condition is the clouds' number of points: it is always given, through the mask.
    """

    name: str
    """Name on the command line and in configs (``--condition incident_energy=50GeV``)."""
    unit: str
    """Unit of ``values`` ("GeV", "MeV", "" for a count); the command line converts other energy units."""
    values: Callable[[PointClouds], np.ndarray]
    description: str = ""
    log: bool = False
    """Preprocess as ``log(value)`` before standardising (energies spanning decades)."""
    multiplicity: bool = False
    """The number of points per cloud (given by the mask, never part of ``cond[:, 1:]``)."""


@dataclass(frozen=True)
class KindSpec:
    """A kind of point cloud (jets, calorimeter showers, ...): what its points are and how it is evaluated.

    The core asks the kind, never a kind's name, for everything that differs between kinds: the
    per-point features its metrics read, how clouds are sorted, their per-cloud observables and
    profiles, the distribution figure, the quantities recorded with generated clouds, the conditions,
    and the ``[data]`` settings its data sets take.
    """

    name: str
    """Registered name (``DatasetSpec.kind``, ``MetricSpec.kind``, files' ``meta["kind"]``)."""
    noun: str
    """What one counts ("jets", "showers"): table headers and messages."""
    feature_names: tuple[str, ...]
    """The leading per-point features every cloud of this kind has (its metrics and figures read them);
    a file that does not declare its kind is recognised by them."""
    observables: Callable[[PointClouds], dict[str, np.ndarray]]
    """One value per cloud for each observable (TensorBoard histograms)."""
    figure: Callable[[PointClouds, dict[str, PointClouds], int], Figure]
    """``figure(real, {name: generated}, bins)``: the distribution figure of real and generated clouds."""
    generated_globals: Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], tuple[np.ndarray, tuple[str, ...]]]
    """``(points, mask, conditions)`` of generated clouds -> per-cloud quantities and their names (a
    condition given to the model is recorded under its name)."""
    description: str = ""
    sort_feature: str | None = None
    """The feature clouds are sorted by, highest first; None: kept in order."""
    conditions: tuple[ConditionSpec, ...] = ()
    data_config: type[BaseModel] | None = None
    """The ``[data]`` settings of this kind's data sets: a subclass of :class:`pcgen.config.DataConfig`
    (None: the generic one)."""
    profiles: Callable[[PointClouds, PointClouds], dict[str, Profile]] | None = None
    """``profiles(clouds, reference)``: weighted histograms binned as ``reference`` is (e.g. the energy
    per calorimeter layer); None: the kind has none."""
    reports: Callable[[PointClouds, PointClouds], dict[str, Any]] | None = None
    """``reports(real, generated)`` -> extra results of an evaluation: ``{"tables": {name: markdown},
    "json": {name: data}, "figures": {name: Figure}}`` (e.g. showers per incident-energy bin); None: none."""

    def condition(self, name: str) -> ConditionSpec:
        """The condition called ``name``, or a ``ValueError`` listing this kind's conditions."""
        for spec in self.conditions:
            if spec.name == name:
                return spec
        known = ", ".join(c.name for c in self.conditions) or "none"
        raise ValueError(f"{self.noun} have no condition {name!r}; their conditions: {known}")
