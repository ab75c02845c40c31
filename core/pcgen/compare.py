"""Fair comparisons: several models trained on the same data, split, seed and budget, evaluated alike."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pcgen.config import ConfigError, ResolvedConfig, load_config, parse_override
from pcgen.data.store import read_pointclouds
from pcgen.metrics.evaluate import MetricTable, clouds_per_row
from pcgen.safe_io import make_new_dir, refuse_overwrite, save_figure, write_text
from pcgen.train.data_prep import load_clouds
from pcgen.train.runner import execute


PER_MODEL_SECTIONS = ("model", "recipe")
"""The tables a ``--set PLUGIN.<table>.KEY=VALUE`` may give one model of a comparison; the data, training
and evaluation settings are the same for every model (that is the comparison)."""


def overrides_per_plugin(overrides: list[str], plugins: list[str], registry: Any) -> dict[str, list[str]]:
    """Each model's ``--set`` list: the shared overrides, then those written ``PLUGIN.model.KEY=VALUE`` or
    ``PLUGIN.recipe.KEY=VALUE`` for that model alone (without the ``PLUGIN.`` prefix)."""
    shared: list[str] = []
    own: dict[str, list[str]] = {p: [] for p in plugins}
    for text in overrides:
        keys, _ = parse_override(text)
        head = keys[0]
        if head not in plugins and head not in registry.models:
            shared.append(text)
            continue
        if head not in plugins:
            raise ConfigError(f"--set {text}: '{head}' is not one of the compared models ({', '.join(plugins)})")
        if len(keys) < 3 or keys[1] not in PER_MODEL_SECTIONS:
            raise ConfigError(f"--set {text}: only {head}.model.KEY=VALUE and {head}.recipe.KEY=VALUE can be given "
                              "to one model; data, training and evaluation settings are the same for every model")
        own[head].append(".".join(keys[1:]) + "=" + text.split("=", 1)[1])
    return {p: shared + own[p] for p in plugins}


def resolve_each(plugins: list[str], config: Path | None, overrides: list[str], registry: Any) -> list[ResolvedConfig]:
    """Every model's config; an error names the model whose config refused a setting."""
    per_plugin = overrides_per_plugin(overrides, plugins, registry)
    resolved = []
    for plugin in plugins:
        try:
            resolved.append(load_config(config, per_plugin[plugin], registry, plugin=plugin))
        except ConfigError as err:
            message = " ".join(str(err).split())
            hint = ("; a --set applies to every model of the comparison, for one model only write "
                    "--set PLUGIN.model.KEY=VALUE (or PLUGIN.recipe.KEY=VALUE)")
            raise ConfigError(f"{plugin}: {message}" + (hint if "'model." in message or "'recipe." in message
                                                          else "")) from None
    return resolved


def compare(
    plugins: list[str],
    config: Path | None,
    overrides: list[str],
    registry: Any,
    out_dir: Path | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> tuple[Path, MetricTable]:
    """Train and evaluate each model with the same settings; write one table and one figure for all."""
    console = console or Console(stderr=True)
    resolved = resolve_each(plugins, config, overrides, registry)  # validate all first
    first = resolved[0].run
    if out_dir is not None:  # a folder the user named: never mixed with an earlier comparison's runs
        refuse_overwrite(out_dir, False, None)
        out_dir = make_new_dir(out_dir)
    else:
        out_dir = make_new_dir(Path(first.run_dir) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    table: MetricTable | None = None
    fakes = {}
    for cfg in resolved:
        console.rule(f"[bold]{cfg.run.plugin}")
        result = execute(cfg, registry, run_dir=out_dir / cfg.run.plugin, console=console, show_progress=show_progress)
        if not result.completed:
            raise KeyboardInterrupt
        part = result.table
        table = part if table is None else table.add_rows(part)
        fakes[cfg.run.plugin] = read_pointclouds(result.run_dir / "samples.h5")
    assert table is not None
    write_text(out_dir / "metrics.md", table.to_markdown() + "\n", "metrics file")
    write_text(out_dir / "metrics.json", json.dumps(table.to_dict(), indent=2), "metrics file")
    clouds = load_clouds(resolved[0], registry, progress=False)
    train, test = clouds.split(first.data.train_fraction, first.data.split_seed)
    real = test.subset(slice(0, clouds_per_row(first.eval.num_jets, len(test), len(train))))
    figure = registry.kind_of(clouds).figure(real, fakes, 50)
    save_figure(figure, out_dir / "distributions.png", bbox_inches="tight")
    console.print(table.to_rich(title="comparison (same data, split, seed, budget)"))
    console.print(f"comparison folder: {out_dir}")
    return out_dir, table
