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

from pcgen.data.jetfeatures import relative_jet_features
from pcgen.data.multiplicity import MultiplicitySampler, jet_condition, mask_for
from pcgen.data.pointclouds import JET_GLOBALS, PointClouds
from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import GenerativeModel
from pcgen.specs import DataInfo, ModelSpec
from pcgen.train.checkpoint import load_checkpoint


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

    @torch.no_grad()
    def generate(
        self, num: int, batch_size: int = 1024, seed: int = 0, device: str | torch.device = "cpu",
        progress: Any = None, variant: str | None = None, multiplicity: str = "auto",
    ) -> PointClouds:
        """``num`` clouds in physical units.

        ``variant`` picks one of the model's sampling variants (``model.variants``; None = default).
        ``multiplicity``: ``"data"`` draws multiplicities from the training distribution, ``"model"``
        lets the model draw them (models with ``draws_multiplicity``, e.g. where a stop token comes),
        ``"auto"`` the model's way if it has one, else the data's.
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
        n_max = self.data_info.max_particles
        chunks, masks = [], []
        with seeded(seed):
            counts = None if use_model else self.multiplicity.sample(num)
            for start in range(0, num, batch_size):
                size = min(batch_size, num - start)
                if use_model:
                    x, mask = self.model.sample_with_multiplicity(size, n_max)
                    mask = mask.bool()
                else:
                    mask = mask_for(counts[start : start + size], n_max).to(device)  # type: ignore[index]
                    x = self.model.sample(mask, jet_condition(mask))
                chunks.append(self.scaler.inverse(x.float().cpu(), mask.cpu()).numpy())
                masks.append(mask.cpu().numpy())
                if progress is not None:
                    progress(len(mask))
        self.model.train(was_training)
        self.model.select_variant(previous)
        points, mask = np.concatenate(chunks), np.concatenate(masks)
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


def generated_globals(kind: str, points: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-cloud quantities of generated clouds: jets' (pt, eta, mass, n) from their particles;
    showers' (incident energy, hits), the incident energy NaN (an unconditional model does not know it)."""
    if kind == "showers":
        from pcgen.data.calo import SHOWER_GLOBALS

        hits = mask.sum(axis=1).astype(np.float32)
        return np.stack([np.full_like(hits, np.nan), hits], axis=1), SHOWER_GLOBALS
    return relative_jet_features(points, mask), JET_GLOBALS


def load_trained(
    checkpoint: Path, registry: Any, device: str | torch.device = "cpu", overrides: list[str] | None = None
) -> TrainedModel:
    """Rebuild a trained model from a checkpoint (run folder or file), safely (``weights_only``).

    ``overrides`` (``model.KEY=VALUE``) change sampling settings that leave the weights alone, e.g.
    ``model.solver_steps=10`` of a flow-matching model.
    """
    payload = load_checkpoint(checkpoint, map_location="cpu")
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
    model = spec.build(resolved.model, info)
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
