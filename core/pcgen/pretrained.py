"""Trained weights that ship: safetensors files with a model card, exported from runs and loaded by name.

A weights file holds the model's tensors (``model.<key>``), the feature scaler's (``scaler.<key>``)
the multiplicity histogram (``multiplicity.counts``) and, for a conditional model, the conditions'
preprocessing (``conditions.<key>``); its safetensors metadata holds the run
configuration and the data shape, so nothing but tensors and strings is ever read (no pickle).
The *model card* (JSON, same stem) records the config, the data recipe and its fingerprint, the
hardware, the training time and the metrics with their truth row. Plugins list their weights in
:attr:`pcgen.specs.ModelSpec.pretrained`; ``pcgen sample --pretrained NAME`` loads them after
checking the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from pydantic import ValidationError

from pcgen.config import default_cache_dir
from pcgen.data.jet_config import JetDataConfig
from pcgen.safe_io import atomic_path, file_operation
from pcgen.sampling import TrainedModel, trained_from_parts
from pcgen.specs import ModelSpec, PretrainedWeights
from pcgen.runtime.checkpoint import CheckpointError, load_checkpoint
from pcgen.runtime.nonfinite import NonFiniteError, nonfinite_tensors

WEIGHTS_FORMAT = "pcgen-pretrained-1"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` atomically with the umask's permissions (see :func:`pcgen.safe_io.atomic_path`)."""
    with atomic_path(path) as tmp, file_operation("write", path):
        write(tmp)


def export_pretrained(checkpoint: Path, weights_path: Path, card: dict[str, Any],
                      overrides: list[str] | None = None) -> dict[str, Any]:
    """Write a checkpoint's model as safetensors at ``weights_path`` and its card beside it (``.json``).

    ``card`` holds what the checkpoint cannot know (name, data recipe, hardware, metrics); the
    config, data shape and the weights' SHA-256 are added here. ``overrides`` (``model.KEY=VALUE``)
    set the sampling settings the weights are used with by default (e.g. the solver steps the
    card's metrics were measured with). Returns the card written.
    """
    from safetensors.torch import save_file

    from pcgen.config import ConfigError, apply_overrides, parse_override

    payload = load_checkpoint(checkpoint)
    for text in overrides or []:
        if parse_override(text)[0][0] != "model":
            raise ConfigError(f"--set {text!r}: only model.* sampling settings can be stored with exported weights")
    payload["config"] = json.dumps(apply_overrides(json.loads(payload["config"]), list(overrides or [])))
    bad = nonfinite_tensors(payload["model"])
    if bad:
        raise NonFiniteError(f"checkpoint {checkpoint} holds non-finite weights (e.g. {bad[0]}); nothing exported")
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().cpu().contiguous() for k, v in payload["model"].items()}
    strings: dict[str, str] = {}
    for part in ("scaler", "multiplicity", "conditions"):
        for key, value in payload.get(part, {}).items():
            if isinstance(value, torch.Tensor):
                tensors[f"{part}.{key}"] = value.detach().cpu().contiguous()
            else:
                strings[f"{part}.{key}"] = str(value)
    metadata = {"format": WEIGHTS_FORMAT, "config": payload["config"], "data_info": payload["data_info"],
                "strings": json.dumps(strings)}
    weights_path = Path(weights_path)
    if not _holds(weights_path, tensors, metadata):  # same weights: keep the file (and its checksum) as it is
        _atomic_write(weights_path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    full = {**card, "sha256": sha256_of(weights_path), "weights": weights_path.name,
            "config": json.loads(payload["config"]), "data_info": json.loads(payload["data_info"]),
            "training_steps": int(payload["loop"]["step"]), "training_seconds": float(payload["loop"]["elapsed"])}
    _atomic_write(weights_path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(full, indent=2) + "\n"))
    return full


def _holds(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bool:
    """Whether the safetensors file ``path`` exists with exactly these tensors and metadata. (safetensors
    writes its header in no fixed order, so equal content can differ in bytes; re-exporting unchanged
    weights must not change their SHA-256.)"""
    from safetensors import safe_open

    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}) != metadata or set(handle.keys()) != set(tensors):
                return False
            return all(torch.equal(handle.get_tensor(k), v) and handle.get_tensor(k).dtype == v.dtype
                       for k, v in tensors.items())
    except Exception:  # noqa: BLE001 - an unreadable file is simply rewritten
        return False


def resolve_location(location: str, sha256: str | None = None) -> Path:
    """The local file of a weights location: a package resource, a path, or a URL downloaded into the cache."""
    if location.startswith("package:"):
        package, _, inner = location.removeprefix("package:").partition("/")
        try:
            return Path(str(resources.files(package).joinpath(inner)))
        except ModuleNotFoundError as err:
            raise CheckpointError(f"weights {location}: package {package!r} is not installed") from err
    if location.startswith(("https://", "http://")):
        target = default_cache_dir() / "pretrained" / f"{(sha256 or 'unverified')[:16]}-{Path(location).name}"
        if not target.is_file():
            try:
                _atomic_write(target, lambda tmp: urllib.request.urlretrieve(location, tmp))  # noqa: S310
            except OSError as err:
                raise CheckpointError(f"could not download weights from {location}: {err}") from err
        return target
    return Path(location).expanduser()


def available(registry: Any) -> list[tuple[ModelSpec, PretrainedWeights]]:
    """Every pretrained weights entry of every registered model, sorted by name."""
    entries = [(spec, w) for spec in registry.models.values() for w in spec.pretrained]
    return sorted(entries, key=lambda e: e[1].name)


