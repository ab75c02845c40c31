"""Fair comparisons: several models trained on the same data, split, seed and budget, evaluated alike."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pcgen.config import load_config
from pcgen.data.store import read_pointclouds
from pcgen.metrics.evaluate import MetricTable
from pcgen.safe_io import make_new_dir, refuse_overwrite, save_figure, write_text
from pcgen.train.data_prep import load_clouds
from pcgen.train.runner import execute


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
    from pcgen.plots import figure_for_kind

    console = console or Console(stderr=True)
    resolved = [load_config(config, overrides, registry, plugin=p) for p in plugins]  # validate all first
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
    _, test = load_clouds(resolved[0], registry, progress=False).split(first.data.train_fraction, first.data.split_seed)
    real = test.subset(slice(0, min(len(test), first.eval.num_jets)))
    kind = registry.dataset(first.data.dataset).kind
    save_figure(figure_for_kind(kind, real, fakes), out_dir / "distributions.png", bbox_inches="tight")
    console.print(table.to_rich(title="comparison (same data, split, seed, budget)"))
    console.print(f"comparison folder: {out_dir}")
    return out_dir, table
