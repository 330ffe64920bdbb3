"""Fusion kinds: which token sets each head reads, and how head outputs combine.

One table for MANGO and its baselines, so the model class has no per-baseline branches:
- "mango" / "coupling": the flow maps F = [A; B] to Z; one head reads Z's A and B halves.
- "concat": no flow; one head reads both modalities' encoder features (feature concatenation).
- "late":   no flow; one head per modality, each on its own features; outputs averaged.
- "single_a" / "single_b": no flow; one head on one modality's features; the other is not encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import MangoConfig


@dataclass(frozen=True)
class FusionPlan:
    """Static description of a fusion kind (derived from the config, never stored)."""

    modalities: tuple[str, ...]  # encoded modalities, in token order ("a" first)
    uses_flow: bool
    head_inputs: tuple[tuple[str, ...], ...]  # per head: the token sets it reads

    @property
    def num_heads(self) -> int:
        return len(self.head_inputs)


def fusion_plan(config: MangoConfig) -> FusionPlan:
    kind = config.fusion
    if kind in ("mango", "coupling"):
        return FusionPlan(("a", "b"), True, (("a", "b"),))
    if kind == "concat":
        return FusionPlan(("a", "b"), False, (("a", "b"),))
    if kind == "late":
        return FusionPlan(("a", "b"), False, (("a",), ("b",)))
    if kind == "single_a":
        return FusionPlan(("a",), False, (("a",),))
    if kind == "single_b":
        return FusionPlan(("b",), False, (("b",),))
    raise ValueError(f"unknown fusion {kind!r}")


def split_tokens(tokens: torch.Tensor, modalities: tuple[str, ...], per_modality: int) -> dict[str, torch.Tensor]:
    """(B, len(modalities)*T, D) -> {"a": (B, T, D), "b": ...} in the plan's token order."""
    expected = len(modalities) * per_modality
    if tokens.ndim != 3 or tokens.shape[1] != expected:
        raise ValueError(f"expected tokens (B, {expected}, D) for modalities {modalities}, got {tuple(tokens.shape)}")
    return {key: tokens[:, i * per_modality : (i + 1) * per_modality] for i, key in enumerate(modalities)}


def combine_outputs(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Late fusion: the mean of the heads' outputs (logits, or images); one head passes through."""
    return outputs[0] if len(outputs) == 1 else torch.stack(outputs).mean(dim=0)
