"""The one contract every invertible module in `mango.flow` keeps.

Direction: data flows towards the latent in ``forward``.

- ``module(x) -> (y, logdet)``: ``x`` and ``y`` have shape ``(batch, N, D)`` (N tokens of width D),
  ``logdet`` has shape ``(batch,)`` and is ``log |det dy/dx|`` over all N*D numbers of a sample.
- ``module.inverse(y) -> (x, logdet)``: the exact inverse; its ``logdet`` is ``log |det dx/dy|``,
  the negative of the forward's at the matching point.

The exact likelihood of the flow follows from the change of variables:
``log p(x) = log N(G(x); 0, I) + sum of the forward log-dets``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import Tensor, nn


class InvertibleModule(nn.Module):
    """Base class: ``forward`` maps data -> latent, ``inverse`` maps latent -> data, both with log-dets."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class FlowSequence(InvertibleModule):
    """Composition of invertible modules; log-dets add up, the inverse runs in reverse order."""

    def __init__(self, layers: Iterable[InvertibleModule]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y)
            logdet = logdet + ld
        return y, logdet


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Run `module` in eval mode for a read-only look, then give every submodule back its own mode.

    Reading a flow (its attention, its round trip) must not change it: in training mode an
    uninitialised ActNorm would take its statistics from whatever input is being inspected."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def at_least_float32(x: Tensor) -> Tensor:
    """x in float32, or as it is when float64: the flow's numerics never run in bf16/fp16, even under
    autocast (its inverse recomputes every attention matrix and conditioner from the latent)."""
    return x if x.dtype == torch.float64 else x.float()


def check_tokens(x: Tensor, num_tokens: int, dim: int, what: str = "input") -> None:
    """Fail with a message that names the expected shape instead of a cryptic matmul error."""
    if x.dim() != 3 or x.shape[1] != num_tokens or x.shape[2] != dim:
        raise ValueError(
            f"{what} must have shape (batch, {num_tokens}, {dim}) = (batch, tokens, dim); "
            f"got {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x):
        raise TypeError(f"{what} must be a floating-point tensor, got {x.dtype}")
