"""Run configuration: pydantic models read from TOML, with ``--set key=value`` overrides.

Validation happens in two phases because the set of plugins is open: the generic sections
(``data``, ``train``, ``eval``) are validated here, the ``model`` and ``recipe`` tables by the
config classes that the chosen plugin and its recipe register (see :func:`resolve`).
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

from pcgen.suggest import did_you_mean


class ConfigError(ValueError):
    """A configuration problem, with a message naming the key and what is allowed."""


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def default_cache_dir() -> Path:
    """Where generated data sets are cached: ``$PCGEN_CACHE`` or ``~/.cache/pcgen``."""
    return Path(os.environ.get("PCGEN_CACHE", Path.home() / ".cache" / "pcgen"))


class DetectorConfig(StrictModel):
    """A simple, documented detector-like step applied to Pythia's visible final state."""

    enabled: bool = Field(True, description="Apply the acceptance and threshold below.")
    max_abs_eta: float = Field(2.5, gt=0, description="Tracker/calorimeter acceptance |eta| < value.")
    min_pt: float = Field(1.0, ge=0, description="Constituent pT threshold in GeV.")


class DataConfig(StrictModel):
    """Which data to train and evaluate on: the settings every kind of data shares. A kind adds its own
    (jets: jet type, pT window, detector) in a subclass, its :attr:`~pcgen.specs.KindSpec.data_config`."""

    dataset: str = Field("pythia", description="Registered data set: 'pythia', 'jetnet', 'file', 'calo-photons', ...")
    num_particles: int = Field(
        30, ge=1, le=4096, description="Leading constituents kept per jet, or hits per shower (N)."
    )
    num_jets: int = Field(10_000, ge=20, description="Clouds (jets, showers) to generate or read.")
    seed: int = Field(0, ge=0, description="Seed of the generated data set.")
    workers: int = Field(0, ge=0, description="Processes for generation; 0 = all cores.")
    path: Path | None = Field(None, description="HDF5 file for dataset='file', or JetNet directory.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Cache of generated data.")
    train_fraction: float = Field(0.7, gt=0, lt=1, description="Train share of the fixed split (JetNet: 0.7).")
    split_seed: int = Field(42, ge=0, description="Seed of the train/test split.")
    scaling: Literal["minmax", "standard"] | None = Field(
        None, description="Particle feature scaling: 'minmax' (to [-1, 1]) or 'standard'; None = the model's default."
    )
    log_features: list[str] | None = Field(
        None, description="Features taken as a logarithm before scaling, e.g. ['pt_rel']; None = the model's default."
    )
    feature_spread: float | None = Field(
        None, gt=0, description="Standard deviation (standard scaling) or half-range (minmax) of the scaled features; "
        "None = the model's default.",
    )
    conditions: list[str] = Field(
        default_factory=list, description="Conditions of the data's kind the model is trained on and samples from, "
        "e.g. ['incident_energy'] (showers) or ['pt', 'mass'] (jets); [] = unconditional (the multiplicity only).",
    )


