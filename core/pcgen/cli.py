"""The ``pcgen`` command line: plugins, data, run, sample, eval."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from pcgen import __version__
from pcgen.cli_plugin_kit import register as register_plugin_kit
from pcgen.cli_words import field_range, whole_number
from pcgen.config import DataConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.train.signals import exit_code

if TYPE_CHECKING:
    from pcgen.data.pointclouds import PointClouds
    from pcgen.metrics.distances import EFPNormalisation

app = typer.Typer(
    help="pcgen: generative models for particle point clouds (jets, calorimeter showers).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Make and inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
register_plugin_kit(app)  # pcgen check, pcgen new-plugin
console = Console(stderr=True)
out = Console()

JET_TYPES = {"top": "t", "t": "t", "gluon": "g", "g": "g", "quark": "q", "light": "q", "q": "q", "w": "w", "z": "z"}


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


NONFINITE_EXIT = 3
"""Exit status of a run, sampling or evaluation stopped by a NaN or an infinity."""


def _report(err: BaseException) -> None:
    """Fail with one line for an expected error: bad input (2), a filesystem fault (2), non-finite values (3)."""
    from pcgen.safe_io import FileAccessError, OverwriteError, describe_os_error

    if isinstance(err, FloatingPointError):
        _fail(str(err), NONFINITE_EXIT)
    if isinstance(err, OSError) and not isinstance(err, FileAccessError | OverwriteError) and err.filename:
        _fail(describe_os_error(err, "access", err.filename))
    _fail(str(err))


def _registry():  # noqa: ANN202 - internal
    from pcgen.plugins import get_registry, print_load_warnings

    registry = get_registry()
    print_load_warnings(registry)
    return registry


def _user_errors() -> tuple[type[Exception], ...]:
    from pcgen.config import ConfigError
    from pcgen.data.store import DataError
    from pcgen.plugins import PluginError
    from pcgen.runtime.checkpoint import CheckpointError

    return (ConfigError, PluginError, DataError, CheckpointError, OSError, FloatingPointError)


DATA_HELP = "Data set, e.g. pythia (default), jetnet, file, calo-photons (same as --set data.dataset=NAME)."


def _with_data(data: str | None, overrides: list[str] | None) -> list[str]:
    """The ``--set`` overrides, preceded by ``data.dataset=<data>`` when ``--data`` is given."""
    return ([f'data.dataset="{data}"'] if data else []) + list(overrides or [])


def _version(value: bool) -> None:
    if value:
        out.print(f"pcgen {__version__}")
        raise typer.Exit()


LISTING_COMMANDS = frozenset({"plugins", "models", "new-plugin"})
"""Commands that run no torch work: the thread setting (which measures the idle CPUs for 0.2 s) is skipped."""


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    threads: Annotated[int, typer.Option("--threads", envvar="PCGEN_THREADS", min=0, help="CPU threads for torch "
                                         "(0 = the CPUs this process may use; `pcgen run` also reads train.num_threads).")] = 0,
) -> None:
    """pcgen: train, sample and evaluate generative models of particle point clouds."""
    if ctx.invoked_subcommand in LISTING_COMMANDS:
        return
    from pcgen.threads import configure_threads

    configure_threads(threads)


@app.command("plugins")
def plugins_command(
    errors: Annotated[bool, typer.Option("--errors", help="Show the full error of broken plugins.")] = False,
) -> None:
    """List every plugin in registry.toml and every installed one, with its status.

    Never fails because of a plugin (a broken one is listed as such), except under
    PCGEN_STRICT_PLUGINS=1, where the first plugin problem is a one-line error and exit status 2.
    """
    from pcgen.plugins import PluginError, get_registry, plugin_table

    try:
        registry = get_registry()
        rows = plugin_table(registry, registry.catalogue)
    except PluginError as err:
        _fail(" ".join(str(err).split()))
    table = Table(title="pcgen plugins")
    for col in ("name", "version", "status", "models", "paper"):
        table.add_column(col, overflow="fold")
    colours = {"installed": "green", "not installed": "yellow", "broken": "red", "conflict": "red"}
    for r in rows:
        status = f"[{colours.get(r.status, 'white')}]{r.status}[/]"
        if r.status in ("broken", "conflict") and r.error:
            status += f" ({r.distribution or 'no distribution'} {r.version})\n{r.reason}"
        table.add_row(r.name, r.version or "-", status, ", ".join(r.models) or "-", r.paper or "-")
    out.print(table)
    out.print(
        f"data sets: {', '.join(sorted(registry.datasets))} | metrics: {', '.join(sorted(registry.metrics))} "
        f"| recipes: {', '.join(sorted(registry.recipes))}"
    )
    if errors:
        for r in rows:
            if r.error:
                out.print(f"\n[bold]{r.name}[/]:\n{r.error}")


@data_app.command("generate")
def data_generate(
    jet_type: Annotated[str, typer.Option(help="top, gluon, quark, w or z (or t, g, q).")] = "top",
    particles: Annotated[int, typer.Option(help="Leading constituents kept per jet (N).",
                                           **field_range(DataConfig, "num_particles"))] = 30,
    jets: Annotated[int, typer.Option(help="Number of jets to make.", **field_range(DataConfig, "num_jets"))] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same jets.",
                                      **field_range(DataConfig, "seed"))] = 0,
    workers: Annotated[int, typer.Option(help="Processes; 0 = all cores.", **field_range(DataConfig, "workers"))] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Output HDF5 file (default: the cache).")] = None,
    shards: Annotated[Optional[str], typer.Option(help="Make only these shards, e.g. '0-3,7' (for many machines).")] = None,
    detector: Annotated[bool, typer.Option(help="Apply the simple detector step (|eta|<2.5, pT>1 GeV).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file made differently.")] = False,
) -> None:
    """Make JetNet-like jets with Pythia 8 + FastJet (13 TeV, anti-kT R=0.8, pT around 1 TeV)."""
    from pcgen.config import DetectorConfig
    from pcgen.data.pythia import cached_path, generate_jets

    try:
        kind = JET_TYPES[jet_type.lower()]
    except KeyError:
        _fail(f"unknown jet type {jet_type!r}; use one of: top, gluon, quark, w, z")
    try:
        cfg = JetDataConfig(jet_type=kind, num_particles=particles, num_jets=jets, seed=seed, workers=workers,
                         detector=DetectorConfig(enabled=detector))
        selected = _parse_shards(shards) if shards else None
        path = generate_jets(cfg, out_file or cached_path(cfg), shards=selected, progress=not quiet,
                             overwrite=force or out_file is None)
    except (ValueError, *_user_errors()) as err:
        _report(err)
    out.print(f"wrote {path}")


SPLIT_PARTS = ("held-out", "training")


@data_app.command("split")
def data_split(
    run: Annotated[Path, typer.Option("--run", help="Run folder (made by `pcgen run`) whose split to write.")],
    out_file: Annotated[Path, typer.Option("--out", help="HDF5 file to write (pcgen's format, JetNet layout).")],
    part: Annotated[str, typer.Option(help="held-out (the clouds the run never trained on) or training.")] = "held-out",
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
) -> None:
    """Write a run's held-out (or training) clouds, split exactly as the run split them: the real clouds
    for `pcgen eval --reference`."""
    from pcgen.data.store import write_pointclouds
    from pcgen.safe_io import check_output_path
    from pcgen.train.runner import run_split

    if part not in SPLIT_PARTS:
        _fail(f"--part must be one of {', '.join(SPLIT_PARTS)}, got {part!r}")
    try:
        check_output_path(out_file, force)
        training, held_out = run_split(run, _registry())
        clouds = held_out if part == "held-out" else training
        write_pointclouds(clouds, out_file)
    except (ValueError, *_user_errors()) as err:
        _report(err)
    out.print(f"wrote the {len(clouds):,} {part} clouds of {run} to {out_file}")


def _parse_shards(text: str) -> list[int]:
    result: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"--shards expects numbers and ranges like '0-3,7', got {text!r}")
        result += list(range(int(lo), int(hi or lo) + 1))
    return result


@app.command("run")
def run_command(
    plugin: Annotated[Optional[str], typer.Option(help="Model to train (see `pcgen plugins`).")] = None,
    data: Annotated[Optional[str], typer.Option(help=DATA_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML config file.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override: KEY=VALUE, e.g. train.max_steps=500.")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the interrupted run in this folder.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train a model on its data, then sample, evaluate and report (TensorBoard logs in the run folder)."""
    from pcgen.config import load_config
    from pcgen.train.runner import execute, resume_config

    try:
        registry = _registry()
        if resume:
            resolved = resume_config(resume, set_ or [], registry)
        else:
            resolved = load_config(config, _with_data(data, set_), registry, plugin=plugin)
        result = execute(resolved, registry, run_dir=resume, resume=resume is not None, console=console,
                         show_progress=not quiet)
    except (*_user_errors(),) as err:
        _report(err)
    if not result.completed:
        console.print(f"resume with: pcgen run --resume {result.run_dir}")
        raise typer.Exit(exit_code(result.stop_signal) if result.stop_signal else 130)


