"""The ``[data]`` settings of jet data sets (the jet kind's :attr:`~pcgen.specs.KindSpec.data_config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pcgen.config import DataConfig, DetectorConfig


class JetDataConfig(DataConfig):
    """``[data]`` of jet data sets: which jets Pythia makes (or JetNet's files hold)."""

    jet_type: Literal["g", "q", "t", "w", "z"] = Field("t", description="g, q (light quark), t, w or z jets.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    min_jet_pt: float = Field(800.0, ge=0, description="Measured jet pT window, lower edge (GeV).")
    max_jet_pt: float = Field(1600.0, gt=0, description="Measured jet pT window, upper edge (GeV).")

    @model_validator(mode="after")
    def _window_is_ordered(self) -> JetDataConfig:
        if self.min_jet_pt >= self.max_jet_pt:
            raise ValueError("'data.min_jet_pt' must be below 'data.max_jet_pt'")
        return self