class TrainConfig(StrictModel):
    """How long and how a model is trained; recipe-specific settings live in ``[recipe]``."""

    batch_size: int = Field(256, ge=1)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    epochs: int | None = Field(None, ge=1, description="Stop after this many passes over the data.")
    time_budget_minutes: float = Field(
        3.0, ge=0, description="Stop training after this much training time (the steps alone, summed over "
        "resumes; the final sampling and evaluation come on top, see total_budget_minutes); 0 = no time limit."
    )
    total_budget_minutes: float = Field(
        0.0, ge=0, description="Stop training early enough that the whole run fits: training stops at the first "
        "step where the training loop's wall time (steps, in-training evaluations, checkpoints, summed over "
        "resumes) plus the final sampling, evaluation and figures, estimated before training by timing a few "
        "clouds, reaches this many minutes; a run whose final phase alone would not fit is refused. Loading the "
        "data and building the model come on top. 0 = no such limit."
    )
    seed: int = Field(0, ge=0, description="Seed of initialisation, noise and batching.")
    init_weights: str = Field(
        "", description="Start from trained weights instead of a random initialisation: 'pretrained:NAME' or a "
        "run folder / checkpoint of the same model on identically preprocessed data (fine-tuning, distillation); "
        "the optimiser and step count start afresh. '' = random initialisation."
    )
    device: str = Field("auto", description="'cpu', 'cuda', 'cuda:1' or 'auto' (cuda if available).")
    log_every: int = Field(20, ge=1, description="Steps between TensorBoard scalar writes.")
    reflect: list[str] = Field(
        default_factory=list, description="Features to reflect (x -> -x in physical units) at random in every "
        "training batch, each with probability 1/2 per cloud: data augmentation for distributions symmetric under "
        "it (jets: [\"eta_rel\", \"phi_rel\"]); [] = none. See pcgen.train.augment."
    )
    rotate: list[str] = Field(
        default_factory=list, description="The two features of a plane in which every training cloud is rotated by "
        "a uniformly random angle in every batch: data augmentation for distributions symmetric under rotations "
        "(jets: [\"eta_rel\", \"phi_rel\"], about the jet axis); [] = none. See pcgen.train.augment."
    )
    eval_every: int = Field(500, ge=1, description="Steps between in-training evaluations.")
    checkpoint_every: int = Field(200, ge=1, description="Steps between checkpoints.")
    num_threads: int = Field(
        0, ge=0, description="CPU threads for torch; 0 = the CPUs this process may use (affinity, cgroup quota)."
    )
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="A NaN/inf loss, gradient or weight: 'stop' the run, or 'skip' the step's update."
    )
    max_nonfinite_in_row: int = Field(
        5, ge=1, description="With on_nonfinite='skip': stop after this many non-finite steps in a row (the one "
        "limit of every recipe; an old config's recipe.max_nonfinite_steps is mapped onto it)."
    )
    precision: Literal["32", "bf16-mixed"] = Field(
        "32", description="'32' (fp32) or 'bf16-mixed' (autocast to bfloat16; weights and optimiser in fp32)."
    )
    compile: bool = Field(False, description="torch.compile the model's networks (worth it on GPUs).")
    tf32: bool = Field(True, description="On CUDA, let fp32 matrix products use TF32 tensor cores.")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        """``--set train.precision=32`` reads 32 as a number; the setting is the text "32"."""
        return str(int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("time_budget_minutes", "total_budget_minutes", mode="before")
    @classmethod
    def _finite_minutes(cls, value: Any) -> Any:
        """A budget is a number of minutes; "no limit" is 0, not infinity (nor NaN)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number of minutes; 0 means no limit")
        return value


class EvalConfig(StrictModel):
    """The evaluation protocol (W1 with bootstrapped errors as JetNet; FPD/KPD on EFPs by pcgen's or jetnet's protocol)."""

    num_jets: int = Field(5000, ge=20, description="Jets per row: generated jets compared with as many held-out real jets.")
    num_batches: int = Field(5, ge=2, description="Bootstrap batches for W1 errors.")
    protocol: Literal["pcgen", "jetnet"] = Field(
        "pcgen", description="FPD/KPD protocol: pcgen (fixed normalisation, disjoint batches) or jetnet (its defaults)."
    )
    num_splits: int = Field(5, ge=2, description="pcgen protocol: disjoint batch pairs of FPD/KPD (error = their spread).")
    efp: bool = Field(True, description="Compute EFP-based metrics (W1 EFP, FPD, KPD).")
    metrics: list[str] | None = Field(None, description="Metric names to compute; None = all for the data kind.")
    during_training: list[str] | None = Field(
        None, description="Metrics evaluated every eval_every steps; None = the data kind's cheap ones (jets: w1m, w1p)."
    )


class RunConfig(StrictModel):
    """A whole run. ``model`` and ``recipe`` are validated against the plugin's classes by :func:`resolve`."""

    plugin: str = Field("", description="Model name as registered by a plugin (`pcgen models`); required.")
    run_dir: Path = Field(Path("runs"), description="Parent folder of run folders.")
    name: str | None = Field(None, description="Run folder name; default: '<plugin>-<timestamp>'.")
    data: SerializeAsAny[DataConfig] = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    model: dict[str, Any] = Field(default_factory=dict)
    recipe: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Reading, overriding and reporting errors
# ------------------------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file into a dict, with clear errors for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing TOML file to --config")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from err


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as TOML (``3``, ``1e-4``, ``true``, ``[1,2]``), else a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.max_steps=100), got {text!r}")
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".")]
    if not all(keys):
        raise ConfigError(f"--set has an empty key part in {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``KEY=VALUE`` override set (nested tables created)."""
    result = _deep_copy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for k in keys[:-1]:
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text}: {'.'.join(keys[:-1])} is a value, not a table")
            node = child
        node[keys[-1]] = value
    return result


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def format_validation_error(err: ValidationError, prefix: str, model: type[BaseModel]) -> str:
    """One line per problem: the dotted key, what was given and what is allowed."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, e["loc"][:-1])
            hint = did_you_mean(str(e["loc"][-1]), allowed)
            lines.append(f"unknown key '{loc}'; allowed keys here: {', '.join(allowed)}.{hint}")
        else:
            given = e.get("input")
            lines.append(f"'{loc}': {e['msg']} (got {given!r})")
    if len(lines) == 1:  # one problem: one line
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return []
    return sorted(model.model_fields)


def validate_section(model: type[StrictModel] | type[BaseModel], data: dict[str, Any], prefix: str) -> Any:
    """Validate one table against a pydantic class, raising :class:`ConfigError` with readable lines."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, prefix, model)) from None