@app.command("compare")
def compare_command(
    plugins: Annotated[str, typer.Option(help="Comma-separated models, e.g. 'igapt,gast,mdma'.")],
    data: Annotated[Optional[str], typer.Option(help=DATA_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML config shared by all models.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override for all: KEY=VALUE; for one model "
                                                      "only: PLUGIN.model.KEY=VALUE or PLUGIN.recipe.KEY=VALUE.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Comparison folder (default runs/compare-<time>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train several models on the same data, split, seed and budget; one metric table and figure for all."""
    from pcgen.compare import compare

    names = [p.strip() for p in plugins.split(",") if p.strip()]
    if not names:
        _fail("--plugins needs at least one model name")
    if len(set(names)) != len(names):
        _fail(f"--plugins names a model twice: {plugins}")
    try:
        compare(names, config, _with_data(data, set_), _registry(), out_dir, console, show_progress=not quiet)
    except (*_user_errors(),) as err:
        _report(err)


@app.command("sample")
def sample_command(
    checkpoint: Annotated[Optional[Path], typer.Option(help="Run folder or checkpoint file.")] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="Shipped trained weights by name (see `pcgen models`).")] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Number of clouds to generate, at least 1 (1e5 works too); "
                                             "default 10,000, or every cloud of --conditions.",
                                             parser=whole_number(1))] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Output HDF5 file.")] = Path("samples.h5"),
    conditions_file: Annotated[Optional[Path], typer.Option(
        "--conditions", help="HDF5 file of real clouds: generate one cloud with the conditions and multiplicity of "
        "each (the first --n).")] = None,
    condition: Annotated[Optional[list[str]], typer.Option(
        "--condition", help="A condition for every cloud, e.g. incident_energy=50GeV, pt=1TeV, num_particles=20 "
        "(repeat for several; `pcgen models` lists a model's conditions).")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.", min=0)] = 0,
    batch_size: Annotated[int, typer.Option(help="Clouds per forward pass; 0 = the best for the device (CPU: cache-sized passes, GPU: the largest that fits).", min=0)] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    variant: Annotated[Optional[str], typer.Option(help="Sampling variant of models that have several.")] = None,
    multiplicity: Annotated[str, typer.Option(help="auto, data (training distribution) or model (e.g. a stop token).")] = "auto",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Sampling setting, e.g. model.solver_steps=10.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
    precision: Annotated[str, typer.Option(help="32 (fp32) or bf16-mixed (bfloat16 autocast, for GPUs).")] = "32",
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks first (GPUs, many clouds).")] = False,
) -> None:
    """Generate point clouds from a trained model, written in pcgen's HDF5 format (JetNet layout)."""
    from rich.progress import Progress

    from pcgen.data.store import write_pointclouds
    from pcgen.safe_io import check_output_path
    from pcgen.sampling import load_trained
    from pcgen.train.budget import check_clouds_fit_in_memory
    from pcgen.train.trainer import resolve_device

    if (checkpoint is None) == (pretrained is None):
        _fail("give exactly one of --checkpoint (a run) or --pretrained (shipped weights, see `pcgen models`)")
    if conditions_file is not None and condition:
        _fail("give conditions either from a file (--conditions) or on the command line (--condition), not both")
    try:
        check_output_path(out_file, force)
        dev = resolve_device(device)
        if pretrained is not None:
            from pcgen.pretrained import load_pretrained

            trained = load_pretrained(pretrained, _registry(), dev, set_)
        else:
            trained = load_trained(checkpoint, _registry(), dev, set_)  # type: ignore[arg-type]
        like, given = None, None
        if conditions_file is not None:
            from pcgen.data.store import read_pointclouds

            like = read_pointclouds(conditions_file)
            like = like.subset(slice(0, min(n or len(like), len(like))))
            n = len(like)
        elif condition:
            from pcgen.data.conditions import parse_condition

            given = {spec.name: value for spec, value in (parse_condition(c, trained.kind) for c in condition)}
        n = n or 10_000
        check_clouds_fit_in_memory("--n", n, trained.data_info.max_particles, trained.data_info.num_features)
        with Progress(console=console) as bar:
            task = bar.add_task("sampling", total=n)
            clouds = trained.generate(n, batch_size or None, seed, dev, progress=lambda k: bar.advance(task, k),
                                      variant=variant, multiplicity=multiplicity, precision=precision,
                                      compile=compile_, like=like, conditions=given)
        write_pointclouds(clouds, out_file)
    except (ValueError, *_user_errors()) as err:
        _report(err)
    out.print(f"wrote {n} clouds from {trained.spec.name} to {out_file}")


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the models and shipped weights as JSON (for scripts).")] = False,
) -> None:
    """Every registered model with its recipe and plugin, and the trained weights that can be sampled."""
    from pcgen.pretrained import available, read_card_or_error

    registry = _registry()
    if as_json:
        import json

        models = {name: {"recipe": spec.recipe, "plugin": registry.owner(name).name, "conditions": list(spec.conditions),
                         "description": spec.description} for name, spec in sorted(registry.models.items())}
        shipped = []
        for spec, entry in available(registry):
            card = read_card_or_error(entry)
            shipped.append({"name": entry.name, "model": spec.name, "description": entry.description,
                            "sha256": entry.sha256, **{k: card.get(k) for k in CARD_SUMMARY}})
        print(json.dumps({"models": models, "weights": shipped}, indent=2))
        return
    table = Table(title="pcgen models")
    for col in ("model", "recipe", "variants / description"):
        table.add_column(col, overflow="fold")
    for name, spec in sorted(registry.models.items()):
        table.add_row(name, spec.recipe, spec.description[:90])
    out.print(table)
    weights = Table(title="trained weights (pcgen sample --pretrained NAME)")
    for col in ("name", "model", "data", "trained", "metrics (card units; model / truth)"):
        weights.add_column(col, overflow="fold")
    for spec, entry in available(registry):
        card = read_card_or_error(entry)
        metrics = card.get("metrics", {})
        shown = "  ".join(f"{k} {v['model'][0]:.3g} / {v['truth'][0]:.3g}" for k, v in list(metrics.items())[:3]
                          if isinstance(v, dict) and "model" in v and "truth" in v)
        trained = f"{card.get('training_minutes', '?')} min, {card.get('hardware', '?')}"
        weights.add_row(entry.name, spec.name, str(card.get("data", {}).get("summary", "-")), trained, shown or "-")
    out.print(weights)


