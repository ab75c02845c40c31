"""iGAPT (induced generative adversarial particle transformer) as a pcgen plugin.

The entry point is :mod:`pcgen_igapt.plugin`; the networks are usable on their own.
"""

from pcgen_igapt.config import IGAPTConfig
from pcgen_igapt.networks import IGAPTDiscriminator, IGAPTGenerator
from pcgen_igapt.plugin import PCGEN_CONTRACT, SPEC, build

__all__ = ["PCGEN_CONTRACT", "SPEC", "IGAPTConfig", "IGAPTDiscriminator", "IGAPTGenerator", "build"]
