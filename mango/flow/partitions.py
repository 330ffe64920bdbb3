"""Who attends and whose tokens are mixed: the MMCA, IMCA and LICA partitions (SPEC 3).

A partition splits the N = 2T tokens of ``[A tokens, B tokens]`` into two halves of n = T
tokens: X1 (computes the attention, passes unchanged) and X2 (mixed by it), and merges the
halves back afterwards. MMCA and IMCA are fixed index partitions; LICA first mixes all tokens
with a learnable invertible matrix W and undoes it after the merge.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import at_least_float32


class TokenPartition(nn.Module):
    """A fixed split by token index: X1 = x[:, x1_tokens], X2 = x[:, x2_tokens]; merge puts tokens back."""

    def __init__(self, name: str, kind: str, x1_tokens: list[int], x2_tokens: list[int]):
        super().__init__()
        order = list(x1_tokens) + list(x2_tokens)
        if sorted(order) != list(range(len(order))) or len(x1_tokens) != len(x2_tokens):
            raise ValueError(f"partition {name!r} must split 0..N-1 into two equal halves")
        self.name = name
        self.kind = kind
        self.register_buffer("x1_tokens", torch.tensor(x1_tokens, dtype=torch.long), persistent=False)
        self.register_buffer("x2_tokens", torch.tensor(x2_tokens, dtype=torch.long), persistent=False)
        self.register_buffer("inverse_order", torch.argsort(torch.tensor(order)), persistent=False)

    @property
    def half(self) -> int:
        return self.x1_tokens.numel()

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.x1_tokens], x[:, self.x2_tokens]

    def merge(self, y1: Tensor, y2: Tensor) -> Tensor:
        return torch.cat([y1, y2], dim=1)[:, self.inverse_order]

    def mixing_matrix(self) -> Tensor | None:
        """A fixed partition mixes nothing before the split."""
        return None


class LearnedTokenMixing(nn.Module):
    """LICA: X' = W X over the token axis, W = P L (U + diag(s)), as Glow's LU 1x1 conv but over tokens.

    P is a fixed permutation, L unit lower triangular, U strictly upper triangular, s = sign * exp(log_s).
    Initialised at W = P, so the layer starts as the fixed partition that P describes. W and W^-1
    are applied by triangular products and solves, never a dense inverse. Their log-dets
    (D sum log|s| and its negative) cancel inside an ICA layer, so none is added here.
    """

    def __init__(self, name: str, permutation: list[int]):
        super().__init__()
        n_tokens = len(permutation)
        if sorted(permutation) != list(range(n_tokens)) or n_tokens % 2:
            raise ValueError(f"LICA {name!r} needs a permutation of an even number of tokens")
        self.name = name
        self.kind = "lica"
        self.lower = nn.Parameter(torch.zeros(n_tokens, n_tokens))
        self.upper = nn.Parameter(torch.zeros(n_tokens, n_tokens))
        self.log_s = nn.Parameter(torch.zeros(n_tokens))
        self.register_buffer("sign_s", torch.ones(n_tokens))
        perm = torch.tensor(permutation, dtype=torch.long)
        self.register_buffer("permutation", perm, persistent=False)
        self.register_buffer("inverse_permutation", torch.argsort(perm), persistent=False)
        self.register_buffer("eye", torch.eye(n_tokens), persistent=False)

    @property
    def half(self) -> int:
        return self.permutation.numel() // 2

    @property
    def x1_tokens(self) -> Tensor:
        """Original tokens that P sends to X1 (exact at initialisation; after training the largest single
        weight of each row of W, though a small part of the row)."""
        return self.permutation[: self.half]

    @property
    def x2_tokens(self) -> Tensor:
        return self.permutation[self.half :]

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = self.eye.to(self.lower.dtype)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def mixing_matrix(self) -> Tensor:
        """W = P L U as a dense (N, N) matrix, for reading and for tests."""
        lower, upper = self._factors()
        return (lower @ upper)[self.permutation]

    def mix(self, x: Tensor) -> Tensor:
        # float32 even under bf16 autocast: W and its triangular inverse must agree to float precision
        with torch.autocast(x.device.type, enabled=False):
            lower, upper = self._factors()
            h = at_least_float32(x)
            h = torch.matmul(lower.to(h.dtype), torch.matmul(upper.to(h.dtype), h))
        return h[:, self.permutation]

    def unmix(self, y: Tensor) -> Tensor:
        with torch.autocast(y.device.type, enabled=False):
            lower, upper = self._factors()
            h = y[:, self.inverse_permutation]
            h = at_least_float32(h)
            h = _solve_over_tokens(lower.to(h.dtype), h, upper=False, unitriangular=True)
            return _solve_over_tokens(upper.to(h.dtype), h, upper=True)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mixed = self.mix(x)
        return mixed[:, : self.half], mixed[:, self.half :]

    def merge(self, y1: Tensor, y2: Tensor) -> Tensor:
        return self.unmix(torch.cat([y1, y2], dim=1))


def _solve_over_tokens(matrix: Tensor, h: Tensor, **triangular: bool) -> Tensor:
    """``matrix``⁻¹ applied over the token axis (1) of ``h``, as one system with every other entry a right-hand
    side: broadcast over the batch, the solver ran one small system per example, 2.4× slower on CPU (512 tokens)."""
    moved = h.movedim(1, 0)
    solved = torch.linalg.solve_triangular(matrix, moved.reshape(moved.shape[0], -1), **triangular)
    return solved.reshape(moved.shape).movedim(0, 1)


def mmca_partitions(tokens_per_modality: int) -> list[TokenPartition]:
    """MMCA A->B (A attends, B is mixed) and B->A."""
    t = tokens_per_modality
    a, b = list(range(t)), list(range(t, 2 * t))
    return [TokenPartition("MMCA A→B", "mmca", a, b), TokenPartition("MMCA B→A", "mmca", b, a)]


def imca_partitions(tokens_per_modality: int) -> list[TokenPartition]:
    """The four IMCA variants [A¹,B¹|A²,B²], [A¹,B²|A²,B¹], [A²,B¹|A¹,B²], [A²,B²|A¹,B¹]."""
    t = tokens_per_modality
    if t % 2:
        raise ValueError(f"IMCA splits each modality in halves: tokens per modality must be even, got {t}")
    h = t // 2
    halves = {
        "A¹": list(range(0, h)),
        "A²": list(range(h, t)),
        "B¹": list(range(t, t + h)),
        "B²": list(range(t + h, 2 * t)),
    }
    variants = [("A¹", "B¹", "A²", "B²"), ("A¹", "B²", "A²", "B¹"), ("A²", "B¹", "A¹", "B²"), ("A²", "B²", "A¹", "B¹")]
    return [
        TokenPartition(
            f"IMCA [{p},{q}|{r},{s}]", "imca", halves[p] + halves[q], halves[r] + halves[s]
        )
        for p, q, r, s in variants
    ]


def lica_permutation(tokens_per_modality: int, swap: bool = False) -> list[int]:
    """P interleaves the modalities in a checkerboard, so each half holds alternate tokens of A and B.

    X1 = (a_0, b_1, a_2, b_3, ...) interleaved as a_0, b_1, a_2, ...; X2 = (b_0, a_1, b_2, a_3, ...).
    Both halves span both images; ``swap`` exchanges the roles of A and B.
    """
    t = tokens_per_modality
    a, b = (t, 0) if swap else (0, t)
    x1 = [(a if i % 2 == 0 else b) + i for i in range(t)]
    x2 = [(b if i % 2 == 0 else a) + i for i in range(t)]
    return x1 + x2


def lica_partitions(tokens_per_modality: int) -> list[LearnedTokenMixing]:
    return [
        LearnedTokenMixing("LICA 1", lica_permutation(tokens_per_modality, swap=False)),
        LearnedTokenMixing("LICA 2", lica_permutation(tokens_per_modality, swap=True)),
    ]
