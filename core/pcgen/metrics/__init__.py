"""Evaluation: torchmetrics jet and shower metrics, the protocol and the metric table.

EFPs, FPD and KPD are computed in torch (:mod:`pcgen.metrics.efp`, :mod:`pcgen.metrics.distances`);
the W1 jet metrics repeat jetnet's subsampling and distances without importing jetnet (tests check they
equal jetnet's).
"""

from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.metrics.distances import EFPNormalisation
from pcgen.metrics.efp import efps
from pcgen.metrics.evaluate import (
    TRUTH_ROW,
    MetricTable,
    compute_metric,
    evaluate,
    format_entry,
    metric_options,
    select_specs,
    split_reference,
    unit_label,
)
from pcgen.metrics.jet_metrics import (
    EFP_METRICS,
    FPD,
    JET_METRICS,
    KPD,
    W1EFP,
    W1M,
    W1P,
    JetPairMetric,
    jet_efps,
    prepare_jets,
)
from pcgen.metrics.shower_metrics import (
    SHOWER_LABELS,
    SHOWER_METRICS,
    ShowerPairMetric,
    ShowerValues,
    W1CentreOfGravity,
    W1EnergySum,
    W1HitEnergy,
    W1LayerEnergy,
    W1NumHits,
    W1RadialProfile,
    bootstrap_w1,
    infer_num_layers,
    prepare_showers,
)

__all__ = [
    "EFP_METRICS",
    "FPD",
    "JET_METRICS",
    "KPD",
    "SHOWER_LABELS",
    "SHOWER_METRICS",
    "TRUTH_ROW",
    "W1EFP",
    "W1M",
    "W1P",
    "EFPNormalisation",
    "JetPairMetric",
    "MetricTable",
    "ShowerPairMetric",
    "ShowerValues",
    "W1CentreOfGravity",
    "W1EnergySum",
    "W1HitEnergy",
    "W1LayerEnergy",
    "W1NumHits",
    "W1RadialProfile",
    "bootstrap_w1",
    "compute_metric",
    "efps",
    "evaluate",
    "format_entry",
    "infer_num_layers",
    "jet_efps",
    "metric_options",
    "prepare_jets",
    "prepare_showers",
    "relative_jet_mass",
    "select_specs",
    "split_reference",
    "unit_label",
]
