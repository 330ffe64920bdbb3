"""Gaussian density baselines for the encoder features, scored and sampled like the flow.

A flow's bits/dim means little alone: these two Gaussians, fitted on training features, say what
a density model without any learned nonlinearity already reaches (issue 14).

- `DiagonalGaussian`: every one of the N x D dimensions independent, with its own mean and
  variance.
- `ChannelGaussian`: a mean per token position and one full D x D channel covariance shared by
  all positions (tokens independent given their position). With N = 128, D = 128 it has
  N D + D (D + 1) / 2 parameters, fitted from M N token rows, so a thousand samples pin it down.

Both score features (B, N, D) in bits/dim exactly as `MangoModel.forward_features`: -log p(F) /
(N D ln 2), log p in nats summed over all N D dimensions. Fitting, scoring and sampling run on the
CPU in float64, whatever device the features come from (samples come back on the CPU); variances get
a floor of ``jitter`` times their mean (the covariance: ``jitter`` times tr(S)/D on the
diagonal), raised tenfold until the Cholesky factorisation succeeds, so a dimension that never
varies in training (a text pad position is exactly 0) gets a finite, very high density whose
value is set by the floor, not by the data; `degenerate_dims` counts them.

`sample(n, temperature)` draws mean + temperature * (deviation ~ the fitted covariance), the
baselines' counterpart of the flow's Z ~ N(0, temperature^2 I).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

__all__ = ["ChannelGaussian", "DiagonalGaussian", "GaussianBaseline", "fit_baselines"]

_CHUNK = 64  # samples per float64 pass: bounds memory whatever the number of samples


class GaussianBaseline(Protocol):
    """What the density benchmark needs of a baseline."""

    name: str

    def log_prob(self, features: torch.Tensor) -> torch.Tensor: ...

    def bits_per_dim(self, features: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor: ...


def _check(features: torch.Tensor, shape: tuple[int, int] | None = None) -> None:
    if features.ndim != 3:
        raise ValueError(f"expected features (batch, tokens, channels), got shape {tuple(features.shape)}")
    if shape is not None and tuple(features.shape[1:]) != shape:
        raise ValueError(f"features have shape {tuple(features.shape[1:])} per sample, the baseline was fitted on {shape}")


def _cpu64(features: torch.Tensor) -> torch.Tensor:
    """Where the baselines compute: float64 on the CPU, whatever device the features are on."""
    return features.detach().to("cpu", torch.float64)


def _fit_mean(features: torch.Tensor) -> torch.Tensor:
    """The per-position mean (N, D) in float64 of training features (M, N, D), M >= 2, after checking them."""
    _check(features)
    if len(features) < 2:
        raise ValueError("fitting a Gaussian needs at least 2 samples")
    total = torch.zeros(features.shape[1:], dtype=torch.float64, device="cpu")
    for chunk in features.split(_CHUNK):
        total += _cpu64(chunk).sum(0)
    return total / len(features)


class DiagonalGaussian:
    """Independent dimensions: a mean and a variance for each of the N x D feature dimensions."""

    name = "diagonal Gaussian"

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor, jitter: float, degenerate_dims: int = 0):
        self.mean, self.variance = mean.to(torch.float64), variance.to(torch.float64)
        self.jitter, self.degenerate_dims = jitter, degenerate_dims

    @classmethod
    def fit(cls, features: torch.Tensor, jitter: float = 1e-6) -> DiagonalGaussian:
        """Maximum-likelihood fit on features (M, N, D), M >= 2."""
        mean = _fit_mean(features)
        squares = torch.zeros_like(mean)
        for chunk in features.split(_CHUNK):
            squares += (_cpu64(chunk) - mean).pow(2).sum(0)
        variance = squares / len(features)
        floor = jitter * float(variance.mean()) if float(variance.mean()) > 0 else jitter
        degenerate = int((variance < floor).sum())
        return cls(mean, variance + floor, jitter, degenerate)

    def log_prob(self, features: torch.Tensor) -> torch.Tensor:
        """log p(F) in nats, (B,), float64."""
        _check(features, tuple(self.mean.shape))
        x = _cpu64(features)
        z2 = ((x - self.mean).pow(2) / self.variance).flatten(1).sum(1)
        return -0.5 * (z2 + torch.log(2 * math.pi * self.variance).sum())

    def bits_per_dim(self, features: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(features) / (self.mean.numel() * math.log(2))

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, N, D) float32: mean + temperature * sqrt(variance) * eps."""
        eps = torch.randn((n, *self.mean.shape), generator=generator, dtype=torch.float64, device="cpu")
        return (self.mean + temperature * self.variance.sqrt() * eps).float()


