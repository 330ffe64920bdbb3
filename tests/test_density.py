"""Gaussian density baselines: exact against scipy, and the yardstick a trained flow must reach."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from mango.density import ChannelGaussian, DiagonalGaussian, fit_baselines
from mango.flow import MangoFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # hundreds of tiny flow steps


CHOLESKY = torch.tensor([[1.0, 0, 0, 0], [0.8, 0.6, 0, 0], [-0.5, 0.3, 0.5, 0], [0.2, -0.4, 0.3, 0.4]])
MEAN = torch.tensor([1.0, -0.5, 0.3, 0.0])


def correlated_tokens(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 4 tokens, 4 channels): every token i.i.d. N(MEAN, L L^T) with strongly correlated channels."""
    return MEAN + torch.randn(n, 4, 4, generator=generator) @ CHOLESKY.T


def two_clusters(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 4, 4): every token from one of two tight clusters at +-(2, 2, -2, 2)."""
    sign = torch.randint(0, 2, (n, 4, 1), generator=generator).float() * 2 - 1
    return sign * torch.tensor([2.0, 2.0, -2.0, 2.0]) + 0.3 * torch.randn(n, 4, 4, generator=generator)


def scipy_bits_per_dim(x: torch.Tensor, means: np.ndarray, covs: list[np.ndarray]) -> np.ndarray:
    """-log p / (N D ln 2) with one scipy multivariate normal per token position."""
    x = x.double().numpy()
    logp = sum(stats.multivariate_normal(means[n], covs[n]).logpdf(x[:, n]) for n in range(x.shape[1]))
    return -logp / (x.shape[1] * x.shape[2] * math.log(2))


def test_baselines_match_scipy_on_their_own_fit():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(300, 3, 5, generator=gen) @ torch.randn(5, 5, generator=gen) + torch.randn(3, 5, generator=gen)
    test = torch.randn(7, 3, 5, generator=gen) * 1.5
    x = train.double().numpy()

    diagonal = DiagonalGaussian.fit(train, jitter=0.0)
    means, variances = x.mean(0), x.var(0)  # maximum likelihood: divide by M
    expected = scipy_bits_per_dim(test, means, [np.diag(variances[n]) for n in range(3)])
    np.testing.assert_allclose(diagonal.bits_per_dim(test).numpy(), expected, rtol=1e-10)

    channel = ChannelGaussian.fit(train, jitter=0.0)
    pooled = (x - means).reshape(-1, 5)
    cov = pooled.T @ pooled / len(pooled)  # one covariance for every position, around each position's mean
    expected = scipy_bits_per_dim(test, means, [cov] * 3)
    np.testing.assert_allclose(channel.bits_per_dim(test).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(channel.covariance.numpy(), cov, rtol=1e-10, atol=1e-12)


def test_baselines_recover_the_true_gaussian_and_sample_it():
    gen = torch.Generator().manual_seed(1)
    train, test = correlated_tokens(4000, gen), correlated_tokens(500, gen)
    true_cov = (CHOLESKY @ CHOLESKY.T).double().numpy()
    truth = scipy_bits_per_dim(test, np.tile(MEAN.double().numpy(), (4, 1)), [true_cov] * 4).mean()
    baselines = fit_baselines(train)
    assert float(baselines["channel"].bits_per_dim(test).mean()) == pytest.approx(truth, abs=0.01)
    assert float(baselines["diagonal"].bits_per_dim(test).mean()) > truth + 0.3  # it cannot see the correlations

    drawn = baselines["channel"].sample(20000, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert drawn.shape == (20000, 4, 4) and drawn.dtype == torch.float32
    centred = (drawn - MEAN).reshape(-1, 4).double()
    np.testing.assert_allclose((centred.T @ centred / len(centred)).numpy(), 0.25 * true_cov, atol=0.01)
    diag = baselines["diagonal"].sample(20000, generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(diag.var(0).numpy(), baselines["diagonal"].variance.numpy(), rtol=0.05)


def test_a_dimension_that_never_varies_gets_a_finite_density_and_is_counted():
    gen = torch.Generator().manual_seed(4)
    train = torch.randn(50, 2, 3, generator=gen)
    train[:, 1] = 0.0  # a pad position: exactly zero in every sample
    diagonal, channel = DiagonalGaussian.fit(train), ChannelGaussian.fit(train)
    assert diagonal.degenerate_dims == 3 and channel.degenerate_dims == 0  # pooled over positions, channels vary
    assert torch.isfinite(diagonal.bits_per_dim(train)).all() and torch.isfinite(channel.bits_per_dim(train)).all()
    with pytest.raises(ValueError, match="fitted on"):
        diagonal.bits_per_dim(torch.zeros(1, 3, 3))


def _trained_flow(train: torch.Tensor, steps: int = 300, seed: int = 0) -> MangoFlow:
    torch.manual_seed(seed)
    flow = MangoFlow(dim=4, tokens_per_modality=2, num_blocks=2, actnorm=True, coupling_hidden=32)
    optimizer = torch.optim.Adam(flow.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = train[torch.randint(0, len(train), (128,), generator=gen)]
        loss = flow.bits_per_dim(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return flow


@pytest.mark.slow
def test_flow_reaches_the_gaussian_baseline_on_gaussian_tokens():
    """There the channel Gaussian is the exact model: a trained flow must come within 0.03 bits/dim
    (the diagonal Gaussian, blind to the correlations, is 0.5 bits/dim worse)."""
    gen = torch.Generator().manual_seed(0)
    train, test = correlated_tokens(2000, gen), correlated_tokens(1000, gen)
    flow = _trained_flow(train)
    with torch.no_grad():
        flow_bits = float(flow.bits_per_dim(test).mean())
    baselines = fit_baselines(train)
    channel, diagonal = (float(baselines[k].bits_per_dim(test).mean()) for k in ("channel", "diagonal"))
    assert diagonal > channel + 0.4
    assert flow_bits == pytest.approx(channel, abs=0.03)


@pytest.mark.slow
def test_flow_beats_the_gaussian_baseline_on_two_clusters():
    gen = torch.Generator().manual_seed(0)
    train, test = two_clusters(2000, gen), two_clusters(1000, gen)
    flow = _trained_flow(train)
    with torch.no_grad():
        flow_bits = float(flow.bits_per_dim(test).mean())
    channel = float(fit_baselines(train)["channel"].bits_per_dim(test).mean())
    assert flow_bits < channel - 0.3


def test_diagonal_gaussian_samples_at_the_temperature():
    train = torch.randn(4000, 2, 3, generator=torch.Generator().manual_seed(0)) * 2.0
    diag = DiagonalGaussian.fit(train)
    drawn = diag.sample(20000, temperature=0.5, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(drawn.var(0).numpy(), 0.25 * diag.variance.numpy(), rtol=0.05)


def test_a_nearly_constant_dimension_is_counted_as_degenerate():
    train = torch.randn(50, 2, 3, generator=torch.Generator().manual_seed(4))
    train[:, 1] = 1e-6 * torch.randn(50, 3, generator=torch.Generator().manual_seed(5))
    assert DiagonalGaussian.fit(train).degenerate_dims == 3


def test_channel_gaussian_raises_the_jitter_until_cholesky_succeeds():
    base = torch.randn(200, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    train = torch.cat([base, base, base * 1e3], dim=2)  # duplicated channels: a singular covariance
    fitted = ChannelGaussian.fit(train, jitter=1e-30)
    assert fitted.jitter > 1e-30 and torch.isfinite(fitted.bits_per_dim(train)).all()
