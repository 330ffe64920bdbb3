"""The MANGO flow: invertible cross-attention layers that map two modalities' tokens to a Gaussian.

Contract (see ``mango.flow.base``): data flows towards the latent in ``forward``;
``module(x) -> (y, logdet)``, ``module.inverse(y) -> (x, logdet)``, x of shape (batch, N, D),
logdet of shape (batch,), the inverse's logdet the negative of the forward's.
"""

from .base import FlowSequence, InvertibleModule
from .coupling import ActNorm, AffineCoupling, GaussianWhitening, TokenAffineCoupling
from .ica import ICA_FORMS, AttentionMap, ICALayer, InvertibleCrossAttention
from .mango_flow import PARTITION_KINDS, CouplingFlow, MangoFlow
from .partitions import (
    LearnedTokenMixing,
    TokenPartition,
    imca_partitions,
    lica_partitions,
    lica_permutation,
    mmca_partitions,
)

__all__ = [
    "ICA_FORMS",
    "ActNorm",
    "AffineCoupling",
    "AttentionMap",
    "CouplingFlow",
    "FlowSequence",
    "GaussianWhitening",
    "ICALayer",
    "InvertibleCrossAttention",
    "InvertibleModule",
    "LearnedTokenMixing",
    "MangoFlow",
    "PARTITION_KINDS",
    "TokenAffineCoupling",
    "TokenPartition",
    "imca_partitions",
    "lica_partitions",
    "lica_permutation",
    "mmca_partitions",
]