class ChannelGaussian:
    """Per-position means, one full channel covariance S = L L^T shared by all token positions."""

    name = "channel Gaussian"

    def __init__(self, mean: torch.Tensor, cholesky: torch.Tensor, jitter: float, degenerate_dims: int = 0):
        self.mean, self.cholesky = mean.to(torch.float64), cholesky.to(torch.float64)
        self.jitter, self.degenerate_dims = jitter, degenerate_dims

    @property
    def covariance(self) -> torch.Tensor:
        return self.cholesky @ self.cholesky.T

    @classmethod
    def fit(cls, features: torch.Tensor, jitter: float = 1e-6) -> ChannelGaussian:
        """Maximum-likelihood fit on features (M, N, D): S = mean over samples and positions of
        (x - mean_position)(x - mean_position)^T."""
        mean = _fit_mean(features)
        d = features.shape[2]
        scatter = torch.zeros(d, d, dtype=torch.float64, device="cpu")
        for chunk in features.split(_CHUNK):
            centred = (_cpu64(chunk) - mean).reshape(-1, d)
            scatter += centred.T @ centred
        cov = scatter / (features.shape[0] * features.shape[1])
        scale = float(torch.diagonal(cov).mean())
        scale = scale if scale > 0 else 1.0
        degenerate = int((torch.diagonal(cov) < jitter * scale).sum())
        eye = torch.eye(d, dtype=torch.float64, device="cpu")
        used = jitter
        for _ in range(12):
            cholesky, info = torch.linalg.cholesky_ex(cov + used * scale * eye)
            if int(info) == 0:
                return cls(mean, cholesky, used, degenerate)
            used *= 10
        raise ValueError(f"the channel covariance is not positive definite even with jitter {used / 10:g}")

    def _whiten(self, features: torch.Tensor) -> torch.Tensor:
        """L^-1 (x - mean) per token, (B, N, D) float64, by a triangular solve."""
        _check(features, tuple(self.mean.shape))
        x = _cpu64(features) - self.mean
        solved = torch.linalg.solve_triangular(self.cholesky, x.reshape(-1, x.shape[-1]).T, upper=False)
        return solved.T.reshape(x.shape)

    def log_prob(self, features: torch.Tensor) -> torch.Tensor:
        """log p(F) in nats, (B,), float64: sum over tokens of log N(x_n; mean_n, S)."""
        n, d = self.mean.shape
        z2 = self._whiten(features).pow(2).flatten(1).sum(1)
        logdet = 2 * torch.log(torch.diagonal(self.cholesky)).sum()
        return -0.5 * (z2 + n * (d * math.log(2 * math.pi) + logdet))

    def bits_per_dim(self, features: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(features) / (self.mean.numel() * math.log(2))

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, N, D) float32: mean_position + temperature * L eps per token."""
        eps = torch.randn((n, *self.mean.shape), generator=generator, dtype=torch.float64, device="cpu")
        return (self.mean + temperature * eps @ self.cholesky.T).float()


def fit_baselines(features: torch.Tensor, jitter: float = 1e-6) -> dict[str, DiagonalGaussian | ChannelGaussian]:
    """Both baselines fitted on the same training features (M, N, D), keyed "diagonal" and "channel"."""
    return {"diagonal": DiagonalGaussian.fit(features, jitter), "channel": ChannelGaussian.fit(features, jitter)}
