"""Plugin discovery: entry points of group ``pcgen.plugins``, guarded loading, and registry.toml.

Each entry point is loaded on its own: a plugin that raises on import is recorded as *broken*
with its error, and every other plugin keeps working. ``PCGEN_STRICT_PLUGINS=1`` (or
``strict=True``) re-raises instead, for plugin authors. ``PCGEN_DISABLE_PLUGIN_AUTOLOAD=1`` skips
entry points (only the core's own data sets, metrics and recipes are registered).
"""

from __future__ import annotations

import importlib.metadata as md
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
from pcgen.specs import DatasetSpec, MetricSpec, ModelSpec, RecipeSpec
from pcgen.suggest import did_you_mean

ENTRY_POINT_GROUP = "pcgen.plugins"


class PluginError(RuntimeError):
    """A plugin problem the user must fix: unknown name, duplicate name, wrong contract, import error."""


@dataclass
class PluginRecord:
    """What ``pcgen plugins`` shows for one plugin."""

    name: str
    status: str
    """'installed', 'not installed', 'broken' or 'refused'."""
    distribution: str = ""
    version: str = ""
    module: str = ""
    paper: str = ""
    description: str = ""
    models: list[str] = field(default_factory=list)
    error: str = ""
    in_registry: bool = False


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginRecord]
    models: dict[str, ModelSpec]
    datasets: dict[str, DatasetSpec]
    metrics: dict[str, MetricSpec]
    recipes: dict[str, RecipeSpec]

    def model(self, name: str) -> ModelSpec:
        """The model spec called ``name``, or a :class:`PluginError` listing what exists."""
        if name in self.models:
            return self.models[name]
        hint = ""
        record = self.plugins.get(name)
        if record and record.status == "not installed":
            hint = f" It is listed in registry.toml but not installed: pip install -e {record.module or 'plugins/' + name}."
        elif record and record.status in ("broken", "refused"):
            hint = f" Plugin '{name}' is {record.status}: {record.error.strip().splitlines()[-1]}"
        known = ", ".join(sorted(self.models)) or "none"
        hint = hint or did_you_mean(name, self.models)
        raise PluginError(f"unknown model plugin '{name}'. Installed models: {known}.{hint} See `pcgen plugins`.")

    def dataset(self, name: str) -> DatasetSpec:
        if name not in self.datasets:
            raise PluginError(f"unknown data set '{name}'; registered: {', '.join(sorted(self.datasets))}."
                              f"{did_you_mean(name, self.datasets)}")
        return self.datasets[name]

    def recipe(self, name: str) -> RecipeSpec:
        if name not in self.recipes:
            raise PluginError(f"unknown training recipe '{name}'; registered: {', '.join(sorted(self.recipes))}")
        return self.recipes[name]


def strict_from_env() -> bool:
    return os.environ.get("PCGEN_STRICT_PLUGINS", "") not in ("", "0", "false", "False")


def _contract_compatible(declared: Any) -> bool:
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


def _load_one(
    pm: pluggy.PluginManager, ep: md.EntryPoint, strict: bool
) -> tuple[PluginRecord, ModuleType | None]:
    dist, version = _distribution_of(ep)
    record = PluginRecord(name=ep.name, status="installed", distribution=dist, version=version, module=ep.value)
    try:
        module = ep.load()
    except Exception as err:  # noqa: BLE001 - any import failure must not break the host
        if strict:
            raise PluginError(f"error importing pcgen plugin '{ep.name}' ({ep.value}): {err}") from err
        record.status, record.error = "broken", traceback.format_exc(limit=3)
        return record, None
    declared = getattr(module, "PCGEN_CONTRACT", None)
    if not _contract_compatible(declared):
        record.status = "refused"
        record.error = (
            f"plugin '{ep.name}' declares PCGEN_CONTRACT={declared!r} but this pcgen implements contract "
            f"{CONTRACT_VERSION}; install a version of the plugin built for pcgen contract {CONTRACT_VERSION.split('.')[0]}.x"
        )
        if strict:
            raise PluginError(record.error)
        return record, None
    pm.register(module, name=ep.name)
    return record, module


