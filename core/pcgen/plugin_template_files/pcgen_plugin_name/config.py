"""Settings of the $name model (the ``[model]`` table of a run config)."""

from pcgen import ModelConfig
from pydantic import Field


class PluginNameConfig(ModelConfig):
    """Architecture and sampling settings; unknown keys are errors (pcgen.ModelConfig)."""

    hidden: int = Field(128, ge=4, description="Width of the per-particle networks.")
    layers: int = Field(3, ge=1, description="Hidden layers of each network.")
    time_features: int = Field(8, ge=2, description="Fourier features of the flow time t.")
    sampling_steps: int = Field(32, ge=1, description="Euler steps from noise to data when sampling.")
