"""Starting points for a frozen text encoder's projection (its token states, e.g. 384 d, to D).

A random projection keeps a random D-dimensional subspace of the states; `principal_axes` keeps
the most varied one. Neither need keep the directions that tell the labels apart, and with a few
hundred training examples stage 2 need not learn them back.
`label_axes` puts those directions first: the span of a ridge regression from each example's
mean state to its (standardised) labels, then principal axes of what the states vary in besides.
Measured on genre (README): neither start raises macro F1 over a random one; kept to reproduce that.
"""

from __future__ import annotations

import torch


def principal_axes(states: torch.Tensor, dim: int) -> torch.Tensor:
    """The top-`dim` principal axes of `states` (N, C), centred: orthonormal rows (dim, C)."""
    if min(states.shape) < dim:
        raise ValueError(f"{len(states)} token states of {states.shape[1]} channels cannot give {dim} principal axes")
    _, _, axes = torch.linalg.svd(states - states.mean(0), full_matrices=False)
    return axes[:dim]


def label_axes(pooled: torch.Tensor, labels: torch.Tensor, states: torch.Tensor, dim: int,
               ridge: float = 0.1) -> torch.Tensor:
    """Orthonormal rows (dim, C): first the span of ridge-regression directions from `pooled`
    (N, C; one mean state per example) to `labels` (N, K; each label standardised, so a rare one
    counts as much as a frequent one), then the principal axes of `states` (M, C) off that span.

    `ridge` is relative to the mean eigenvalue of the pooled states' covariance. Labels that never
    vary in `labels` give no direction."""
    if pooled.ndim != 2 or labels.ndim != 2 or len(pooled) != len(labels):
        raise ValueError(f"pooled {tuple(pooled.shape)} and labels {tuple(labels.shape)} must be (N, C) and (N, K)")
    x = (pooled - pooled.mean(0)).double()
    y = labels.double() - labels.double().mean(0)
    spread = y.std(0)
    y = y[:, spread > 0] / spread[spread > 0]
    channels = x.shape[1]
    if y.shape[1] > dim or dim > channels:
        raise ValueError(f"{y.shape[1]} label directions and D = {dim} do not fit in {channels} channels")
    gram = x.T @ x
    lam = ridge * torch.trace(gram) / channels
    weights = torch.linalg.solve(gram + lam * torch.eye(channels, dtype=gram.dtype), x.T @ y)  # (C, K)
    basis, _ = torch.linalg.qr(weights)  # (C, K), orthonormal columns
    rest = states.double() - states.double().mean(0)
    rest = rest - (rest @ basis) @ basis.T
    others = principal_axes(rest, dim - basis.shape[1])
    axes, _ = torch.linalg.qr(torch.cat([basis, others.T], 1))  # orthonormal to rounding; keeps the order
    return axes.T.to(states.dtype)