CARD_SUMMARY = ("data", "hardware", "training_minutes", "training_steps", "metrics", "sampling")
"""The model-card fields `pcgen models --json` shows for each shipped weights file."""


@app.command("leaderboard")
def leaderboard_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for metrics.md, metrics.json and the figures.")],
    models: Annotated[Optional[str], typer.Option(help="Comma-separated weights or model names (default: every shipped model).")] = None,
    n: Annotated[int, typer.Option("--n", help="Jets per row (generated per seed, and real).", min=100)] = 3000,
    seeds: Annotated[int, typer.Option(help="Sampling seeds per model (rows show mean ± std).", min=1)] = 3,
    data_seed: Annotated[int, typer.Option(help="Seed of the fresh real jets; must differ from every card's training data.", min=0)] = 1000,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    force: Annotated[bool, typer.Option("--force", help="Write into --out even if it holds an earlier leaderboard.")] = False,
    copies: Annotated[bool, typer.Option("--copies", help="Also check how close each model's jets come to its card's "
                                         "training jets (makes or loads that data set; pcgen.metrics.copies).")] = False,
) -> None:
    """Rank every shipped model: sample each, evaluate all against the same fresh real jets with a truth row."""
    from pcgen import leaderboard
    from pcgen.safe_io import check_output_path
    from pcgen.train.trainer import resolve_device

    try:
        check_output_path(out_dir / "metrics.json", force)
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        board = leaderboard.rank(_registry(), names, n, seeds, data_seed, resolve_device(device), report=console.print,
                                 copies=copies)
        paths = leaderboard.write(board, out_dir)
    except (ValueError, OSError, *_user_errors()) as err:
        _report(err)
    out.print(board.table.to_rich(title=f"leaderboard ({n} jets per row, {seeds} seeds)"))
    out.print("wrote " + ", ".join(str(p) for p in paths))


