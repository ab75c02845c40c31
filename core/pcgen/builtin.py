"""The core's own registrations, made through the same hooks a third-party plugin uses."""

from __future__ import annotations

from pcgen.hookspecs import hookimpl
from pcgen.specs import DatasetSpec, KindSpec, MetricSpec, RecipeSpec


@hookimpl
def pcgen_register_datasets() -> list[DatasetSpec]:
    from pcgen.data.shower_sim import CALO_DATASETS
    from pcgen.data.sources import DATASETS

    return list(DATASETS) + list(CALO_DATASETS)


@hookimpl
def pcgen_register_kinds() -> list[KindSpec]:
    from pcgen.kinds.jets import JETS
    from pcgen.kinds.showers import SHOWERS

    return [JETS, SHOWERS]


@hookimpl
def pcgen_register_metrics() -> list[MetricSpec]:
    from pcgen.metrics.jet_metrics import JET_METRICS
    from pcgen.metrics.shower_metrics import SHOWER_METRICS

    return list(JET_METRICS) + list(SHOWER_METRICS)


@hookimpl
def pcgen_register_recipes() -> list[RecipeSpec]:
    from pcgen.train.adversarial import ADVERSARIAL
    from pcgen.train.autoregressive import AUTOREGRESSIVE
    from pcgen.train.likelihood import LIKELIHOOD
    from pcgen.train.objective import OBJECTIVE
    from pcgen.train.staged import STAGED

    return [ADVERSARIAL, LIKELIHOOD, OBJECTIVE, AUTOREGRESSIVE, STAGED]
