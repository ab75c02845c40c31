"""Plugin discovery: entry points of group ``pcgen.plugins``, guarded loading, and registry.toml.

Every failure of a plugin is isolated to that plugin: an import error, a hook the contract does not
know (e.g. a misspelt ``pcgen_register_model``), a hook with arguments its spec lacks, a register
hook that raises or returns the wrong type, and a plugin written for another contract version each
mark it ``broken``; two plugins claiming one model (data set, metric, recipe) name or one entry-point
name are each marked ``conflict`` and neither wins. Every record names the plugin's distribution and
version; every other plugin keeps working. ``PCGEN_STRICT_PLUGINS=1`` (or ``strict=True``) raises a
:class:`PluginError` at the first problem instead, for plugin authors.
``PCGEN_BLOCK_PLUGINS=a,b`` skips plugins by entry-point or distribution name;
``PCGEN_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points (only the core's own data sets, metrics and
recipes are registered).
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import importlib.resources
import os
import sys
import tomllib
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from pcgen import hookspecs
from pcgen.hookspecs import CONTRACT_VERSION, PROJECT
from pcgen.data.pointclouds import PointClouds
from pcgen.specs import DatasetSpec, KindSpec, MetricSpec, ModelSpec, RecipeSpec
from pcgen.suggest import did_you_mean

ENTRY_POINT_GROUP = "pcgen.plugins"
CORE = "pcgen-core"
"""Plugin name of the core's own registrations (:mod:`pcgen.builtin`)."""

REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "pcgen_register_models": ("model", ModelSpec),
    "pcgen_register_datasets": ("data set", DatasetSpec),
    "pcgen_register_metrics": ("metric", MetricSpec),
    "pcgen_register_recipes": ("recipe", RecipeSpec),
    "pcgen_register_kinds": ("kind", KindSpec),
}
"""Each registration hook, the kind of thing it registers and the spec type it must return."""

KNOWN_HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("pcgen_"))


class PluginError(RuntimeError):
    """A plugin problem the user must fix: unknown name, duplicate name, wrong contract, import error."""


