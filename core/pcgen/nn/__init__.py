"""Shared neural building blocks for point-cloud models: masking helpers, masked attention, mean-field
and EPiC blocks, time embeddings, weight averages (EMA), the differentiable jet mass.

Plugins import these as ``from pcgen.nn import ...``; see :mod:`pcgen.nn.attention` for shapes.
"""

from pcgen.nn.attention import (
    FeedForward,
    InducedParticleAttentionBlock,
    InducedSetAttentionBlock,
    MaskedMultiheadAttention,
    MultiheadAttentionBlock,
    PoolingByMultiheadAttention,
    SelfAttentionBlock,
)
from pcgen.nn.averaging import ParameterAverage, lerp_towards, warmed_up_decay
from pcgen.nn.conditioning import check_condition, particle_and_global_noise
from pcgen.nn.dropout import Dropout, dropout
from pcgen.nn.epic import EPiCLayer, EPiCNetwork, EPiCPooling
from pcgen.nn.jets import jet_mass_over_pt
from pcgen.nn.mean_field import (
    ConditionalGLU,
    MeanFieldAttention,
    MeanFieldBlock,
    MeanFieldEncoder,
    normalize_linear_layers,
)
from pcgen.nn.masking import (
    apply_mask,
    attention_key_padding,
    has_particles,
    keep_where,
    mask_from_multiplicity,
    masked_mean,
    masked_sum,
    multiplicity,
    safe_key_padding,
)
from pcgen.nn.time import sinusoidal_time_embedding

__all__ = [
    "ConditionalGLU",
    "Dropout",
    "EPiCLayer",
    "EPiCNetwork",
    "EPiCPooling",
    "FeedForward",
    "InducedParticleAttentionBlock",
    "InducedSetAttentionBlock",
    "MaskedMultiheadAttention",
    "MeanFieldAttention",
    "MeanFieldBlock",
    "MeanFieldEncoder",
    "MultiheadAttentionBlock",
    "ParameterAverage",
    "PoolingByMultiheadAttention",
    "SelfAttentionBlock",
    "apply_mask",
    "attention_key_padding",
    "check_condition",
    "dropout",
    "jet_mass_over_pt",
    "has_particles",
    "keep_where",
    "lerp_towards",
    "mask_from_multiplicity",
    "masked_mean",
    "masked_sum",
    "multiplicity",
    "normalize_linear_layers",
    "particle_and_global_noise",
    "safe_key_padding",
    "sinusoidal_time_embedding",
    "warmed_up_decay",
]
