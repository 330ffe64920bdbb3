"""The invertible cross-attention (ICA) layer (SPEC 2), in the forms the project compares.

X1 computes a causal attention matrix S = causal softmax(LN(X1 Wq) LN(X1 Wk)^T / tau) (lower
triangular, rows sum to one). A mixing matrix A built from S mixes the tokens of X2, channel by
channel: Y1 = X1, Y2 = A X2. X1 passes unchanged, so the Jacobian is block triangular and
log|det| = (D/h) sum over heads and rows of log A_ii, computed without taking the log of a
rounded probability. The inverse recomputes A from Y1 = X1 and solves A X2 = Y2 by a triangular
solve (never a dense inverse).

The forms (``form``), and why the default is what it is:
- ``"gated"`` (default): A = (1 - alpha) I + alpha S, with one learnable gate per head,
  alpha = low + (high - low) sigmoid(p), in (``gate_range``) = (0, 1/2) by default. The
  attention is never saturated (no logit bias), so gradients reach the query and key maps from
  the first step, and the diagonal dominates every row *by construction*:
  A_ii - sum_{j<i} |A_ij| >= 1 - 2 |alpha| for alpha >= 0 (= 1 for alpha <= 0), so
  ||A^-1||_inf <= 1 / (1 - 2 alpha_max) per layer; and since D^-1 (A - D) is non-negative with
  row sums <= 1 and nilpotent, also ||A^-1||_inf <= n / (1 - alpha_max) whatever alpha < 1 does.
  A negative lower bound in ``gate_range`` lets a layer subtract the attended tokens
  (a sharpening, decorrelating mix) instead of averaging them.
- ``"identity_plus"``: A = I + S, the construction of the authors' partial code release
  (``uark-cviu/MANGO``, ``models/inv_attention.py``): diagonal in (1, 2], rows sum to 2,
  ||A^-1||_inf <= n. (Their temperature starts at 1; ours at sqrt(Dk), as SPEC 2 says, because
  our queries and keys are LayerNorm-ed and a temperature of 1 saturates the softmax.)
- ``"diag_bias"``: A = causal softmax(S + beta I), beta learnable, initialised at 10: the first
  release's form. It inverts well but saturates the softmax, so the off-diagonal weights and
  their gradients are about e^-10 and the layer stays the identity. Kept for the ablation.
- ``"literal"``: A = S, SPEC 2 to the letter. Near-uniform causal attention has A_ii ~ 1/i and
  det A ~ 1/n!, so a random stack cannot be inverted in float32. Experiments only.

``exclude_self=True`` (gated form) takes the diagonal out of S for every row but the first
(whose only causal neighbour is itself): S_ij over j < i. Then A_ii = 1 - alpha exactly, so the
off-diagonal share of row i > 0 *is* alpha: a layer mixes as much as its gate says, and attention
decides only *which* earlier tokens it mixes in. Without it, S can learn S_ii -> 1 and the layer
becomes the identity whatever alpha is (measured: block-1 layers of a trained segmentation model
with alpha >= 0.15 mixed 0.6 % of their content). log A_ii = log(1 - alpha) no longer depends
on the input; the bounds above hold unchanged.

``unit_diagonal=True`` (gated form) divides each row of A by its diagonal: A' = diag(A)^-1 A, so
A'_ii = 1 and the mixing adds nothing to log|det|. Each output token is x_i plus the same
neighbours in the same proportions as before, so the off-diagonal share is unchanged; what goes
is the likelihood's pull towards S_ii -> 1 (log A_ii = log(1 - alpha (1 - S_ii)) is largest at
S_ii = 1), which measurably shuts the layers as the NLL weight grows. Per-token scaling is left to
the value affine, whose scale depends on X1 and is counted in log|det|.

``value_affine=True`` adds a scale and shift from the X1 context, routed by the same attention:
C = S (LN(X1) Wc) (row i reads the X1 tokens that query i attends to), [s, t] = zero-initialised
linear maps of C, Y2 = exp(s) * (A X2) + t, with |s| < 0.5 (``scale_bound``): a token sits in X2
in half of a block's eight layers, so a looser bound compounds over a deep flow (a bound of 2
overflowed float32 within three Adam steps at 12 blocks). The attention stays the readable mixing matrix, and
X1's content can now reach X2 (with A alone, modality A only decides *how* modality B's tokens
are averaged). log|det| gains sum(s); the inverse undoes the affine, then solves.

Numerics: scores, the mixing and the solve run in float32 even under bf16 autocast, so a forward
in bf16 and an inverse in float32 see the same A up to the scores' rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import InvertibleModule, at_least_float32
from .partitions import LearnedTokenMixing, TokenPartition

ICA_FORMS = ("gated", "identity_plus", "diag_bias", "literal")


class InvertibleCrossAttention(nn.Module):
    """S from X1, A from S (by ``form``), Y2 = A X2 per head on D/h channels (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        key_dim: int | None = None,
        heads: int = 1,
        form: str = "gated",
        diag_bias_init: float = 10.0,
        gate_init: float = 0.1,
        gate_range: tuple[float, float] = (0.0, 0.5),
        value_affine: bool = False,
        scale_bound: float = 0.5,
        exclude_self: bool = False,
        unit_diagonal: bool = False,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        if form not in ICA_FORMS:
            raise ValueError(f"ICA form must be one of {ICA_FORMS}, got {form!r}")
        if exclude_self and form != "gated":
            raise ValueError(f"exclude_self needs the gated form (A = (1 - alpha) I + alpha S), got {form!r}")
        if unit_diagonal and form != "gated":
            raise ValueError(f"unit_diagonal needs the gated form (A = (1 - alpha) I + alpha S), got {form!r}")
        self.dim, self.heads, self.form, self.exclude_self = dim, heads, form, exclude_self
        self.unit_diagonal = unit_diagonal
        self.key_dim = key_dim or min(64, dim)
        self.to_q = nn.Linear(dim, heads * self.key_dim, bias=False)
        self.to_k = nn.Linear(dim, heads * self.key_dim, bias=False)
        self.q_norm = nn.LayerNorm(self.key_dim)
        # no key bias: it shifts each row's scores by the same q_i . b, which softmax ignores
        self.k_norm = nn.LayerNorm(self.key_dim, bias=False)
        # tau = exp(log_temperature) stays positive; initialised at sqrt(Dk) as in SPEC 2.
        self.log_temperature = nn.Parameter(torch.tensor(0.5 * math.log(self.key_dim)))
        self.diag_bias = nn.Parameter(torch.full((heads,), float(diag_bias_init))) if form == "diag_bias" else None
        self.gate_logit: nn.Parameter | None = None
        if form == "gated":
            low, high = (float(v) for v in gate_range)
            if not (low < high <= 0.5 and low > -1.0):
                raise ValueError(f"gate_range must satisfy -1 < low < high <= 0.5 (diagonal dominance), got {gate_range}")
            if not low < gate_init < high:
                raise ValueError(f"gate_init {gate_init} must lie inside gate_range {gate_range}")
            self.gate_low, self.gate_high = low, high
            fraction = (gate_init - low) / (high - low)
            self.gate_logit = nn.Parameter(torch.full((heads,), math.log(fraction / (1 - fraction))))
        self.scale_bound = scale_bound
        self.context: nn.Linear | None = None
        self.affine: nn.Linear | None = None
        self.context_norm: nn.LayerNorm | None = None
        if value_affine:
            # the context reads LayerNorm-ed X1, so its size does not grow with depth
            self.context_norm = nn.LayerNorm(dim)
            self.context = nn.Linear(dim, dim, bias=False)
            self.affine = nn.Linear(dim, 2 * dim)
            nn.init.zeros_(self.affine.weight)
            nn.init.zeros_(self.affine.bias)

    # -- the attention and the mixing matrix -------------------------------------------------------
    def gate(self) -> Tensor | None:
        """alpha per head (gated form), else None."""
        if self.gate_logit is None:
            return None
        return self.gate_low + (self.gate_high - self.gate_low) * torch.sigmoid(self.gate_logit)

    def log_scores(self, x1: Tensor) -> Tensor:
        """log S of shape (batch, heads, n, n) in float32; -inf above the diagonal."""
        batch, n, _ = x1.shape
        q = self.q_norm(self.to_q(x1).view(batch, n, self.heads, self.key_dim)).transpose(1, 2)
        k = self.k_norm(self.to_k(x1).view(batch, n, self.heads, self.key_dim)).transpose(1, 2)
        scores = at_least_float32(torch.matmul(q, k.transpose(-1, -2))) / torch.exp(self.log_temperature.float())
        if self.diag_bias is not None:
            eye = torch.eye(n, dtype=scores.dtype, device=scores.device)
            scores = scores + self.diag_bias.float().view(1, -1, 1, 1) * eye
        above = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
        if self.exclude_self:  # row 0 keeps itself: it has no earlier token
            above = above | torch.eye(n, dtype=torch.bool, device=scores.device)
            above[0, 0] = False
        return torch.log_softmax(scores.masked_fill(above, float("-inf")), dim=-1)

    def mixing(self, log_scores: Tensor) -> tuple[Tensor, Tensor]:
        """(A, log A_ii): the value-path matrix (batch, heads, n, n) and its log-diagonal (batch, heads, n)."""
        scores = log_scores.exp()
        log_diag = torch.diagonal(log_scores, dim1=-2, dim2=-1)
        if self.form in ("literal", "diag_bias"):
            return scores, log_diag
        n = scores.shape[-1]
        eye = torch.eye(n, dtype=scores.dtype, device=scores.device)
        if self.form == "identity_plus":
            return scores + eye, F.softplus(log_diag)  # log(1 + S_ii), exact for S_ii near 0 or 1
        alpha = self.gate().to(scores.dtype).view(1, -1, 1, 1)  # type: ignore[union-attr]
        # A_ii = 1 - alpha (1 - S_ii) = 1 + alpha expm1(log S_ii): no rounded probability is logged
        log_a_diag = torch.log1p(alpha[..., 0] * torch.expm1(log_diag))
        attn = alpha * scores + (1 - alpha) * eye
        if self.unit_diagonal:
            return attn * torch.exp(-log_a_diag).unsqueeze(-1), torch.zeros_like(log_a_diag)
        return attn, log_a_diag

    # -- heads ---------------------------------------------------------------------------------------
    def _per_head(self, x: Tensor) -> Tensor:
        batch, n, dim = x.shape
        return x.reshape(batch, n, self.heads, dim // self.heads).transpose(1, 2)

    def _merge_heads(self, x: Tensor) -> Tensor:
        batch, heads, n, width = x.shape
        return x.transpose(1, 2).reshape(batch, n, heads * width)

    def _affine(self, x1: Tensor, log_scores: Tensor) -> tuple[Tensor, Tensor] | None:
        if self.affine is None or self.context is None:
            return None
        values = at_least_float32(self.context(self.context_norm(x1)))  # type: ignore[misc]
        context = self._merge_heads(torch.matmul(log_scores.exp(), self._per_head(values)))
        raw_scale, shift = at_least_float32(self.affine(context)).chunk(2, dim=-1)
        return self.scale_bound * torch.tanh(raw_scale / self.scale_bound), shift

    def _logdet(self, log_diag: Tensor, affine: tuple[Tensor, Tensor] | None) -> Tensor:
        logdet = (self.dim // self.heads) * log_diag.sum(dim=(-1, -2))
        if affine is not None:
            logdet = logdet + affine[0].sum(dim=(1, 2))
        return logdet

    # -- the invertible map --------------------------------------------------------------------------
    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (Y2, logdet, log A_ii of shape (batch, heads, n))."""
        log_scores = self.log_scores(x1)
        attn, log_diag = self.mixing(log_scores)
        with torch.autocast(x2.device.type, enabled=False):
            y2 = self._merge_heads(torch.matmul(attn, self._per_head(at_least_float32(x2))))
            affine = self._affine(x1, log_scores)
            if affine is not None:
                y2 = y2 * torch.exp(affine[0]) + affine[1]
        return y2, self._logdet(log_diag, affine), log_diag

    def inverse(self, y1: Tensor, y2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (X2, logdet of the inverse, log A_ii); X2 by a triangular solve, never a dense inverse."""
        log_scores = self.log_scores(y1)
        attn, log_diag = self.mixing(log_scores)
        with torch.autocast(y2.device.type, enabled=False):
            y2 = at_least_float32(y2)
            affine = self._affine(y1, log_scores)
            if affine is not None:
                y2 = (y2 - affine[1]) * torch.exp(-affine[0])
            x2 = torch.linalg.solve_triangular(attn, self._per_head(y2), upper=False)
        return self._merge_heads(x2), -self._logdet(log_diag, affine), log_diag


@dataclass
class AttentionMap:
    """One ICA layer's attention, with every row and column tied back to original token positions.

    ``attention[b, h, i, j]`` is the mixing matrix A: how much value token ``value_tokens[j]``
    contributes to output token ``value_tokens[i]`` (negative where a signed gate subtracts).
    ``scores[b, h, i, j]`` is the causal softmax S that A is built from: row i compares query token
    ``query_tokens[i]`` with key token ``query_tokens[j]``. ``gate`` is alpha per head for the
    gated form (A = (1 - alpha) I + alpha S), else None. Token indices count ``[A tokens, B tokens]``
    from 0. For LICA the halves are mixtures W X: the indices are those of the permutation P (exact
    at initialisation; after training the largest single weight of each row of W, a small part of
    the row) and ``mixing`` holds the full W.
    """

    block: int
    layer: int
    kind: str
    name: str
    attention: Tensor
    query_tokens: Tensor
    value_tokens: Tensor
    mixing: Tensor | None = None
    scores: Tensor | None = None
    gate: Tensor | None = None
    form: str = "gated"

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
    """Partition -> ICA -> merge, for a fixed (MMCA/IMCA) or learned (LICA) partition.

    Keyword options go to `InvertibleCrossAttention` (form, gate, value affine, ...)."""

    def __init__(
        self,
        partition: TokenPartition | LearnedTokenMixing,
        dim: int,
        key_dim: int | None = None,
        heads: int = 1,
        **attention_options,
    ):
        super().__init__()
        self.partition = partition
        self.attention = InvertibleCrossAttention(dim, key_dim=key_dim, heads=heads, **attention_options)
        self.kind, self.name = partition.kind, partition.name
        self._last_min_diagonal: Tensor | None = None

    def _track(self, log_diag: Tensor) -> None:
        # The smallest diagonal entry of A is what the inverse's triangular solve divides by; training logs it.
        # Kept as a tensor: converting here would force a GPU sync in every layer of every step.
        self._last_min_diagonal = log_diag.detach().min().exp()

    @property
    def last_min_diagonal(self) -> float | None:
        """Smallest A_ii of the last forward or inverse call (None before any call)."""
        return None if self._last_min_diagonal is None else float(self._last_min_diagonal)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self.partition.split(x)
        y2, logdet, log_diag = self.attention(x1, x2)
        self._track(log_diag)
        return self.partition.merge(x1, y2.to(x.dtype)), logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y1, y2 = self.partition.split(y)
        x2, logdet, log_diag = self.attention.inverse(y1, y2)
        self._track(log_diag)
        return self.partition.merge(y1, x2.to(y.dtype)), logdet

    @torch.no_grad()
    def attention_map(self, x: Tensor, block: int, layer: int) -> AttentionMap:
        x1, _ = self.partition.split(x)
        mixing = self.partition.mixing_matrix()
        log_scores = self.attention.log_scores(x1)
        attn, _ = self.attention.mixing(log_scores)
        gate = self.attention.gate()
        return AttentionMap(
            block=block,
            layer=layer,
            kind=self.kind,
            name=self.name,
            attention=attn.detach(),
            query_tokens=self.partition.x1_tokens.detach().cpu(),
            value_tokens=self.partition.x2_tokens.detach().cpu(),
            mixing=None if mixing is None else mixing.detach(),
            scores=log_scores.exp().detach(),
            gate=None if gate is None else gate.detach().cpu(),
            form=self.attention.form,
        )