@dataclass
class PluginRecord:
    """What ``pcgen plugins`` shows for one plugin."""

    name: str
    status: str
    """'installed', 'not installed', 'broken' or 'conflict'."""
    distribution: str = ""
    version: str = ""
    module: str = ""
    paper: str = ""
    description: str = ""
    models: list[str] = field(default_factory=list)
    error: str = ""
    """Why the plugin is broken or in conflict (for an import error: the traceback)."""
    in_registry: bool = False

    @property
    def label(self) -> str:
        """``plugin NAME (DISTRIBUTION VERSION)``, as error messages name a plugin."""
        dist = f"{self.distribution} {self.version}".strip() or "no distribution"
        return f"plugin {self.name} ({dist})"

    @property
    def reason(self) -> str:
        """The last line of :attr:`error`: one line saying what is wrong."""
        lines = self.error.strip().splitlines()
        return lines[-1] if lines else ""

    def fail(self, status: str, message: str, strict: bool) -> None:
        """Mark this plugin ``status`` ('broken' or 'conflict') with ``message``; raise it in strict mode."""
        self.status, self.error = status, message
        if strict:
            raise PluginError(f"{self.label} is {status}: {self.reason}")


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginRecord]
    models: dict[str, ModelSpec]
    datasets: dict[str, DatasetSpec]
    metrics: dict[str, MetricSpec]
    recipes: dict[str, RecipeSpec]
    kinds: dict[str, KindSpec] = field(default_factory=dict)
    model_owners: dict[str, str] = field(default_factory=dict)
    """Model name -> name of the plugin that registered it."""
    catalogue: dict[str, dict[str, Any]] = field(default_factory=dict)
    """registry.toml's ``[plugins.NAME]`` tables, as read when the plugins were loaded."""
    conflicts: dict[str, str] = field(default_factory=dict)
    """Names claimed by several plugins (``"model 'x'"`` -> the message saying who and what to do)."""

    def model(self, name: str) -> ModelSpec:
        """The model spec called ``name``, or a :class:`PluginError` listing what exists."""
        if name in self.models:
            return self.models[name]
        hint = ""
        record = self.plugins.get(name)
        if record and record.status == "not installed":
            hint = f" It is listed in registry.toml but not installed: pip install -e {record.module or 'plugins/' + name}."
        elif record and record.status in ("broken", "conflict"):
            hint = f" {record.label} is {record.status}: {record.reason}"
        if f"model '{name}'" in self.conflicts:
            raise PluginError(self.conflicts[f"model '{name}'"])
        known = ", ".join(sorted(self.models)) or "none"
        hint = hint or did_you_mean(name, self.models)
        raise PluginError(f"unknown model plugin '{name}'. Installed models: {known}.{hint} See `pcgen plugins`.")

    def owner(self, model: str) -> PluginRecord:
        """The record of the plugin that registered ``model`` (a bare record for in-process plugins)."""
        for record in self.plugins.values():
            if model in record.models and record.status != "not installed":
                return record
        return PluginRecord(name=self.model_owners.get(model, "unknown"), status="installed")

    def build_model(self, spec: ModelSpec, config: Any, info: Any) -> Any:
        """``spec.build`` with the validated config (a dict is validated first by ``spec.config_class``).

        The model's ``build()`` always receives an instance of its config class. Any exception it
        raises becomes a :class:`PluginError` that names the plugin, its distribution and version.
        """
        from pcgen.config import validate_section
        from pcgen.models import GenerativeModel

        if not isinstance(config, spec.config_class):
            raw = config.model_dump() if hasattr(config, "model_dump") else dict(config or {})
            config = validate_section(spec.config_class, raw, "model")
        who = self.owner(spec.name).label
        try:
            model = spec.build(config, info)
        except Exception as err:
            raise PluginError(f"{who} failed to build model {spec.name}: {type(err).__name__}: {err}") from err
        if not isinstance(model, GenerativeModel):
            raise PluginError(
                f"{who} failed to build model {spec.name}: build() returned {type(model).__name__}, "
                "not a pcgen GenerativeModel (AdversarialModel, LikelihoodModel, ...)"
            )
        return model

    def dataset(self, name: str) -> DatasetSpec:
        if name not in self.datasets:
            raise PluginError(f"unknown data set '{name}'; registered: {', '.join(sorted(self.datasets))}."
                              f"{did_you_mean(name, self.datasets)}")
        return self.datasets[name]

    def kind(self, name: str) -> KindSpec:
        """The kind of point cloud called ``name``, or a :class:`PluginError` listing the registered ones."""
        if name not in self.kinds:
            raise PluginError(f"unknown kind of point cloud '{name}'; registered: {', '.join(sorted(self.kinds))}."
                              f"{did_you_mean(name, self.kinds)}")
        return self.kinds[name]

    def kind_of(self, clouds: PointClouds) -> KindSpec:
        """The kind of ``clouds``: the one they declare (``meta["kind"]``), else the registered kind whose
        leading features they have (the longest such list wins)."""
        declared = clouds.meta.get("kind")
        if declared:
            return self.kind(str(declared))
        names = tuple(clouds.feature_names)
        matches = [k for k in self.kinds.values() if names[: len(k.feature_names)] == k.feature_names]
        if not matches:
            known = "; ".join(f"{k.name}: ({', '.join(k.feature_names)})" for k in self.kinds.values())
            raise PluginError(f"clouds with features ({', '.join(names)}) are of no registered kind ({known}); "
                              "name their kind in the file's meta (meta['kind']) or register a KindSpec for them")
        return max(matches, key=lambda k: len(k.feature_names))

    def dataset_kind(self, name: str) -> KindSpec | None:
        """The kind of data set ``name``'s clouds, None when only the data decide (a file)."""
        kind = self.dataset(name).kind
        return self.kind(kind) if kind else None

    def recipe(self, name: str) -> RecipeSpec:
        if name not in self.recipes:
            raise PluginError(f"unknown training recipe '{name}'; registered: {', '.join(sorted(self.recipes))}")
        return self.recipes[name]