def load_run_config(path: Path | None = None, overrides: list[str] | None = None, **top: Any) -> RunConfig:
    """Build the generic run config from an optional TOML file, top-level values and ``--set`` overrides."""
    raw = read_toml(path) if path else {}
    raw.update({k: v for k, v in top.items() if v is not None})
    raw = apply_overrides(raw, overrides or [])
    return validate_section(RunConfig, raw, "")


# ------------------------------------------------------------------------------------------------
# Resolution against the chosen plugin (phase two)
# ------------------------------------------------------------------------------------------------


class ResolvedConfig:
    """A run config whose ``model`` and ``recipe`` tables were validated by the plugin's classes.

    Defaults are layered: the core's generic ones, then the plugin's paper values
    (``ModelSpec.train_defaults`` / ``recipe_defaults``), then the data set's
    (``DatasetSpec.config_defaults``, e.g. hits per shower and a batch size that fits them), then
    what the user wrote: the user always wins.
    """

    def __init__(self, run: RunConfig, model: BaseModel, recipe: BaseModel, *, spec: Any = None,
                 recipe_spec: Any = None, dataset: Any = None, kind: Any = None) -> None:
        self.run, self.model, self.recipe = run, model, recipe
        self.spec = spec
        """The :class:`~pcgen.specs.ModelSpec` of ``run.plugin``, as resolution looked it up."""
        self.recipe_spec = recipe_spec
        """The :class:`~pcgen.specs.RecipeSpec` that trains the model."""
        self.dataset = dataset
        """The :class:`~pcgen.specs.DatasetSpec` of ``data.dataset``."""
        self.kind = kind
        """The data set's :class:`~pcgen.specs.KindSpec`; None when the data decide (a file)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-safe nested dict of every setting, defaults included."""
        data = self.run.model_dump(mode="json")
        data["model"] = self.model.model_dump(mode="json")
        data["recipe"] = self.recipe.model_dump(mode="json")
        return data


def resolve(raw: dict[str, Any], registry: Any) -> ResolvedConfig:
    """Validate a raw config dict against the core's sections and the plugin's own classes."""
    raw = _deep_copy(raw)
    plugin = raw.get("plugin", "")
    if not isinstance(plugin, str):
        raise ConfigError(f"'plugin' must be a model name, got {plugin!r}")
    if not plugin:
        raise ConfigError("no model chosen: pass --plugin NAME (or set plugin = \"NAME\" in the config file); "
                          f"installed models: {', '.join(sorted(registry.models)) or 'none'}")
    spec = registry.model(plugin)
    dataset = raw.get("data", {}).get("dataset", DataConfig.model_fields["dataset"].default)
    if isinstance(dataset, str) and dataset in registry.datasets:
        raw = _merge_tables(registry.dataset(dataset).config_defaults, raw)
    raw["train"] = {**spec.train_defaults, **raw.get("train", {})}
    raw["recipe"] = _merge_tables(spec.recipe_defaults, raw.get("recipe", {}))
    raw["train"] = map_retired_nonfinite_limit(raw["recipe"], raw["train"])
    raw_data = raw.pop("data", {})
    run = validate_section(RunConfig, raw, "")
    run.data = _data_section(raw_data, registry)
    model = validate_section(spec.config_class, run.model, "model")
    recipe_spec = registry.recipe(spec.recipe)
    recipe = validate_section(recipe_spec.config_class_for(spec, registry), run.recipe, "recipe")
    t = run.train
    if t.max_steps is None and t.epochs is None and not t.time_budget_minutes and not t.total_budget_minutes:
        raise ConfigError("set at least one of 'train.max_steps', 'train.epochs', 'train.time_budget_minutes', "
                          "'train.total_budget_minutes'")
    check_initialisation = getattr(recipe, "check_initialisation", None)  # the staged recipe: skipped stages
    if check_initialisation is not None:
        check_initialisation(t.init_weights)
    _check_conditions(run.data, spec, registry)
    return ResolvedConfig(run, model, recipe, spec=spec, recipe_spec=recipe_spec, dataset=registry.dataset(run.data.dataset),
                          kind=registry.dataset_kind(run.data.dataset))


def data_config_class(dataset: str, registry: Any) -> type[DataConfig]:
    """The class of the ``[data]`` table of ``dataset``: its kind's, or the generic one."""
    if dataset not in registry.datasets:
        raise ConfigError(f"'data.dataset' = {dataset!r} is not a registered data set; "
                          f"allowed: {', '.join(sorted(registry.datasets))}{did_you_mean(dataset, registry.datasets)}")
    kind = registry.dataset_kind(dataset)
    return kind.data_config if kind is not None and kind.data_config is not None else DataConfig