@app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Option(help="Run folder or checkpoint file to export.")],
    out_file: Annotated[Path, typer.Option("--out", help="Weights file to write (.safetensors); the card goes beside it.")],
    name: Annotated[str, typer.Option(help="Name of the weights, e.g. epic-fm-top30.")],
    card: Annotated[Optional[Path], typer.Option(help="JSON with the card's other fields (data, hardware, metrics).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the weights and card files if they exist.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Default sampling setting, e.g. model.solver_steps=50.")] = None,
) -> None:
    """Export a trained model as safetensors weights with a model card (for shipping in a plugin)."""
    import json

    from pcgen.pretrained import export_pretrained
    from pcgen.safe_io import check_output_path

    if out_file.suffix != ".safetensors":
        _fail(f"--out must end in .safetensors, got {out_file}")
    try:
        for target in (out_file, out_file.with_suffix(".json")):
            check_output_path(target, force)
        extra = json.loads(card.read_text()) if card else {}
        written = export_pretrained(checkpoint, out_file, {"name": name, **extra}, set_)
    except (ValueError, *_user_errors()) as err:
        _report(err)
    out.print(f"wrote {out_file} (sha256 {written['sha256']}) and {out_file.with_suffix('.json')}")


@app.command("eval")
def eval_command(
    samples: Annotated[Path, typer.Option(help="Generated clouds (HDF5 from `pcgen sample`).")],
    reference: Annotated[Path, typer.Option(help="Real clouds to compare with (HDF5, JetNet layout; a run's "
                                            "held-out clouds: pcgen data split --run RUN --out FILE).")],
    truth: Annotated[Optional[Path], typer.Option(help="Independent real clouds for the truth baseline "
                                                  "(default: the reference's next --n clouds).")] = None,
    n: Annotated[int, typer.Option("--n", help="Clouds per row, on each side of every comparison.", min=20)] = 5000,
    efp: Annotated[bool, typer.Option(help="Compute EFP metrics (W1EFP, FPD, KPD).")] = True,
    jetnet_protocol: Annotated[bool, typer.Option("--jetnet-protocol", help="FPD/KPD by jetnet's defaults "
                                                  "(to reproduce published numbers) instead of pcgen's protocol.")] = False,
    efp_normalisation: Annotated[Optional[Path], typer.Option(help="metrics.json of a run (its training split's "
                                 "EFP normalisation for FPD/KPD); default: measured on the whole reference file.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Also write the table as Markdown here.")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Also write the table (values, errors, "
                                                      "clouds per row, protocol) as JSON here.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw the distributions (PNG) here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --markdown / --json / --plot files if they exist.")] = False,
) -> None:
    """The metric table of generated vs real clouds (jets: JetNet metrics, FPD/KPD by pcgen's protocol;
    showers: shower observables), with the truth baseline; optionally the distribution figure."""
    import json

    from pcgen.config import EvalConfig
    from pcgen.data.store import read_pointclouds
    from pcgen.metrics.evaluate import eval_sets, evaluate, metrics_for_kind, needs_normalisation
    from pcgen.metrics.inputs import check_evaluation_inputs
    from pcgen.metrics.sanity import applies_to, sanity_report
    from pcgen.safe_io import check_output_path, save_figure, write_text

    try:
        for target in (markdown, json_file, plot):
            if target is not None:
                check_output_path(target, force)
        registry = _registry()
        fake, real = read_pointclouds(samples), read_pointclouds(reference)
        truth_set = read_pointclouds(truth) if truth else None
        kind = check_evaluation_inputs({str(samples): fake, str(reference): real,
                                        **({str(truth): truth_set} if truth_set is not None else {})}, registry)
        sets = eval_sets(fake, real, truth_set, n, (samples.name, reference.name, truth.name if truth else None))
        if sets.jets < 20:
            _fail(f"only {sets.jets} clouds per row; need at least 20 ({'; '.join(sets.notes)})")
        cfg = EvalConfig(num_jets=sets.jets, efp=efp, protocol="jetnet" if jetnet_protocol else "pcgen")
        specs = metrics_for_kind(registry, kind.name)
        normalisation = None
        if needs_normalisation(specs, cfg):
            normalisation = _eval_normalisation(efp_normalisation, real, reference)
            sets.notes.append(f"FPD/KPD EFP normalisation: {normalisation.source}")
        for note in sets.notes:
            console.print(note)
        table = evaluate(sets.real, sets.fake, sets.truth, specs, cfg, model_name=samples.stem,
                         normalisation=normalisation, count_label=kind.noun)
        reports = kind.reports(sets.real, sets.fake) if kind.reports is not None else {}
        sanity = sanity_report(sets.fake, sets.real, real, (samples.name, reference.name)) if applies_to(real) else None
    except (ValueError, *_user_errors()) as err:
        _report(err)
    out.print(table.to_rich())
    if sanity is not None:
        out.print(sanity.to_rich())
    for name, text in reports.get("tables", {}).items():
        out.print(f"\n{name}:\n{text}", highlight=False, markup=False)
    try:
        if markdown:
            write_text(markdown, table.to_markdown() + "\n", "metric table")
        if json_file:
            inputs = {"samples": str(samples), "reference": str(reference), "truth": str(truth) if truth else None}
            write_text(json_file, json.dumps({**table.to_dict(), "inputs": inputs, "notes": sets.notes,
                                               "sanity": sanity.to_dict() if sanity else None,
                                               "reports": reports.get("json", {})}, indent=2) + "\n",
                       "metric table (JSON)")
        if plot:
            save_figure(kind.figure(sets.real, {samples.stem: sets.fake}, 50), plot)
            out.print(f"figure: {plot}")
            for name, figure in reports.get("figures", {}).items():
                extra = plot.with_name(f"{plot.stem}-{name}{plot.suffix}")
                save_figure(figure, extra)
                out.print(f"figure: {extra}")
    except OSError as err:
        _report(err)


def _eval_normalisation(path: Path | None, reference_set: PointClouds, reference: Path) -> EFPNormalisation:
    """The FPD/KPD normalisation of ``pcgen eval``: from a run's metrics.json, else measured on the
    whole reference file."""
    import json

    from pcgen.metrics.distances import EFPNormalisation
    from pcgen.metrics.evaluate import efp_normalisation

    if path is None:
        return efp_normalisation(reference_set, f"measured on all {len(reference_set)} jets of {reference.name} "
                                      "(no --efp-normalisation given)")
    try:
        data = json.loads(Path(path).read_text())
        stored = data.get("protocol", {}).get("efp_normalisation") if "protocol" in data else data
        return EFPNormalisation.from_dict(stored)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"--efp-normalisation {path}: no EFP normalisation in it ({err}); pass a run's "
                         "metrics.json written with pcgen's protocol") from None


def main() -> None:
    """Entry point of the ``pcgen`` script."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
