"""GAST (generative adversarial set transformer) as a pcgen plugin.

The entry point is :mod:`pcgen_gast.plugin`; the networks are usable on their own.
"""

from pcgen_gast.config import GASTConfig
from pcgen_gast.networks import GASTDiscriminator, GASTGenerator, GlobalConcat
from pcgen_gast.plugin import PCGEN_CONTRACT, SPEC, build

__all__ = ["PCGEN_CONTRACT", "SPEC", "GASTConfig", "GASTDiscriminator", "GASTGenerator", "GlobalConcat", "build"]
