"""Starting a run from trained weights (``train.init_weights``): fine-tuning and distillation.

The source is shipped weights (``pretrained:NAME``) or a run folder / checkpoint file. Only the
model's tensors are taken over: the optimiser, schedule and step count start afresh. The run must
preprocess its data exactly as the source did (same data recipe and scaling), otherwise the weights
would be fed numbers in another space; that is checked, not assumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pcgen.config import ConfigError
from pcgen.data.preprocessing import FeatureScaler

PRETRAINED_PREFIX = "pretrained:"


def load_source(source: str, registry: Any) -> Any:
    """The :class:`pcgen.sampling.TrainedModel` of ``pretrained:NAME`` or of a run folder / checkpoint."""
    from pcgen.pretrained import load_pretrained
    from pcgen.sampling import load_trained

    if source.startswith(PRETRAINED_PREFIX):
        return load_pretrained(source.removeprefix(PRETRAINED_PREFIX), registry)
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"train.init_weights={source!r}: no such run folder or checkpoint; give a path or "
                          "pretrained:NAME (see `pcgen models`)")
    return load_trained(path, registry)


def same_scaling(ours: FeatureScaler, theirs: FeatureScaler) -> bool:
    """Whether two fitted scalers map physical features to the same model space."""
    a, b = ours.state_dict(), theirs.state_dict()
    if a["kind"] != b["kind"]:
        return False
    return all(torch.allclose(torch.as_tensor(a[k]).double(), torch.as_tensor(b[k]).double(), rtol=1e-5, atol=1e-7)
               for k in ("shift", "scale", "low", "high", "log_features"))


def start_from(model: nn.Module, scaler: FeatureScaler, plugin: str, source: str, registry: Any) -> None:
    """Load the tensors of ``source`` into the freshly built ``model`` of ``plugin`` (in place).

    Raises :class:`pcgen.config.ConfigError` when the source is another model, preprocesses its data
    differently, or has tensors of other shapes.
    """
    trained = load_source(source, registry)
    if trained.spec.name != plugin:
        raise ConfigError(f"train.init_weights={source!r} holds a {trained.spec.name} model, this run trains {plugin}")
    if not same_scaling(scaler, trained.scaler):
        raise ConfigError(f"train.init_weights={source!r} was trained on data preprocessed differently from this "
                          "run's; use the data recipe and data.scaling of its card (`pcgen models --json`)")
    try:
        model.load_state_dict(trained.model.state_dict())
    except RuntimeError as err:
        raise ConfigError(f"train.init_weights={source!r}: the weights do not fit this run's {plugin} "
                          f"(architecture settings differ): {str(err)[:300]}") from err