def strict_from_env() -> bool:
    return os.environ.get("PCGEN_STRICT_PLUGINS", "") not in ("", "0", "false", "False")


def contract_accepts(declared: Any) -> bool:
    """Whether a plugin declaring contract ``declared`` ("<major>.<minor>") loads in this core: the same
    major number (a minor version only adds names, so a plugin of 2.1 runs on a 2.2 core)."""
    if not isinstance(declared, str) or not declared:
        return False
    return declared.split(".")[0] == CONTRACT_VERSION.split(".")[0]


def _unique_entry_points(entry_points: Iterable[md.EntryPoint]) -> list[md.EntryPoint]:
    """Drop identical duplicates (same name and target, e.g. a lib64 -> lib symlinked site-packages)."""
    seen: dict[tuple[str, str], md.EntryPoint] = {}
    for ep in entry_points:
        seen.setdefault((ep.name, ep.value), ep)
    return list(seen.values())


def discover_entry_points() -> list[md.EntryPoint]:
    """Installed entry points of the ``pcgen.plugins`` group (read from metadata, nothing imported)."""
    return _unique_entry_points(md.entry_points(group=ENTRY_POINT_GROUP))


def _distribution_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    return dist.metadata["Name"] or "", dist.version or ""


def _record_for(ep: md.EntryPoint) -> PluginRecord:
    dist, version = _distribution_of(ep)
    return PluginRecord(name=ep.name, status="installed", distribution=dist, version=version, module=ep.value)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations of ``plugin`` that no spec of the contract declares (e.g. misspelt names)."""
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if not caller.has_spec())


def _load_one(pm: pluggy.PluginManager, record: PluginRecord, ep: md.EntryPoint, strict: bool) -> ModuleType | None:
    """Import and register one entry point; on any problem mark ``record`` broken and return None."""
    try:
        module = ep.load()
    except Exception as err:
        if strict:
            raise PluginError(f"error importing pcgen plugin '{ep.name}' ({ep.value}): {err}") from err
        record.fail("broken", traceback.format_exc(limit=3), strict=False)
        return None
    declared = getattr(module, "PCGEN_CONTRACT", None)
    if not contract_accepts(declared):
        record.fail("broken", (
            f"written for pcgen contract {declared!r} but this pcgen implements contract {CONTRACT_VERSION}; "
            f"install a version of {record.distribution or ep.name} built for contract {CONTRACT_VERSION.split('.')[0]}.x"
        ), strict)
        return None
    try:
        pm.register(module, name=ep.name)
    except pluggy.PluginValidationError as err:  # e.g. a hook taking arguments its spec does not have
        record.fail("broken", f"invalid hook implementation: {err}", strict)
        return None
    unknown = _unknown_hooks(pm, module)
    if unknown:
        pm.unregister(module)
        hints = [f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, KNOWN_HOOKS, 1))
                 else name for name in unknown]
        record.fail("broken", f"unknown hook {', '.join(hints)}; the hooks are: {', '.join(KNOWN_HOOKS)}", strict)
        return None
    return module


def _registrations(pm: pluggy.PluginManager, plugin: object) -> dict[str, list[Any]]:
    """What one plugin registers through each registration hook, checked for type.

    Raises ``ValueError`` naming the hook when one raises or returns something other than a list
    of its spec type.
    """
    found: dict[str, list[Any]] = {}
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.name not in REGISTRATION_HOOKS:
            continue
        kind, spec_type = REGISTRATION_HOOKS[caller.name]
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                result = impl.function()
            except Exception as err:
                raise ValueError(f"{caller.name}() raised {type(err).__name__}: {err}") from err
            items = [] if result is None else result
            if not isinstance(items, list | tuple) or not all(isinstance(i, spec_type) for i in items):
                got = type(items).__name__ if not isinstance(items, list | tuple) else \
                    f"a list holding {', '.join(sorted({type(i).__name__ for i in items}))}"
                raise ValueError(f"{caller.name}() returned {got}; it must return a list of {spec_type.__name__}")
            found.setdefault(kind, []).extend(items)
    return found


def _conflict_message(kind: str, name: str, owners: list[PluginRecord], catalogue: dict[str, dict[str, Any]]) -> str:
    """Who claims ``name`` and which distribution to block (one not listed in registry.toml, if any)."""
    known = {entry.get("distribution") for entry in catalogue.values()}
    strangers = [o for o in owners if o.distribution not in known] or owners[1:]
    block = " or ".join(f"PCGEN_BLOCK_PLUGINS={o.distribution or o.name}" for o in strangers)
    return (
        f"{kind} '{name}' is registered by {' and by '.join(o.label for o in owners)}; neither is used. "
        f"Keep one: uninstall the other or set {block}"
    )


def load_registry(
    entry_points: Iterable[md.EntryPoint] | None = None,
    strict: bool | None = None,
    extra_plugins: Iterable[object] = (),
    catalogue: dict[str, dict[str, Any]] | None = None,
) -> Registry:
    """Load every plugin and collect what it registers.

    ``entry_points`` defaults to the installed ones; ``extra_plugins`` are registered directly (the
    core's own :mod:`pcgen.builtin` is always registered, after the entry points). ``catalogue``
    (default: registry.toml) decides which distribution a conflict's hint suggests blocking.
    """
    strict = strict_from_env() if strict is None else strict
    catalogue = catalogue_or_warning(strict) if catalogue is None else catalogue
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = {b.strip() for b in os.environ.get("PCGEN_BLOCK_PLUGINS", "").split(",") if b.strip()}
    autoload = os.environ.get("PCGEN_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    if entry_points is None:
        entry_points = discover_entry_points() if autoload else []

    by_name: dict[str, list[md.EntryPoint]] = {}
    for ep in _unique_entry_points(entry_points):
        if ep.name not in blocked and _distribution_of(ep)[0] not in blocked:
            by_name.setdefault(ep.name, []).append(ep)
    records: dict[str, PluginRecord] = {}
    plugins: list[tuple[PluginRecord, object]] = []
    for name, eps in by_name.items():
        record = records[name] = _record_for(eps[0])
        if len(eps) > 1:
            claimants = [_record_for(ep) for ep in eps]
            record.distribution = ", ".join(c.distribution for c in claimants)
            record.module = ", ".join(ep.value for ep in eps)
            record.fail("conflict", _conflict_message("entry point", name, claimants, catalogue), strict)
            continue
        module = _load_one(pm, record, eps[0], strict)
        if module is not None:
            plugins.append((record, module))

    from pcgen import builtin

    pm.register(builtin, name=CORE)
    plugins.append((PluginRecord(name=CORE, status="installed", distribution="pcgen"), builtin))
    for i, plugin in enumerate(extra_plugins):
        name = getattr(plugin, "__name__", f"extra-{i}")
        pm.register(plugin, name=name)
        plugins.append((PluginRecord(name=name, status="installed"), plugin))

    claims: dict[tuple[str, str], list[tuple[PluginRecord, Any]]] = {}
    for record, plugin in plugins:
        try:
            registered = _registrations(pm, plugin)
        except ValueError as err:
            pm.unregister(plugin)
            record.fail("broken", str(err), strict)
            continue
        for kind, specs in registered.items():
            for spec in specs:
                claims.setdefault((kind, spec.name), []).append((record, spec))

    tables: dict[str, dict[str, Any]] = {kind: {} for kind, _ in REGISTRATION_HOOKS.values()}
    conflicts: dict[str, str] = {}
    model_owners: dict[str, str] = {}
    for (kind, name), owners in claims.items():
        if len(owners) > 1 and owners[-1][0].name == CORE:  # the core keeps its own names
            owners, losers = owners[-1:], owners[:-1]
            message = _conflict_message(kind, name, [o for o, _ in losers] + [owners[0][0]], catalogue)
            for loser, _ in losers:
                loser.fail("conflict", message.replace("neither is used", "the core's is used"), strict)
        if len(owners) > 1:
            message = _conflict_message(kind, name, [o for o, _ in owners], catalogue)
            conflicts[f"{kind} '{name}'"] = message
            for record, _ in owners:
                record.fail("conflict", message, strict)
            continue
        record, spec = owners[0]
        tables[kind][name] = spec
        if kind == "model":
            record.models.append(name)
            record.paper = record.paper or spec.paper
            record.description = record.description or spec.description
            model_owners[name] = record.name
    return Registry(
        manager=pm,
        plugins=records,
        models=tables["model"],
        datasets=tables["data set"],
        metrics=tables["metric"],
        recipes=tables["recipe"],
        kinds=tables["kind"],
        model_owners=model_owners,
        catalogue=catalogue,
        conflicts=conflicts,
    )


# ------------------------------------------------------------------------------------------------
# registry.toml: the catalogue of known plugins
# ------------------------------------------------------------------------------------------------


def find_catalogue() -> Path | None:
    """registry.toml: ``$PCGEN_REGISTRY`` if set, else the copy shipped inside the installed core."""
    env = os.environ.get("PCGEN_REGISTRY")
    if env:
        return Path(env)
    shipped = Path(str(importlib.resources.files("pcgen") / "registry.toml"))
    return shipped if shipped.is_file() else None


def read_catalogue(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The ``[plugins.NAME]`` tables of registry.toml ({} when there is none)."""
    path = path or find_catalogue()
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as err:
        raise PluginError(f"{path} is not valid TOML: {err}") from err
    return dict(data.get("plugins", {}))


def catalogue_or_warning(strict: bool = False, stream: Any = None) -> dict[str, dict[str, Any]]:
    """:func:`read_catalogue`, or {} with a warning when registry.toml is unreadable (an error when strict)."""
    try:
        return read_catalogue()
    except PluginError as err:
        if strict:
            raise
        print(f"warning: {' '.join(str(err).split())}; the plugin catalogue is not shown", file=stream or sys.stderr)
        return {}


def plugin_table(registry: Registry, catalogue: dict[str, dict[str, Any]]) -> list[PluginRecord]:
    """Every plugin in the catalogue or installed, with its status."""
    rows: dict[str, PluginRecord] = {}
    for name, entry in catalogue.items():
        rows[name] = PluginRecord(
            name=name,
            status="not installed",
            distribution=entry.get("distribution", ""),
            module=entry.get("path", ""),
            paper=entry.get("paper", ""),
            description=entry.get("description", ""),
            in_registry=True,
        )
    for name, record in registry.plugins.items():
        if name in rows:
            record.in_registry = True
            record.paper = record.paper or rows[name].paper
        rows[name] = record
    registry.plugins.update({k: v for k, v in rows.items() if k not in registry.plugins})
    return sorted(rows.values(), key=lambda r: r.name)


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
        plugin_table(_REGISTRY, _REGISTRY.catalogue)
    return _REGISTRY


def print_load_warnings(registry: Registry, stream: Any = sys.stderr) -> None:
    """One line per broken or conflicting plugin, so a user sees why a model is missing."""
    for record in registry.plugins.values():
        if record.status in ("broken", "conflict"):
            print(f"warning: pcgen {record.label} is {record.status}: {record.reason}", file=stream)
