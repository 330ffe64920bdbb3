"""The invertible cross-attention (ICA) layer (SPEC 2).

X1 computes a causal attention matrix A (lower triangular, positive diagonal, rows sum to one)
and A mixes the tokens of X2: Y1 = X1, Y2 = A X2. X1 passes unchanged, so the Jacobian is block
triangular and log|det| = (D/h) * sum over heads and rows of log A_ii, read exactly from the
log-softmax. The inverse recomputes A from Y1 = X1 and solves the triangular system A X2 = Y2.

Conditioning: near-uniform causal attention has A_ii ~ 1/i, so det A ~ 1/n! and a random ICA
stack cannot be inverted in float32. A learnable bias on the diagonal logits, initialised at
``diag_bias_init`` (10 by default), starts every layer near the identity. ``diag_bias_init=None``
gives the literal layer with no bias (for experiments only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import InvertibleModule
from .partitions import LearnedTokenMixing, TokenPartition


class InvertibleCrossAttention(nn.Module):
    """A = causal softmax(LN(X1 Wq) LN(X1 Wk)^T / tau + beta I); Y2 = A X2, per head on D/h channels."""

    def __init__(self, dim: int, key_dim: int | None = None, heads: int = 1, diag_bias_init: float | None = 10.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.key_dim = key_dim or min(64, dim)
        self.to_q = nn.Linear(dim, heads * self.key_dim, bias=False)
        self.to_k = nn.Linear(dim, heads * self.key_dim, bias=False)
        self.q_norm = nn.LayerNorm(self.key_dim)
        # no key bias: it shifts each row's scores by the same q_i . b, which softmax ignores
        self.k_norm = nn.LayerNorm(self.key_dim, bias=False)
        # tau = exp(log_temperature) stays positive; initialised at sqrt(Dk) as in SPEC 2.
        self.log_temperature = nn.Parameter(torch.tensor(0.5 * math.log(self.key_dim)))
        if diag_bias_init is None:
            self.diag_bias = None
        else:
            self.diag_bias = nn.Parameter(torch.full((heads,), float(diag_bias_init)))

    def log_attention(self, x1: Tensor) -> Tensor:
        """log A of shape (batch, heads, n, n); entries above the diagonal are -inf (A is exactly 0 there)."""
        batch, n, _ = x1.shape
        q = self.q_norm(self.to_q(x1).view(batch, n, self.heads, self.key_dim)).transpose(1, 2)
        k = self.k_norm(self.to_k(x1).view(batch, n, self.heads, self.key_dim)).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / torch.exp(self.log_temperature)
        if self.diag_bias is not None:
            eye = torch.eye(n, dtype=scores.dtype, device=scores.device)
            scores = scores + self.diag_bias.view(1, -1, 1, 1) * eye
        above = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(above, float("-inf"))
        return torch.log_softmax(scores, dim=-1)

    def _per_head(self, x: Tensor) -> Tensor:
        batch, n, dim = x.shape
        return x.view(batch, n, self.heads, dim // self.heads).transpose(1, 2)

    def _merge_heads(self, x: Tensor) -> Tensor:
        batch, heads, n, width = x.shape
        return x.transpose(1, 2).reshape(batch, n, heads * width)

    def _logdet(self, log_attn: Tensor) -> Tensor:
        return (self.dim // self.heads) * torch.diagonal(log_attn, dim1=-2, dim2=-1).sum(dim=(-1, -2))

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (Y2, logdet, log A)."""
        log_attn = self.log_attention(x1)
        y2 = self._merge_heads(torch.matmul(log_attn.exp(), self._per_head(x2)))
        return y2, self._logdet(log_attn), log_attn

    def inverse(self, y1: Tensor, y2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (X2, logdet of the inverse, log A); X2 by a triangular solve, never a dense inverse."""
        log_attn = self.log_attention(y1)
        x2 = torch.linalg.solve_triangular(log_attn.exp(), self._per_head(y2), upper=False)
        return self._merge_heads(x2), -self._logdet(log_attn), log_attn


@dataclass
class AttentionMap:
    """One ICA layer's attention, with every row and column tied back to original token positions.

    ``attention[b, h, i, j]`` is how much value token ``value_tokens[j]`` contributes to output token
    ``value_tokens[i]``; the scores of row i come from query token ``query_tokens[i]`` against key
    token ``query_tokens[j]``. Token indices count ``[A tokens, B tokens]`` from 0. For LICA the
    halves are mixtures W X: the indices are those of the permutation P (exact at initialisation,
    the dominant source after) and ``mixing`` holds the full W.
    """

    block: int
    layer: int
    kind: str
    name: str
    attention: Tensor
    query_tokens: Tensor
    value_tokens: Tensor
    mixing: Tensor | None = None

    def off_diagonal_share(self) -> Tensor:
        """(batch,) how much the layer mixes: 1 - |A_ii| / sum_j |A_ij|, averaged over rows and heads.

        0 for the identity; for a row-stochastic A it is the weight each output token takes from
        other tokens. Training logs it per layer, and the app reads one sentence per layer from it.
        """
        magnitude = self.attention.abs()
        diagonal = torch.diagonal(magnitude, dim1=-2, dim2=-1)
        return (1 - diagonal / magnitude.sum(dim=-1).clamp_min(1e-12)).mean(dim=(-1, -2))

    def token_mixing(self) -> Tensor:
        """The layer's value path as a (batch, N, N) matrix in original token positions (heads averaged).

        Y = M X per channel: M = P^T diag(I, A) P for a fixed partition, W^-1 diag(I, A) W for LICA.
        """
        attn = self.attention.mean(dim=1)
        batch, n, _ = attn.shape
        order = torch.cat([self.query_tokens, self.value_tokens]).to(attn.device)
        block = torch.zeros(batch, 2 * n, 2 * n, dtype=attn.dtype, device=attn.device)
        block[:, :n, :n] = torch.eye(n, dtype=attn.dtype, device=attn.device)
        block[:, n:, n:] = attn
        if self.mixing is None:
            inverse = torch.argsort(order)
            return block[:, inverse][:, :, inverse]
        w = self.mixing.to(attn.dtype)
        return torch.linalg.solve(w, block @ w)


class ICALayer(InvertibleModule):
    """Partition -> ICA -> merge, for a fixed (MMCA/IMCA) or learned (LICA) partition."""

    def __init__(
        self,
        partition: TokenPartition | LearnedTokenMixing,
        dim: int,
        key_dim: int | None = None,
        heads: int = 1,
        diag_bias_init: float | None = 10.0,
    ):
        super().__init__()
        self.partition = partition
        self.attention = InvertibleCrossAttention(dim, key_dim=key_dim, heads=heads, diag_bias_init=diag_bias_init)
        self.kind, self.name = partition.kind, partition.name
        self._last_min_diagonal: Tensor | None = None

    def _track(self, log_attn: Tensor) -> None:
        # The smallest diagonal entry of A bounds how much the inverse amplifies; training logs it.
        # Kept as a tensor: converting here would force a GPU sync in every layer of every step.
        self._last_min_diagonal = torch.diagonal(log_attn.detach(), dim1=-2, dim2=-1).min().exp()

    @property
    def last_min_diagonal(self) -> float | None:
        """Smallest A_ii of the last forward or inverse call (None before any call)."""
        return None if self._last_min_diagonal is None else float(self._last_min_diagonal)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self.partition.split(x)
        y2, logdet, log_attn = self.attention(x1, x2)
        self._track(log_attn)
        return self.partition.merge(x1, y2), logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y1, y2 = self.partition.split(y)
        x2, logdet, log_attn = self.attention.inverse(y1, y2)
        self._track(log_attn)
        return self.partition.merge(y1, x2), logdet

    def attention_map(self, x: Tensor, block: int, layer: int) -> AttentionMap:
        x1, _ = self.partition.split(x)
        mixing = self.partition.mixing_matrix()
        return AttentionMap(
            block=block,
            layer=layer,
            kind=self.kind,
            name=self.name,
            attention=self.attention.log_attention(x1).exp().detach(),
            query_tokens=self.partition.x1_tokens.detach().cpu(),
            value_tokens=self.partition.x2_tokens.detach().cpu(),
            mixing=None if mixing is None else mixing.detach(),
        )
