"""The plugin author's commands: ``pcgen check NAME`` and ``pcgen new-plugin NAME``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
out = Console()


def check_command(
    name: Annotated[str, typer.Argument(help="Installed model to check (see `pcgen plugins`).")],
    only: Annotated[str | None, typer.Option("-k", help="Only the contract tests matching this pytest -k expression.")] = None,
) -> None:
    """Run the model contract against an installed model on the CPU (about a minute) and explain each failure."""
    from pcgen.plugins import PluginError, get_registry
    from pcgen.testing.check import CheckResult, run_contract

    try:
        get_registry().model(name)
    except PluginError as err:
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    marks = {"passed": "[green]pass[/]", "failed": "[bold red]FAIL[/]", "skipped": "[yellow]skip[/]"}

    def echo(result: CheckResult) -> None:
        out.print(f"{marks[result.outcome]}  {escape(result.what)}  [dim]{escape(result.test)}[/]", soft_wrap=True)

    start = time.perf_counter()
    out.print(f"checking model [bold]{name}[/] against the pcgen contract (CPU, quick variant)")
    results = run_contract(name, echo, ("-k", only) if only else ())
    failed = [r for r in results if r.outcome == "failed"]
    for r in failed:
        out.print(f"\n[bold red]FAILED[/] {r.test}\n  checked: {r.what}\n  seen:    {r.seen}\n  fix:     {r.fix}",
                  soft_wrap=True)
    counts = {k: sum(r.outcome == k for r in results) for k in marks}
    out.print(f"\n{name}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
              f"in {time.perf_counter() - start:.0f} s")
    if failed or not results:
        raise typer.Exit(1)


def new_plugin_command(
    name: Annotated[str, typer.Argument(help="Model name, e.g. 'mymodel' (letters, digits, '-' or '_').")],
    folder: Annotated[Path | None, typer.Option("--dir", help="Folder to create (default ./pcgen-NAME).")] = None,
) -> None:
    """Write a complete, installable plugin (pyproject, config, networks, plugin module, tests, README)."""
    from pcgen.plugin_template import TemplateError, write_plugin

    try:
        written = write_plugin(name, folder or Path(f"pcgen-{name.replace('_', '-')}"))
    except TemplateError as err:
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(f"wrote plugin '{name}' in {written}; next:\n"
              f"  pip install -e {written}\n  pcgen plugins\n  pcgen check {name}\n"
              f"  pytest {written}   (or: pytest --pcgen-model {name})\n"
              f"  pcgen run --plugin {name} --set train.time_budget_minutes=1", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the plugin author's commands to the ``pcgen`` app."""
    app.command("check")(check_command)
    app.command("new-plugin")(new_plugin_command)
