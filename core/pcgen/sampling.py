"""Generating point clouds from a model, and loading trained models from checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcgen.data.jetfeatures import RELATIVE_JET_GLOBALS, jet_features_gev, relative_jet_features
from pcgen.data.multiplicity import MultiplicitySampler, jet_condition, mask_for
from pcgen.data.pointclouds import JET_GLOBALS, PointClouds, sort_key, sort_particles
from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import GenerativeModel
from pcgen.specs import DataInfo, ModelSpec
from pcgen.train.checkpoint import load_checkpoint
from pcgen.train.cpu_memory import keep_freed_memory
from pcgen.train.nonfinite import NonFiniteError, check_finite_clouds, nonfinite_tensors
from pcgen.train.precision import autocast, compile_submodules


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class TrainedModel:
    """Everything needed to generate physical point clouds from a model."""

    spec: ModelSpec
    model: GenerativeModel
    scaler: FeatureScaler
    multiplicity: MultiplicitySampler
    data_info: DataInfo
    config: dict[str, Any]

    @torch.inference_mode()
    def generate(
        self, num: int, batch_size: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
        progress: Any = None, variant: str | None = None, multiplicity: str = "auto",
        precision: str = "32", compile: bool = False,
    ) -> PointClouds:
        """``num`` clouds in physical units (under ``torch.inference_mode``: no autograd bookkeeping),
        each sorted as real files are (jets by pt_rel, showers by E, highest first; padding last).

        ``variant`` picks one of the model's sampling variants (``model.variants``; None = default).
        ``multiplicity``: ``"data"`` draws multiplicities from the training distribution, ``"model"``
        lets the model draw them (models with ``draws_multiplicity``, e.g. where a stop token comes),
        ``"auto"`` the model's way if it has one, else the data's. ``batch_size``: clouds per
        forward pass; None = the best size for the device (:func:`largest_batch`: on a CPU the
        passes that keep their activations in the cache, on a GPU the largest batch that fits, halved
        while memory runs out). ``precision="bf16-mixed"`` samples under bf16
        autocast; ``compile=True`` compiles the model's networks first (worth it for many clouds).
        """
        if multiplicity not in ("auto", "data", "model"):
            raise ValueError(f"multiplicity must be 'auto', 'data' or 'model', got {multiplicity!r}")
        own = self.model.draws_multiplicity
        if multiplicity == "model" and not own:
            raise ValueError(f"{self.spec.name} does not draw its own multiplicities; use multiplicity='data'")
        use_model = own and multiplicity != "data"
        was_training, previous = self.model.training, self.model.variant
        self.model.select_variant(variant)
        self.model.eval().to(device)
        device = torch.device(device)
        if compile:
            compile_submodules(self.model)
        if device.type == "cpu":
            keep_freed_memory()
        n_max = self.data_info.max_particles
        chunks, masks = [], []
        batch = batch_size or largest_batch(device, num, n_max)
        with seeded(seed), autocast(device, precision):
            counts = None if use_model else self.multiplicity.sample(num)
            start = 0
            while start < num:
                size = min(batch, num - start)
                try:
                    if use_model:
                        x, mask = self.model.sample_with_multiplicity(size, n_max)
                        mask = mask.bool()
                    else:
                        mask = mask_for(counts[start : start + size], n_max).to(device)  # type: ignore[index]
                        x = self.model.sample(mask, jet_condition(mask))
                except torch.OutOfMemoryError:
                    if batch_size is not None or batch == 1:
                        raise
                    batch = max(1, batch // 2)  # the largest batch that fits: halve and retry
                    torch.cuda.empty_cache()
                    continue
                chunks.append(self.scaler.inverse(x.float().cpu(), mask.cpu()).numpy())
                masks.append(mask.cpu().numpy())
                start += size
                if progress is not None:
                    progress(len(mask))
        self.model.train(was_training)
        self.model.select_variant(previous)
        points, mask = np.concatenate(chunks), np.concatenate(masks)
        check_finite_clouds(points, mask, f"clouds generated by {self.spec.name}",
                            "the model has diverged (check its training losses) or sample from an earlier checkpoint")
        points, mask = sort_particles(points, mask, sort_key(self.data_info.kind, tuple(self.data_info.feature_names)))
        cloud_globals, global_names = generated_globals(self.data_info.kind, points, mask)
        return PointClouds(
            points=points.astype(np.float32),
            mask=mask,
            feature_names=self.data_info.feature_names,
            globals=cloud_globals,
            global_names=global_names,
            meta={"source": "generated", "model": self.spec.name, "variant": variant or self.model.variants[0],
                  "kind": self.data_info.kind, "multiplicity": "model" if use_model else "data"},
        )


CPU_PASS_PARTICLES = 4096
"""Particles per generation pass on a CPU: activations of a few MB stay in the cache. Measured on a
2-core EPYC (docs/results.md), 1,024-jet passes of N=30 were 1.3-2x slower per jet than 136-jet ones."""


def largest_batch(device: torch.device, num: int, max_particles: int = 30) -> int:
    """First batch size to try when generating ``num`` clouds of up to ``max_particles`` with no batch
    size given: on a CPU ``CPU_PASS_PARTICLES // max_particles`` clouds (larger passes are slower per
    cloud there), on a GPU up to 65,536 (generation halves it while memory runs out)."""
    if device.type == "cuda":
        return min(num, 65_536) or 1
    return max(1, min(num, CPU_PASS_PARTICLES // max(1, max_particles)))


def generated_globals(
    kind: str, points: np.ndarray, mask: np.ndarray, jet_axis: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-cloud quantities of generated clouds and their names.

    Jets: with ``jet_axis`` = (pT in GeV, eta) of the jets the particles are relative to, (pt, eta,
    mass, num_particles) in GeV under the names real files use; without it (a model generating
    relative coordinates does not know the jet's pT) the relative quantities
    :data:`~pcgen.data.jetfeatures.RELATIVE_JET_GLOBALS` (jet_pt_rel, jet_eta_rel, mass_over_pt,
    num_particles). Showers: (incident energy, hits), the incident energy NaN (an unconditional
    model does not know it).
    """
    if kind == "showers":
        from pcgen.data.calo import SHOWER_GLOBALS

        hits = mask.sum(axis=1).astype(np.float32)
        return np.stack([np.full_like(hits, np.nan), hits], axis=1), SHOWER_GLOBALS
    if jet_axis is not None:
        return jet_features_gev(points, mask, *jet_axis), JET_GLOBALS
    return relative_jet_features(points, mask), RELATIVE_JET_GLOBALS