def find_pretrained(registry: Any, name: str) -> tuple[ModelSpec, PretrainedWeights]:
    """The model and weights entry called ``name``; a clear error listing the available names otherwise."""
    entries = {w.name: (spec, w) for spec, w in available(registry)}
    if name not in entries:
        names = ", ".join(entries) or "none (no installed plugin ships weights)"
        raise CheckpointError(f"no pretrained weights named {name!r}; available: {names} (see `pcgen models`)")
    return entries[name]


MACHINE_FIELDS = ("seed", "num_jets", "cache_dir", "workers")
"""Data-recipe fields that do not make the physics: the seed and size (a leaderboard chooses its own), and where and how
fast the training machine made its data (this machine's defaults apply)."""

PREPROCESSING_FIELDS = ("scaling", "log_features", "feature_spread")
"""Data-config fields that say how a model scaled the features it trained on, not how the jets were made."""

NOT_THE_RECIPE = MACHINE_FIELDS + PREPROCESSING_FIELDS


def with_defaults(recipe: dict[str, Any]) -> dict[str, Any]:
    """A card's data recipe with every field the card leaves out at its default, so that cards written
    before a field existed (e.g. ``conditions``) compare equal to newer ones; as given where it is not
    a valid jet data recipe."""
    try:
        return JetDataConfig.model_validate(recipe).model_dump(mode="json")
    except ValidationError:
        return dict(recipe)


def physics_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The part of a data recipe that makes the physics: defaults filled in, seed, size, machine and
    preprocessing fields left out. Two cards (or a card and a run) with equal ones trained on the same data."""
    physics = {k: v for k, v in recipe.items() if k not in NOT_THE_RECIPE}
    return {k: v for k, v in with_defaults(physics).items() if k not in NOT_THE_RECIPE}


def shipped_weights_hint(spec: ModelSpec, data_settings: dict[str, Any]) -> str:
    """One line for the end of a run: the trained weights ``spec`` ships for the run's data (``data_settings``:
    the run's data config; the same :func:`physics_recipe` as the card's),
    the card's W1M against its truth row, and the commands that sample them and rank every shipped model;
    ``""`` when none matches or a card is unreadable."""
    physics = physics_recipe(data_settings)
    lines = []
    for entry in spec.pretrained:
        card = read_card_or_error(entry)
        if "error" in card or physics_recipe(card.get("data", {}).get("recipe", {})) != physics:
            continue
        w1m = card.get("metrics", {}).get("w1m", {})
        quality = (f"; its card: W1M {w1m['model'][0]:.2f} vs truth {w1m['truth'][0]:.2f} (×10⁻³)"
                   if "model" in w1m and "truth" in w1m else "")
        minutes = card.get("training_minutes")
        trained = f"trained {minutes:g} min" if isinstance(minutes, int | float) else "trained"
        lines.append(f"{entry.name}: {trained}{quality}; "
                     f"`pcgen sample --pretrained {entry.name} --n 3000 --out samples.h5`")
    if not lines:
        return ""
    return ("trained weights of this model ship: " + "; ".join(lines)
            + ". Every shipped model ranked against fresh real data: `pcgen leaderboard --out leaderboard`")


def read_card(weights: PretrainedWeights) -> dict[str, Any]:
    """The model card of a weights entry (empty when it has none)."""
    location = weights.card_location or weights.location.rsplit(".", 1)[0] + ".json"
    path = resolve_location(location)
    return json.loads(path.read_text()) if path.is_file() else {}


def read_card_or_error(weights: PretrainedWeights) -> dict[str, Any]:
    """:func:`read_card`, or ``{"error": why}`` when the card cannot be read (for listings that go on)."""
    try:
        return read_card(weights)
    except (OSError, ValueError) as err:  # CheckpointError is a ValueError
        return {"error": str(err)}


def load_weights_file(path: Path, registry: Any, device: str | torch.device = "cpu",
                      sha256: str | None = None, overrides: list[str] | None = None) -> TrainedModel:
    """Rebuild a trained model from a pcgen safetensors file, after checking its SHA-256 when given."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if sha256 is not None and sha256_of(path) != sha256:
        raise CheckpointError(f"weights file {path} does not match its checksum (expected sha256 {sha256}); "
                              "it is corrupt or not the published file: delete it and fetch it again")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != WEIGHTS_FORMAT:
            raise CheckpointError(f"{path} is not a pcgen weights file (format {WEIGHTS_FORMAT})")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has no __iter__
    parts: dict[str, dict[str, Any]] = {"model": {}, "scaler": {}, "multiplicity": {}, "conditions": {}}
    for key, value in [*tensors.items(), *json.loads(metadata["strings"]).items()]:
        part, _, inner = key.partition(".")
        parts[part][inner] = value
    return trained_from_parts(json.loads(metadata["config"]), json.loads(metadata["data_info"]), parts["model"],
                              parts["scaler"], parts["multiplicity"], registry, device, overrides,
                              parts["conditions"] or None)


def load_pretrained(name: str, registry: Any, device: str | torch.device = "cpu",
                    overrides: list[str] | None = None) -> TrainedModel:
    """The trained model of the weights called ``name`` (see :func:`available`)."""
    _spec, weights = find_pretrained(registry, name)
    path = resolve_location(weights.location, weights.sha256)
    return load_weights_file(path, registry, device, weights.sha256, overrides)
