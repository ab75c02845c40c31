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

from pcgen.data.conditions import ConditionError, ConditionModel, condition_values
from pcgen.data.multiplicity import MultiplicitySampler, jet_condition, mask_for
from pcgen.data.pointclouds import PointClouds, sort_key, sort_particles
from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import GenerativeModel
from pcgen.specs import DataInfo, KindSpec, ModelSpec
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.runtime.cpu_memory import keep_freed_memory
from pcgen.runtime.nonfinite import NonFiniteError, check_finite_clouds, nonfinite_tensors
from pcgen.runtime.precision import autocast, compile_submodules
from pcgen.runtime.workers import map_in_processes
from pcgen.threads import generation_workers


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def batch_seed(seed: int, start: int) -> int:
    """The seed of the generation batch whose first cloud is number ``start`` of a request seeded ``seed``."""
    return int(np.random.SeedSequence([seed % 2**64, start]).generate_state(1, np.uint64)[0]) >> 1


@dataclass
class TrainedModel:
    """Everything needed to generate physical point clouds from a model."""

    spec: ModelSpec
    model: GenerativeModel
    scaler: FeatureScaler
    multiplicity: MultiplicitySampler
    data_info: DataInfo
    config: dict[str, Any]
    kind: KindSpec
    conditions: ConditionModel | None = None
    """The preprocessing of the conditions of a conditional model; None: unconditional."""

    @property
    def conditional(self) -> bool:
        """Whether the model takes conditions beyond the multiplicity."""
        return self.conditions is not None

    def _given(self, num: int, like: PointClouds | None, conditions: dict[str, np.ndarray] | None,
               ) -> tuple[int, np.ndarray | None, torch.Tensor | None]:
        """``(num, condition values (num, C) or None, multiplicities or None)`` of a request."""
        if like is not None:
            values = condition_values(like, self.kind, self.conditions.names, "the conditioning clouds") \
                if self.conditions is not None else None
            return len(like), values, torch.from_numpy(np.minimum(like.multiplicity, self.data_info.max_particles))
        if not conditions:
            return num, None, None
        counts = None
        names = {c.name: c for c in self.kind.conditions}
        unknown = [n for n in conditions if n not in names]
        if unknown:
            raise ConditionError(f"{self.kind.noun} have no condition {', '.join(unknown)}; theirs: {', '.join(names)}")
        wanted = self.conditions.names if self.conditions is not None else ()
        ignored = [n for n in conditions if n not in wanted and not names[n].multiplicity]
        if ignored:
            takes = ", ".join(wanted) if wanted else "none but the multiplicity"
            raise ConditionError(f"{self.spec.name} was not trained on {', '.join(ignored)} (its conditions: {takes})")
        for name, spec in names.items():
            if spec.multiplicity and name in conditions:
                counts = torch.tensor(np.broadcast_to(np.asarray(conditions[name], np.float64), (num,))).round().long()
                if (counts < 1).any() or (counts > self.data_info.max_particles).any():
                    raise ConditionError(f"the {name} must be between 1 and {self.data_info.max_particles} (the "
                                         f"model's N), got {int(counts.min())}-{int(counts.max())}")
        missing = [n for n in wanted if n not in conditions]
        if missing:
            raise ConditionError(f"{self.spec.name} is conditioned on {', '.join(wanted)}; give every one "
                                 f"(missing: {', '.join(missing)}), or none to draw them from the training set")
        values = np.stack([np.broadcast_to(np.asarray(conditions[n], np.float64), (num,)) for n in wanted], 1) \
            if wanted else None
        return num, values, counts

    def generate(
        self, num: int, batch_size: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
        progress: Any = None, variant: str | None = None, multiplicity: str = "auto",
        precision: str = "32", compile: bool = False, like: PointClouds | None = None,
        conditions: dict[str, np.ndarray] | None = None, workers: int | None = None,
    ) -> PointClouds:
        """``num`` clouds in physical units, each sorted as real files are (jets by pt_rel, showers by E,
        highest first; padding last). The networks run under ``torch.inference_mode`` (no autograd
        bookkeeping); the model moves to ``device`` outside it, so that a model still being trained keeps
        parameters autograd can use.

        ``like``: clouds whose multiplicities and conditions the generated ones take, one each (``num``
        is then ``len(like)``). ``conditions``: ``{name: value or (num,) values}`` in the conditions'
        units; a conditional model needs all of its own (a multiplicity condition such as
        ``num_particles`` is optional: without it multiplicities are drawn from training clouds with
        the nearest conditions). A conditional model given neither draws (conditions, multiplicity)
        pairs of its training set. The conditions are recorded in the clouds' globals.

        ``variant`` picks one of the model's sampling variants (``model.variants``; None = default).
        ``multiplicity``: ``"data"`` draws multiplicities from the training distribution, ``"model"``
        lets the model draw them (models with ``draws_multiplicity``, e.g. where a stop token comes),
        ``"auto"`` the model's way if it has one, else the data's. ``batch_size``: clouds per
        forward pass; None = the best size for the device (:func:`largest_batch`: on a CPU the
        passes that keep their activations in the cache, on a GPU the largest batch that fits, halved
        while memory runs out). ``precision="bf16-mixed"`` samples under bf16
        autocast; ``compile=True`` compiles the model's networks first (worth it for many clouds).

        Each batch draws its random numbers from its own seed (``seed`` and the batch's first cloud),
        so the clouds are the same however the batches are shared out. On a CPU ``workers`` forked
        one-thread processes generate the batches side by side (None: :func:`generation_workers`;
        1: all here, with the process's torch threads).
        """
        if multiplicity not in ("auto", "data", "model"):
            raise ValueError(f"multiplicity must be 'auto', 'data' or 'model', got {multiplicity!r}")
        own = self.model.draws_multiplicity
        if multiplicity == "model" and not own:
            raise ValueError(f"{self.spec.name} does not draw its own multiplicities; use multiplicity='data'")
        num, values, counts = self._given(num, like, conditions)
        use_model = own and multiplicity != "data" and counts is None and values is None
        was_training, previous = self.model.training, self.model.variant
        self.model.select_variant(variant)
        self.model.eval().to(device)
        device = torch.device(device)
        if compile:
            compile_submodules(self.model)
        if device.type == "cpu":
            keep_freed_memory()
        n_max = self.data_info.max_particles
        batch = batch_size or largest_batch(device, num, n_max)
        with seeded(seed):
            if self.conditions is not None and values is None:
                values, drawn = self.conditions.draw(num)
                counts = drawn if counts is None else counts
            if counts is None and not use_model:
                counts = self.conditions.multiplicities_for(values) if self.conditions is not None \
                    else self.multiplicity.sample(num)

        def one_batch(start_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            start, size = start_size
            with torch.inference_mode(), seeded(batch_seed(seed, start)), autocast(device, precision):
                if use_model:
                    x, mask = self.model.sample_with_multiplicity(size, n_max)
                    mask = mask.bool()
                else:
                    mask = mask_for(counts[start : start + size], n_max).to(device)  # type: ignore[index]
                    x = self.model.sample(mask, self._condition(mask, values, start))
                return self.scaler.inverse(x.float().cpu(), mask.cpu()).numpy(), mask.cpu().numpy()

        workers = (workers or generation_workers()) if device.type == "cpu" and not compile else 1
        chunks, masks = [], []

        def keep(points: np.ndarray, mask: np.ndarray) -> None:
            chunks.append(points)
            masks.append(mask)
            if progress is not None:
                progress(len(mask))

        if workers > 1:
            parts = [(start, min(batch, num - start)) for start in range(0, num, batch)]
            for points, mask in map_in_processes(one_batch, parts, workers):
                keep(points, mask)
        else:
            start = 0
            while start < num:
                size = min(batch, num - start)
                try:
                    keep(*one_batch((start, size)))
                except torch.OutOfMemoryError:
                    if batch_size is not None or batch == 1:
                        raise
                    batch = max(1, batch // 2)  # the largest batch that fits: halve and retry
                    torch.cuda.empty_cache()
                    continue
                start += size
        self.model.train(was_training)
        self.model.select_variant(previous)
        points, mask = np.concatenate(chunks), np.concatenate(masks)
        check_finite_clouds(points, mask, f"clouds generated by {self.spec.name}",
                            "the model has diverged (check its training losses) or sample from an earlier checkpoint")
        points, mask = sort_particles(points, mask, sort_key(self.kind.sort_feature, tuple(self.data_info.feature_names)))
        given = dict(zip(self.conditions.names, values.T, strict=True)) if self.conditions is not None else {}
        cloud_globals, global_names = self.kind.generated_globals(points, mask, given)
        return PointClouds(
            points=points.astype(np.float32),
            mask=mask,
            feature_names=self.data_info.feature_names,
            globals=cloud_globals,
            global_names=global_names,
            meta={"source": "generated", "model": self.spec.name, "variant": variant or self.model.variants[0],
                  "kind": self.kind.name, "multiplicity": "model" if use_model else "data",
                  "conditions": list(given)},
        )

    def _condition(self, mask: torch.Tensor, values: np.ndarray | None, start: int) -> torch.Tensor:
        """The model's ``cond`` of the clouds ``start:start + len(mask)``."""
        if self.conditions is None or values is None:
            return jet_condition(mask)
        return self.conditions.model_condition(mask, values[start : start + len(mask)])


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
                              payload["scaler"], payload["multiplicity"], registry, device, overrides,
                              payload.get("conditions"))


def trained_from_parts(
    raw_config: dict[str, Any], data_info: dict[str, Any], model_state: dict[str, torch.Tensor],
    scaler_state: dict[str, Any], multiplicity_state: dict[str, Any], registry: Any, device: str | torch.device = "cpu",
    overrides: list[str] | None = None, conditions_state: dict[str, Any] | None = None,
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
    spec = resolved.spec
    info = DataInfo(**{**data_info, "feature_names": tuple(data_info["feature_names"]),
                       "condition_names": tuple(data_info.get("condition_names", ()))})
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
        kind=registry.kind(info.kind),
        conditions=ConditionModel.from_state_dict(conditions_state) if conditions_state else None,
    )
