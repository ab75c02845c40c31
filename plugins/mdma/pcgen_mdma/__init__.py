"""MDMA (mean-field attention GAN with deep mean-field matching) as a pcgen plugin.

The entry point is :mod:`pcgen_mdma.plugin`; the networks are usable on their own.
"""

from pcgen_mdma.config import MDMAConfig
from pcgen_mdma.networks import MDMACritic, MDMAGenerator, MDMAModel
from pcgen_mdma.plugin import PCGEN_CONTRACT, SPEC, build

__all__ = ["PCGEN_CONTRACT", "SPEC", "MDMAConfig", "MDMACritic", "MDMAGenerator", "MDMAModel", "build"]
