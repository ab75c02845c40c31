"""Turning a data set into training tensors: split, scaling, conditions, multiplicity distribution."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from pcgen.config import ConfigError, ResolvedConfig
from pcgen.data.conditions import ConditionModel, condition_values
from pcgen.data.multiplicity import MultiplicitySampler, jet_condition
from pcgen.data.pointclouds import PointClouds
from pcgen.data.preprocessing import FeatureScaler
from pcgen.specs import DataInfo, KindSpec, ModelSpec


@dataclass
class PreparedData:
    """The fixed train/test split and the training set in model space."""

    train: PointClouds
    test: PointClouds
    x: Tensor
    mask: Tensor
    cond: Tensor
    scaler: FeatureScaler
    multiplicity: MultiplicitySampler
    info: DataInfo
    kind: KindSpec
    conditions: ConditionModel | None = None
    """The conditions' preprocessing of a conditional model (``data.conditions``); None: unconditional."""

    def evaluation_clouds(self, num_jets: int) -> tuple[PointClouds, PointClouds]:
        """(held-out, training) clouds of an evaluation row: the first :func:`~pcgen.metrics.evaluate.clouds_per_row`
        of each (the held-out ones are compared with the model, the training ones form the truth row)."""
        from pcgen.metrics.evaluate import clouds_per_row

        n = clouds_per_row(num_jets, len(self.test), len(self.train))
        return self.test.subset(slice(0, n)), self.train.subset(slice(0, n))

    def model_space(self, clouds: PointClouds) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, mask, cond)`` of ``clouds`` as the model sees them: scaled like the training set."""
        return _model_space(clouds, self.scaler, self.kind, self.conditions)


def _model_space(clouds: PointClouds, scaler: FeatureScaler, kind: KindSpec,
                 conditions: ConditionModel | None) -> tuple[Tensor, Tensor, Tensor]:
    points, mask = torch.from_numpy(clouds.points).float(), torch.from_numpy(clouds.mask).bool()
    if conditions is None:
        return scaler.transform(points, mask), mask, jet_condition(mask)
    values = condition_values(clouds, kind, conditions.names)
    return scaler.transform(points, mask), mask, conditions.model_condition(mask, values)


def load_clouds(resolved: ResolvedConfig, registry: Any, progress: bool = True) -> PointClouds:
    """Load (generating into the cache if needed) the configured data set, its kind recorded in its meta."""
    data = resolved.run.data
    clouds = resolved.dataset.load(data, progress=progress)
    kind = resolved.kind or registry.kind_of(clouds)
    return replace(clouds, meta={**clouds.meta, "kind": kind.name}).with_mask_applied()


def split(clouds: PointClouds, resolved: ResolvedConfig) -> tuple[PointClouds, PointClouds]:
    """The run's fixed (training, held-out) split of ``clouds``: ``data.train_fraction`` by ``data.split_seed``."""
    data = resolved.run.data
    return clouds.split(data.train_fraction, data.split_seed)


def prepare(clouds: PointClouds, resolved: ResolvedConfig, spec: ModelSpec, kind: KindSpec) -> PreparedData:
    """Split with the configured seed (JetNet: 70/30), fit the scaler and the multiplicity on train only.

    The scaler is the model's (``spec.preprocessing``), with the logarithm of those of
    ``spec.log_features`` the data has, unless ``data.scaling`` / ``data.log_features`` / ``data.feature_spread``
    choose otherwise; the conditions of ``data.conditions`` (of the clouds' ``kind``) are fitted on train too.
    """
    data = resolved.run.data
    train, test = split(clouds, resolved)
    if len(train) < resolved.run.train.batch_size:
        raise ConfigError(
            f"the training split has {len(train):,} clouds, fewer than train.batch_size = "
            f"{resolved.run.train.batch_size:,}; generate more data (data.num_jets) or lower the batch size"
        )
    points = torch.from_numpy(train.points).float()
    mask = torch.from_numpy(train.mask).bool()
    names = tuple(train.feature_names)
    if data.log_features is not None:
        unknown = [f for f in data.log_features if f not in names]
        if unknown:
            raise ConfigError(f"data.log_features names {', '.join(unknown)}, which the data does not have; "
                             f"its features are {', '.join(names)}")
    wanted = spec.log_features if data.log_features is None else data.log_features
    logs = tuple(names.index(f) for f in wanted if f in names)
    spread = data.feature_spread or spec.feature_spread
    scaler = FeatureScaler(data.scaling or spec.preprocessing, logs, spread).fit(points, mask)  # type: ignore[arg-type]
    conditions = ConditionModel.fit(train, kind, data.conditions, data.split_seed) if data.conditions else None
    info = DataInfo(max_particles=train.max_particles, feature_names=names, cond_dim=1 + len(data.conditions),
                    kind=kind.name, condition_names=tuple(data.conditions))
    x, mask, cond = _model_space(train, scaler, kind, conditions)
    return PreparedData(
        train=train,
        test=test,
        x=x,
        mask=mask,
        cond=cond,
        scaler=scaler,
        multiplicity=MultiplicitySampler.from_mask(mask, spec.multiplicity),  # type: ignore[arg-type]
        info=info,
        kind=kind,
        conditions=conditions,
    )