def _collect(pm: pluggy.PluginManager, hook: str, owners: dict[int, str]) -> list[tuple[str, Any]]:
    """Call a registration hook on each plugin separately, so results can be traced to their owner."""
    results: list[tuple[str, Any]] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        for spec in impl.function() or []:
            results.append((owners.get(id(impl.plugin), impl.plugin_name), spec))
    return results


def _index(kind: str, items: list[tuple[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    owner_of: dict[str, str] = {}
    for owner, spec in items:
        if spec.name in table:
            raise PluginError(
                f"two plugins register a {kind} called '{spec.name}': '{owner_of[spec.name]}' and '{owner}'. "
                f"Uninstall one of them (pip uninstall) or block it with PCGEN_BLOCK_PLUGINS={owner}."
            )
        table[spec.name], owner_of[spec.name] = spec, owner
    return table


def load_registry(
    entry_points: Iterable[md.EntryPoint] | None = None,
    strict: bool | None = None,
    extra_plugins: Iterable[object] = (),
) -> Registry:
    """Load every plugin and collect what it registers.

    ``entry_points`` defaults to the installed ones; ``extra_plugins`` are registered directly (the
    core's own :mod:`pcgen.builtin` is always registered, after the entry points).
    """
    strict = strict_from_env() if strict is None else strict
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = {b.strip() for b in os.environ.get("PCGEN_BLOCK_PLUGINS", "").split(",") if b.strip()}
    autoload = os.environ.get("PCGEN_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    if entry_points is None:
        entry_points = discover_entry_points() if autoload else []

    records: dict[str, PluginRecord] = {}
    for ep in _unique_entry_points(entry_points):
        if ep.name in blocked:
            continue
        if ep.name in records:
            raise PluginError(
                f"two installed distributions declare the pcgen plugin '{ep.name}' "
                f"({records[ep.name].module} and {ep.value}); uninstall one of them"
            )
        record, _ = _load_one(pm, ep, strict)
        records[ep.name] = record

    from pcgen import builtin

    pm.register(builtin, name="pcgen-core")
    for i, plugin in enumerate(extra_plugins):
        pm.register(plugin, name=getattr(plugin, "__name__", f"extra-{i}"))
    pm.check_pending()

    owners = {id(pm.get_plugin(name)): name for name, _ in pm.list_name_plugin()}
    models = _index("model", _collect(pm, "pcgen_register_models", owners))
    for owner, spec in _collect(pm, "pcgen_register_models", owners):
        if owner in records:
            records[owner].models.append(spec.name)
            records[owner].paper = records[owner].paper or spec.paper
            records[owner].description = records[owner].description or spec.description
    return Registry(
        manager=pm,
        plugins=records,
        models=models,
        datasets=_index("data set", _collect(pm, "pcgen_register_datasets", owners)),
        metrics=_index("metric", _collect(pm, "pcgen_register_metrics", owners)),
        recipes=_index("recipe", _collect(pm, "pcgen_register_recipes", owners)),
    )


# ------------------------------------------------------------------------------------------------
# registry.toml: the catalogue of known plugins
# ------------------------------------------------------------------------------------------------


def find_catalogue(start: Path | None = None) -> Path | None:
    """registry.toml: ``$PCGEN_REGISTRY``, else the nearest one above the working directory or the core."""
    env = os.environ.get("PCGEN_REGISTRY")
    if env:
        return Path(env)
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for folder in (base, *base.parents):
            candidate = folder / "registry.toml"
            if candidate.is_file():
                return candidate
    return None


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
        plugin_table(_REGISTRY, read_catalogue())
    return _REGISTRY


def print_load_warnings(registry: Registry, stream: Any = sys.stderr) -> None:
    """One line per broken or refused plugin, so a user sees why a model is missing."""
    for record in registry.plugins.values():
        if record.status in ("broken", "refused"):
            last = record.error.strip().splitlines()[-1] if record.error else ""
            print(f"warning: pcgen plugin '{record.name}' is {record.status}: {last}", file=stream)
