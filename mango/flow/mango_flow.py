"""The MANGO flow G: L blocks of ICA layers and a coupling, onto a standard normal latent (SPEC 4).

One block = 2 MMCA (A→B, B→A), 4 IMCA, 2 LICA ICA layers, then 1 affine coupling over channels.
The ICA layers' form (``ica_form``: gated by default, see ``mango.flow.ica``) and value path are
options, so the ablation can compare them on equal terms.
``partitions`` drops kinds for the ablations (MMCA only, MMCA + IMCA). Options not in the paper,
each off unless asked for: ``whitening`` (a data-initialised Gaussian whitening before the blocks,
`GaussianWhitening`, so the flow starts at the full-covariance Gaussian of its features;
``whitening_scale`` adds a scale per position and channel; ``whitening_channels=False`` leaves the
channels uncorrelated at the start, so with the scale the flow starts at the diagonal Gaussian),
``actnorm`` (an ActNorm at the start of each block), ``heads > 1``.
The coupling alternates which channel half it transforms from block to block, so every channel
is transformed (a single fixed split would leave half the channels untouched forever).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .base import FlowSequence, InvertibleModule, at_least_float32, check_tokens, evaluating
from .coupling import ActNorm, AffineCoupling, GaussianWhitening, TokenAffineCoupling
from .ica import AttentionMap, ICALayer
from .partitions import imca_partitions, lica_partitions, mmca_partitions

PARTITION_KINDS = ("mmca", "imca", "lica")


def _partitions(kinds: Sequence[str], tokens_per_modality: int) -> list:
    unknown = set(kinds) - set(PARTITION_KINDS)
    if unknown or not kinds:
        raise ValueError(f"partitions must be a non-empty subset of {PARTITION_KINDS}, got {tuple(kinds)}")
    builders = {"mmca": mmca_partitions, "imca": imca_partitions, "lica": lica_partitions}
    return [p for kind in PARTITION_KINDS if kind in kinds for p in builders[kind](tokens_per_modality)]


class MangoFlow(InvertibleModule):
    """G: features (batch, 2T, D), A's T tokens first -> latent of the same shape, with exact log-det.

    ``mixer="ica"`` is MANGO; ``mixer="coupling"`` replaces each ICA layer by a token coupling on the
    same partition (see ``CouplingFlow``).
    """

    def __init__(
        self,
        dim: int,
        tokens_per_modality: int,
        num_blocks: int = 12,
        partitions: Sequence[str] = PARTITION_KINDS,
        heads: int = 1,
        key_dim: int | None = None,
        ica_form: str = "gated",
        gate_init: float = 0.1,
        gate_range: tuple[float, float] = (0.0, 0.5),
        value_affine: bool = False,
        exclude_self: bool = False,
        unit_diagonal: bool = False,
        diag_bias_init: float = 10.0,
        actnorm: bool = False,
        coupling_hidden: int | None = None,
        mixer: str = "ica",
        whitening: bool = False,
        whitening_scale: bool = False,
        whitening_channels: bool = True,
    ):
        super().__init__()
        if tokens_per_modality < 2 or tokens_per_modality % 2:
            raise ValueError(f"tokens_per_modality must be even and >= 2 (SPEC 1), got {tokens_per_modality}")
        if mixer not in ("ica", "coupling"):
            raise ValueError(f"mixer must be 'ica' or 'coupling', got {mixer!r}")
        self.dim, self.tokens_per_modality, self.num_blocks = dim, tokens_per_modality, num_blocks
        self.num_tokens = 2 * tokens_per_modality
        self.partitions, self.mixer = tuple(partitions), mixer
        blocks = []
        for index in range(num_blocks):
            layers: list[InvertibleModule] = [ActNorm(dim)] if actnorm else []
            for partition in _partitions(self.partitions, tokens_per_modality):
                if mixer == "ica":
                    layers.append(ICALayer(partition, dim, key_dim=key_dim, heads=heads, form=ica_form,
                                           diag_bias_init=diag_bias_init, gate_init=gate_init,
                                           gate_range=tuple(gate_range), value_affine=value_affine,
                                           exclude_self=exclude_self, unit_diagonal=unit_diagonal))
                else:
                    layers.append(TokenAffineCoupling(partition, dim))
            layers.append(AffineCoupling(dim, hidden=coupling_hidden, swap=index % 2 == 1))
            blocks.append(FlowSequence(layers))
        self.blocks = nn.ModuleList(blocks)
        self.whitening = (GaussianWhitening(self.num_tokens, dim, position_scale=whitening_scale,
                                            channel_covariance=whitening_channels) if whitening else None)

    def initialize_whitening(self, features: Tensor) -> bool:
        """Fit the whitening layer to training features (M, N, D), once; True when it did."""
        if self.whitening is None or bool(self.whitening.initialized):
            return False
        self.whitening.initialize(features)
        return True

    # -- the invertible map -------------------------------------------------------------------
    # The whole flow computes in float32 (float64 when given), also under bf16 autocast: its inverse
    # recomputes every attention matrix and conditioner from the latent, and bf16 rounding there
    # would cost the exact inverse (a bf16 round trip measured 8e-2 at 2 blocks). Autocast still
    # speeds up the encoders, decoders and heads around it.
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens x (B, N, D) -> latent z = G(x) (B, N, D) and log|det dG/dx| (B,), in float32 or wider
        (also under autocast: the likelihood and the inverse need it)."""
        check_tokens(x, self.num_tokens, self.dim, "flow input")
        with torch.autocast(x.device.type, enabled=False):
            x = at_least_float32(x)
            logdet = x.new_zeros(x.shape[0])
            if self.whitening is not None:
                x, logdet = self.whitening(x)
            for block in self.blocks:
                x, ld = block(x)
                logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent z (B, N, D) -> tokens x = G^-1(z) and log|det dG^-1/dz| (B,): the exact inverse of
        `forward` (round trip to float precision, see `roundtrip_error`)."""
        check_tokens(z, self.num_tokens, self.dim, "latent")
        with torch.autocast(z.device.type, enabled=False):
            z = at_least_float32(z)
            logdet = z.new_zeros(z.shape[0])
            for block in reversed(self.blocks):
                z, ld = block.inverse(z)
                logdet = logdet + ld
            if self.whitening is not None:
                z, ld = self.whitening.inverse(z)
                logdet = logdet + ld
        return z, logdet

    # -- density --------------------------------------------------------------------------------
    @staticmethod
    def prior_log_prob(z: Tensor) -> Tensor:
        """log N(z; 0, I) summed over tokens and channels, shape (batch,), in float32 at least."""
        z = at_least_float32(z)
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(dim=(1, 2))

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-likelihood in nats, shape (batch,)."""
        z, logdet = self(x)
        return self.prior_log_prob(z) + logdet

    def bits_per_dim(self, x: Tensor) -> Tensor:
        """Negative log-likelihood per dimension in bits, (batch,): -log p(x) / (N D log 2). A density
        over continuous features, so it can be negative."""
        return -self.log_prob(x) / (self.num_tokens * self.dim * math.log(2))

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Features G^-1(z) for z ~ N(0, temperature^2 I), shape (n, 2T, D)."""
        ref = next(self.parameters())
        z = torch.randn(n, self.num_tokens, self.dim, generator=generator, dtype=ref.dtype, device=ref.device)
        return self.inverse(z * temperature)[0]

    # -- reading the fusion ---------------------------------------------------------------------
    def ica_layers(self) -> list[tuple[int, int, ICALayer]]:
        """(block index, layer index within the block, layer) for every ICA layer."""
        return [
            (b, i, layer)
            for b, block in enumerate(self.blocks)
            for i, layer in enumerate(block.layers)
            if isinstance(layer, ICALayer)
        ]

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> list[AttentionMap]:
        """Every ICA layer's attention on input x, in flow order (empty for the coupling baseline)."""
        check_tokens(x, self.num_tokens, self.dim, "flow input")
        maps: list[AttentionMap] = []
        # the attention `forward` used, in float32; in eval mode, so that looking changes nothing
        with torch.autocast(x.device.type, enabled=False), evaluating(self):
            x = at_least_float32(x)
            if self.whitening is not None:  # per token: it mixes channels, never tokens
                x, _ = self.whitening(x)
            for b, block in enumerate(self.blocks):
                for i, layer in enumerate(block.layers):
                    if isinstance(layer, ICALayer):
                        maps.append(layer.attention_map(x, block=b, layer=i))
                    x, _ = layer(x)
        return maps

    @torch.no_grad()
    def mixing_report(self, x: Tensor) -> list[dict[str, float]]:
        """Per ICA layer, on input x: how much it mixes (off-diagonal share, mean over the batch),
        its smallest A_ii and its gate (mean over heads; NaN without a gate). Training logs it."""
        report = []
        for amap in self.attention_maps(x):
            report.append({
                "block": amap.block, "layer": amap.layer, "name": amap.name,
                "off_diagonal_share": float(amap.off_diagonal_share().mean()),
                "min_diagonal": float(torch.diagonal(amap.attention, dim1=-2, dim2=-1).min()),
                "gate": float(amap.gate.mean()) if amap.gate is not None else float("nan"),
            })
        return report

    @torch.no_grad()
    def rollout(self, x: Tensor) -> Tensor:
        """Product of all layers' value-path token mixing, (batch, N, N) in original token positions.

        Row i says how much each input token's values reach output token i through the ICA and LICA
        mixing (couplings act within a token and mix none). Identity for the coupling baseline.
        """
        total = torch.eye(self.num_tokens, dtype=at_least_float32(x).dtype, device=x.device).expand(x.shape[0], -1, -1)
        maps = self.attention_maps(x)
        with torch.autocast(x.device.type, enabled=False):
            for amap in maps:
                total = amap.token_mixing() @ total
        return total

    @torch.no_grad()
    def roundtrip_error(self, x: Tensor) -> float:
        """max |x - G^-1(G(x))|: how exact the inverse is in the current dtype (in eval mode)."""
        with evaluating(self):
            z, _ = self(x)
            return float((self.inverse(z)[0] - x).abs().max())

    @property
    def min_attention_diagonal(self) -> float | None:
        """Smallest A_ii seen by any ICA layer in the last forward/inverse (None before any call).

        A record on the layers, for the training log: with several threads on one flow it may be
        another call's. For a given input, read `mixing_report(x)`."""
        seen = [layer._last_min_diagonal for _, _, layer in self.ica_layers() if layer._last_min_diagonal is not None]
        return float(torch.stack(seen).min()) if seen else None


class CouplingFlow(MangoFlow):
    """The paper's "Coupling Layer" baseline: MANGO's blocks with token couplings in place of ICA."""

    def __init__(self, dim: int, tokens_per_modality: int, num_blocks: int = 12, **kwargs):
        kwargs.pop("mixer", None)
        for ica_only in ("heads", "key_dim", "ica_form", "gate_init", "gate_range", "value_affine", "exclude_self",
                         "unit_diagonal", "diag_bias_init"):
            kwargs.pop(ica_only, None)
        super().__init__(dim, tokens_per_modality, num_blocks, mixer="coupling", **kwargs)