def _data_section(raw: Any, registry: Any) -> DataConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"'data' must be a table, got {raw!r}")
    dataset = raw.get("dataset", DataConfig.model_fields["dataset"].default)
    if not isinstance(dataset, str):
        raise ConfigError(f"'data.dataset' must be a data set's name, got {dataset!r}")
    return validate_section(data_config_class(dataset, registry), raw, "data")


def _check_conditions(data: DataConfig, spec: Any, registry: Any) -> None:
    """Each of ``data.conditions`` is a condition of the data's kind that the model accepts."""
    if not data.conditions:
        return
    kind = registry.dataset_kind(data.dataset)
    if kind is not None:
        offered = [c.name for c in kind.conditions if not c.multiplicity]
        unknown = [c for c in data.conditions if c not in offered]
        if unknown:
            raise ConfigError(f"'data.conditions' names {', '.join(unknown)}, not a condition of {kind.noun}; "
                              f"allowed: {', '.join(offered) or 'none'} (the multiplicity is always given)")
    refused = [c for c in data.conditions if c not in spec.conditions and "*" not in spec.conditions]
    if refused:
        takes = f"it takes {', '.join(spec.conditions)}" if spec.conditions else "it is unconditional"
        raise ConfigError(f"model {spec.name} cannot be conditioned on {', '.join(refused)} ({takes}); "
                          "remove them from data.conditions or choose a conditional model (`pcgen models`)")
    if len(set(data.conditions)) != len(data.conditions):
        raise ConfigError(f"'data.conditions' lists a condition twice: {data.conditions}")


RETIRED_NONFINITE_KEY = "max_nonfinite_steps"
"""A recipe setting that no longer exists: a second limit of non-finite steps in a row that silently
overrode ``train.max_nonfinite_in_row``. Old run folders and model cards still carry it."""


def map_retired_nonfinite_limit(recipe: Any, train: dict[str, Any]) -> dict[str, Any]:
    """Remove ``max_nonfinite_steps`` from a raw ``recipe`` table (at any depth: a staged recipe has
    one per stage) and map it onto ``train.max_nonfinite_in_row``; returns the train table.

    Its smallest non-zero value becomes the limit when the train table sets none (0 meant "never"
    and maps to nothing); a train table that sets another limit is a conflict, reported as an error.
    """
    found = _pop_everywhere(recipe, RETIRED_NONFINITE_KEY)
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in found):
        raise ConfigError(f"'recipe.{RETIRED_NONFINITE_KEY}' is no longer a setting; "
                          "use 'train.max_nonfinite_in_row' (a whole number, at least 1)")
    limits = sorted(v for v in found if v > 0)
    if not limits:
        return train
    given = train.get("max_nonfinite_in_row")
    if given is None:
        return {**train, "max_nonfinite_in_row": limits[0]}
    if given != limits[0]:
        raise ConfigError(
            f"'recipe.{RETIRED_NONFINITE_KEY}' = {limits[0]} is no longer a setting and conflicts with "
            f"'train.max_nonfinite_in_row' = {given!r}, the one limit of non-finite steps in a row; "
            f"delete recipe.{RETIRED_NONFINITE_KEY} (from the config file, or the run folder's config.toml)"
        )
    return train


def _pop_everywhere(table: Any, key: str) -> list[Any]:
    """Remove ``key`` from a nested dict, at every depth; returns the values removed."""
    if not isinstance(table, dict):
        return []
    found = [table.pop(key)] if key in table else []
    for value in table.values():
        found += _pop_everywhere(value, key)
    return found


def _merge_tables(defaults: dict[str, Any], given: Any) -> Any:
    """``given`` over ``defaults``, table by table: a nested table the user sets only partly keeps
    the defaults of its other keys (e.g. a staged recipe's ``[recipe.refiner]``)."""
    if not isinstance(given, dict):
        return given
    merged = _deep_copy(defaults)
    for key, value in given.items():
        base = merged.get(key)
        merged[key] = _merge_tables(base, value) if isinstance(base, dict) and isinstance(value, dict) else value
    return merged


def load_config(
    path: Path | None, overrides: list[str] | None, registry: Any, **top: Any
) -> ResolvedConfig:
    """TOML file + top-level values (e.g. ``plugin``) + ``--set`` overrides, resolved against the plugin."""
    raw = read_toml(path) if path else {}
    raw.update({k: v for k, v in top.items() if v is not None})
    return resolve(apply_overrides(raw, overrides or []), registry)


def to_toml(data: dict[str, Any]) -> str:
    """Serialise a nested dict of scalars and lists to TOML (``None`` values are left out)."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
    lines = [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += _toml_table(key, value)
    return "\n".join(lines) + "\n"


def _toml_table(name: str, table: dict[str, Any]) -> list[str]:
    lines = ["", f"[{name}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict) and v is not None]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _toml_table(f"{name}.{key}", value)
    return lines


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
