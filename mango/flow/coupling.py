"""Coupling layers and ActNorm: the parts of the flow that can expand volume (SPEC 4).

``AffineCoupling`` is RealNVP over channels, token by token: it never mixes tokens, so fusion
happens in the ICA layers only. ``TokenAffineCoupling`` couples the two halves of a token
partition instead and builds the coupling-only baseline flow. Every conditioner's last layer is
zero-initialised, so each layer starts as the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import InvertibleModule, at_least_float32
from .partitions import LearnedTokenMixing, TokenPartition


def _conditioner(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    last = nn.Linear(hidden, out_dim)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), last)


def _bounded(raw_scale: Tensor, bound: float) -> Tensor:
    # tanh keeps log-scales in (-bound, bound): no exp overflow, however the conditioner drifts.
    # float32 from here on (even under bf16 autocast): the affine map and its log-det sum must be
    # computed alike in the forward and the inverse.
    return bound * torch.tanh(at_least_float32(raw_scale) / bound)


class AffineCoupling(InvertibleModule):
    """c2' = c2 * exp(s(c1)) + t(c1) on each token's channels; ``swap`` exchanges the halves' roles."""

    def __init__(self, dim: int, hidden: int | None = None, swap: bool = False, scale_bound: float = 2.0):
        super().__init__()
        self.dim, self.swap, self.scale_bound = dim, swap, scale_bound
        self.cond_dim = dim - dim // 2 if swap else dim // 2
        self.out_dim = dim - self.cond_dim
        self.net = _conditioner(self.cond_dim, hidden or dim, 2 * self.out_dim)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.swap:
            return x[..., self.out_dim :], x[..., : self.out_dim]
        return x[..., : self.cond_dim], x[..., self.cond_dim :]

    def _join(self, cond: Tensor, out: Tensor) -> Tensor:
        return torch.cat([out, cond] if self.swap else [cond, out], dim=-1)

    def _scale_shift(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        raw_scale, shift = self.net(cond).chunk(2, dim=-1)
        return _bounded(raw_scale, self.scale_bound), at_least_float32(shift)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        cond, out = self._split(x)
        scale, shift = self._scale_shift(cond)
        return self._join(cond, (out * torch.exp(scale) + shift).to(x.dtype)), scale.sum(dim=(1, 2))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        cond, out = self._split(y)
        scale, shift = self._scale_shift(cond)
        return self._join(cond, ((out - shift) * torch.exp(-scale)).to(y.dtype)), -scale.sum(dim=(1, 2))


class TokenAffineCoupling(InvertibleModule):
    """Coupling across tokens: X2' = X2 * exp(s) + t, where token i of X2 is conditioned on token i of
    X1 and on the mean of X1. The same partitions as ICA, so the coupling-only baseline differs from
    MANGO in the mixing operation alone. The conditioner's hidden width defaults to 32, which gives
    it about as many parameters as an ICA layer's query and key maps (2 D Dk with Dk = 64)."""

    def __init__(
        self,
        partition: TokenPartition | LearnedTokenMixing,
        dim: int,
        hidden: int | None = None,
        scale_bound: float = 2.0,
    ):
        super().__init__()
        self.partition, self.kind, self.name = partition, partition.kind, partition.name
        self.scale_bound = scale_bound
        self.net = _conditioner(2 * dim, hidden or 32, 2 * dim)

    def _scale_shift(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        context = x1.mean(dim=1, keepdim=True).expand_as(x1)
        raw_scale, shift = self.net(torch.cat([x1, context], dim=-1)).chunk(2, dim=-1)
        return _bounded(raw_scale, self.scale_bound), at_least_float32(shift)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self.partition.split(x)
        scale, shift = self._scale_shift(x1)
        return self.partition.merge(x1, (x2 * torch.exp(scale) + shift).to(x.dtype)), scale.sum(dim=(1, 2))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y1, y2 = self.partition.split(y)
        scale, shift = self._scale_shift(y1)
        return self.partition.merge(y1, ((y2 - shift) * torch.exp(-scale)).to(y.dtype)), -scale.sum(dim=(1, 2))


class ActNorm(InvertibleModule):
    """Per-channel affine map (Glow), initialised from the first training batch to zero mean, unit variance.

    Not in the MANGO paper: an option (``actnorm=True``) that can help training, off by default.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1])
        std = flat.std(dim=0, unbiased=False).clamp_min(1e-6)
        self.log_scale.copy_(-torch.log(std))
        self.shift.copy_(-flat.mean(dim=0) / std)
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self._initialize(x)
        logdet = (x.shape[1] * self.log_scale.sum()).expand(x.shape[0])
        return x * torch.exp(self.log_scale) + self.shift, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = (-y.shape[1] * self.log_scale.sum()).expand(y.shape[0])
        return (y - self.shift) * torch.exp(-self.log_scale), logdet


class GaussianWhitening(InvertibleModule):
    """z = S_n^-1 L^-1 (x - mu_n): a mean per token position, one lower-triangular channel transform
    shared by all positions, with positive diagonal, and (``position_scale``) a diagonal scale S_n
    per position and channel. Not in the MANGO paper: an option (``whitening=True``).

    `initialize` sets mu to the training features' per-position means, L to the Cholesky factor of
    their shared channel covariance and S_n to the per-position spread left after L, so a flow whose
    other layers start at (or near) the identity starts at that Gaussian density of the features;
    training can only improve on it. Without S_n, positions whose features barely vary (a text
    model's pad positions) get the spread of all positions, and a diagonal Gaussian fitted per
    dimension beats the flow before it learns anything (issue 14). All stay learnable.
    ``channel_covariance=False`` starts L at the identity, so with S_n the layer starts at the
    diagonal Gaussian (a mean and a spread per position and channel) and leaves the channels' own
    geometry to the blocks: on genre, a head generalises worse from channel-whitened features
    (docs/genre-experiments.md).
    log|det| = -N sum_c log L_cc - sum_(n,c) log S_nc.
    """

    def __init__(self, num_tokens: int, dim: int, position_scale: bool = False, channel_covariance: bool = True):
        super().__init__()
        self.channel_covariance = bool(channel_covariance)
        self.mean = nn.Parameter(torch.zeros(num_tokens, dim))
        self.lower = nn.Parameter(torch.zeros(dim, dim))  # its strictly lower triangle is used
        self.log_diag = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(num_tokens, dim)) if position_scale else None
        self.register_buffer("initialized", torch.tensor(False))

    def _factor(self) -> Tensor:
        return torch.tril(self.lower, -1) + torch.diag(torch.exp(self.log_diag))

    @torch.no_grad()
    def initialize(self, features: Tensor, eps: float = 1e-4) -> None:
        """From training features (M, N, D): per-position means and the shared channel covariance
        (plus eps times its mean variance on the diagonal, so constant channels stay invertible;
        the identity without ``channel_covariance``); then each position's variance after that,
        floored the same way."""
        x = features.detach().double()
        mean = x.mean(dim=0)
        if self.channel_covariance:
            residual = (x - mean).reshape(-1, x.shape[-1])
            cov = residual.T @ residual / max(residual.shape[0] - 1, 1)
            eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
            cov = cov + eps * cov.diagonal().mean().clamp_min(1e-12) * eye
            factor = torch.linalg.cholesky(cov)
        else:
            factor = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        self.mean.copy_(mean)
        self.lower.copy_(torch.tril(factor, -1))
        self.log_diag.copy_(torch.log(factor.diagonal()))
        if self.log_scale is not None:
            whitened = torch.linalg.solve_triangular(factor, (x - mean).transpose(1, 2), upper=False)
            variance = whitened.pow(2).mean(dim=0).T  # (N, D)
            variance = variance + eps * variance.mean().clamp_min(1e-12)
            self.log_scale.copy_(0.5 * torch.log(variance))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        factor = self._factor().to(x.dtype)
        centred = (x - self.mean.to(x.dtype)).transpose(1, 2)  # (B, D, N): solve L z = x - mu per token
        z = torch.linalg.solve_triangular(factor, centred, upper=False).transpose(1, 2)
        logdet = -x.shape[1] * self.log_diag.sum()
        if self.log_scale is not None:
            z = z * torch.exp(-self.log_scale.to(x.dtype))
            logdet = logdet - self.log_scale.sum()
        return z, logdet.to(x.dtype).expand(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        factor = self._factor().to(z.dtype)
        logdet = z.shape[1] * self.log_diag.sum()
        if self.log_scale is not None:
            z = z * torch.exp(self.log_scale.to(z.dtype))
            logdet = logdet + self.log_scale.sum()
        x = z @ factor.T + self.mean.to(z.dtype)
        return x, logdet.to(z.dtype).expand(z.shape[0])