def load_trained(
    checkpoint: Path, registry: Any, device: str | torch.device = "cpu", overrides: list[str] | None = None
) -> TrainedModel:
    """Rebuild a trained model from a checkpoint (run folder or file), safely (``weights_only``).

    ``overrides`` (``model.KEY=VALUE``) change sampling settings that leave the weights alone, e.g.
    ``model.solver_steps=10`` of a flow-matching model.
    """
    payload = load_checkpoint(checkpoint, map_location="cpu")
    bad = nonfinite_tensors(payload["model"])
    if bad:
        raise NonFiniteError(f"checkpoint {checkpoint} holds non-finite weights ({len(bad)} of {len(payload['model'])} "
                             f"tensors, e.g. {bad[0]}); the training diverged, sample from an earlier checkpoint")
    return trained_from_parts(json.loads(payload["config"]), json.loads(payload["data_info"]), payload["model"],
                              payload["scaler"], payload["multiplicity"], registry, device, overrides)


def trained_from_parts(
    raw_config: dict[str, Any], data_info: dict[str, Any], model_state: dict[str, torch.Tensor],
    scaler_state: dict[str, Any], multiplicity_state: dict[str, Any], registry: Any, device: str | torch.device = "cpu",
    overrides: list[str] | None = None,
) -> TrainedModel:
    """A :class:`TrainedModel` from what a checkpoint or a pretrained-weights file holds.

    ``overrides`` may only touch the ``model`` table (sampling settings such as solver steps); a
    change that alters the architecture fails when the weights are loaded.
    """
    from pcgen.config import ConfigError, apply_overrides, parse_override, resolve

    for text in overrides or []:
        if parse_override(text)[0][0] != "model":
            raise ConfigError(f"--set {text!r}: only model.* settings can change at sampling time")
    raw_config = apply_overrides(raw_config, list(overrides or []))
    resolved = resolve(raw_config, registry)
    spec = registry.model(resolved.run.plugin)
    info = DataInfo(**{**data_info, "feature_names": tuple(data_info["feature_names"])})
    model = registry.build_model(spec, resolved.model, info)
    try:
        model.load_state_dict(model_state)
    except RuntimeError as err:
        raise ConfigError(f"the weights do not fit a {spec.name} built with these settings: {str(err)[:300]}") from err
    model.to(device).eval()
    return TrainedModel(
        spec=spec,
        model=model,
        scaler=FeatureScaler.from_state_dict(scaler_state),
        multiplicity=MultiplicitySampler.from_state_dict(multiplicity_state),
        data_info=info,
        config=raw_config,
    )
