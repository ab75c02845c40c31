"""Evaluation: torchmetrics wrappers over jetnet's jet metrics, the protocol and the metric table.

Importing this package does not import jetnet (slow); the metrics import it when they compute.
"""

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
    fpd_sample_range,
    jet_efps,
    prepare_jets,
    relative_jet_mass,
    seeded_jetnet_rng,
)

__all__ = [
    "EFP_METRICS",
    "FPD",
    "JET_METRICS",
    "KPD",
    "TRUTH_ROW",
    "W1EFP",
    "W1M",
    "W1P",
    "JetPairMetric",
    "MetricTable",
    "compute_metric",
    "evaluate",
    "format_entry",
    "fpd_sample_range",
    "jet_efps",
    "metric_options",
    "prepare_jets",
    "relative_jet_mass",
    "seeded_jetnet_rng",
    "select_specs",
    "split_reference",
    "unit_label",
]
