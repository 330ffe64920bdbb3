"""Task heads (SPEC 6). Each reads a list of token sets, one (B, T, D) tensor per modality.

With a flow the token sets are Z's A and B halves; for the baselines they are encoder features
(both for "concat", one for "late" / "single_*"). A head therefore takes `num_inputs` sets and
fuses them itself (per-token concatenation), so one head class serves every fusion kind.
Every head also takes `pad_masks`, one (B, T) bool mask or None per token set (True at a text
modality's pad positions); only the genre head with ``pooling="words"`` reads them.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import HEAD_POOLINGS, MangoConfig, ModalityConfig
from .image import build_image_decoder


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, T, C) raster-ordered tokens -> (B, C, rows, cols)."""
    b, t, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, *grid)


class _TokenNorms(nn.Module):
    """One LayerNorm per input token set, then per-token concatenation: (B, T, k*D)."""

    def __init__(self, num_inputs: int, dim: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_inputs))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.norms):
            raise ValueError(f"head expects {len(self.norms)} token sets, got {len(inputs)}")
        return torch.cat([norm(x) for norm, x in zip(self.norms, inputs)], dim=-1)


def _conv_block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.GroupNorm(min(8, cout), cout),
        nn.GELU(),
    )


class SegmentationHead(nn.Module):
    """Token grids fused by concat + 1x1 conv, a light conv decoder (two x2 upsampling stages),
    class logits bilinearly upsampled to the input size: (B, num_classes, H, W)."""

    def __init__(
        self, num_inputs: int, dim: int, width: int, num_classes: int,
        grid: tuple[int, int], image_size: int, patch_size: int,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.image_size = image_size
        self.norms = _TokenNorms(num_inputs, dim)
        self.fuse = _conv_block(num_inputs * dim, width, 1)
        stages, channels = [], width
        for _ in range(min(2, int(math.log2(patch_size)))):
            out = max(channels // 2, 32)
            stages += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), _conv_block(channels, out, 3)]
            channels = out
        self.decoder = nn.Sequential(_conv_block(width, width, 3), *stages)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, inputs: list[torch.Tensor], pad_masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        x = tokens_to_grid(self.norms(inputs), self.grid)
        logits = self.classifier(self.decoder(self.fuse(x)))
        return F.interpolate(logits, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)


class TranslationHead(nn.Module):
    """Token sets concatenated per token, then an image decoder (convolutional upsampler or
    MAE-style, as configured) to the target image (B, C_target, H, W), in its [0, 1] pixel scale."""

    def __init__(
        self, num_inputs: int, dim: int, target: ModalityConfig, image_size: int,
        patch_size: int, width: int, depth: int, heads: int, decoder: str = "conv",
    ) -> None:
        super().__init__()
        self.norms = _TokenNorms(num_inputs, dim)
        self.decoder = build_image_decoder(decoder, target, image_size, patch_size, num_inputs * dim, width, depth, heads)

    def forward(self, inputs: list[torch.Tensor], pad_masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        return self.decoder(self.norms(inputs))


class GenreHead(nn.Module):
    """Pooled token sets concatenated, then a two-layer MLP (or, with width 0, one linear layer)
    to multi-label logits (B, num_classes).

    ``pooling="mean"`` averages all T positions of each set, pads included: in Z they carry mixed
    content. ``pooling="words"`` averages a text set over its word positions only (the pad mask
    given with it; all positions when none is given, e.g. for a prior sample, which has no plot).
    A plain mean dilutes a short plot's words by its pads, in proportion to its length; with the
    bundled genre recipe, pooling words gave a steadier micro F1 and no better macro F1 (README,
    "Bundled checkpoints"). Either way the pooling is a fixed function of Z and the mask, so
    attributions over Z still add up.

    ``token_mlp=True`` moves the MLP's hidden layer before the pooling (one per set, applied to
    every token), so a genre can be read from a few telling tokens instead of from their average.
    Such a head generalised better on fixed encoder features, but not in the trained genre model
    (docs/genre-experiments.md), so it is off by default.
    """

    def __init__(self, num_inputs: int, dim: int, width: int, num_classes: int, dropout: float = 0.1,
                 pooling: str = "mean", token_mlp: bool = False) -> None:
        super().__init__()
        if pooling not in HEAD_POOLINGS:
            raise ValueError(f"pooling must be one of {HEAD_POOLINGS}, got {pooling!r}")
        if token_mlp and width < 1:
            raise ValueError(f"a token-wise MLP needs a hidden width >= 1, got {width}")
        self.pooling = pooling
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_inputs))
        self.token_layers = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, width), nn.GELU()) for _ in range(num_inputs if token_mlp else 0)
        )
        if token_mlp:
            self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_inputs * width, num_classes))
        elif width > 0:
            self.mlp = nn.Sequential(
                nn.Linear(num_inputs * dim, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, num_classes)
            )
        else:
            self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_inputs * dim, num_classes))

    def forward(self, inputs: list[torch.Tensor], pad_masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        if len(inputs) != len(self.norms):
            raise ValueError(f"head expects {len(self.norms)} token sets, got {len(inputs)}")
        masks = pad_masks if pad_masks is not None and self.pooling == "words" else [None] * len(inputs)
        tokens = [norm(x) for norm, x in zip(self.norms, inputs)]
        if self.token_layers:
            tokens = [layer(x) for layer, x in zip(self.token_layers, tokens)]
        pooled = [mean_over_positions(x, pad) for x, pad in zip(tokens, masks)]
        return self.mlp(torch.cat(pooled, dim=-1))


def mean_over_positions(tokens: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
    """(B, T, D) -> (B, D): the mean over all positions, or over those not marked in `pad` (B, T)."""
    if pad is None:
        return tokens.mean(dim=1)
    keep = (~pad.to(tokens.device, torch.bool)).to(tokens.dtype)[..., None]
    return (tokens * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


def build_head(config: MangoConfig, num_inputs: int) -> nn.Module:
    """The task's head reading `num_inputs` token sets of width config.dim."""
    if config.task == "segmentation":
        return SegmentationHead(
            num_inputs, config.dim, config.head_width, config.num_classes,
            config.grid, config.image_size, config.patch_size,
        )
    if config.task == "translation":
        assert config.target is not None
        return TranslationHead(
            num_inputs, config.dim, config.target, config.image_size, config.patch_size,
            config.head_width, config.head_depth, config.decoder_heads, config.decoder,
        )
    return GenreHead(num_inputs, config.dim, config.head_width, config.num_classes, config.head_dropout,
                     config.head_pooling, config.head_token_mlp)
