"""The TF refiner (normalising flow + transformer refiner, trained adversarially) as a pcgen plugin.

The entry point is :mod:`pcgen_tf_refiner.plugin`; the networks are usable on their own.
"""

from pcgen_tf_refiner.config import TFRefinerConfig
from pcgen_tf_refiner.flow import FlowModel, JetFlow, coupling_masks
from pcgen_tf_refiner.networks import Critic, EncoderBlock, JetMass, RefinedFlow, Refiner
from pcgen_tf_refiner.plugin import PCGEN_CONTRACT, SPEC, TFRefinerModel, build

__all__ = [
    "PCGEN_CONTRACT",
    "SPEC",
    "Critic",
    "EncoderBlock",
    "FlowModel",
    "JetFlow",
    "JetMass",
    "RefinedFlow",
    "Refiner",
    "TFRefinerConfig",
    "TFRefinerModel",
    "build",
    "coupling_masks",
]
