"""Per-modality image autoencoders: encoders to T tokens of width D, decoders back to pixels.

The encoders are SPEC 5's E_m for an image modality (any channel count: RGB 3, depth 1, ...):
- `ImageEncoder`: a timm ViT trained from scratch (or MAE weights), its patch tokens;
- `PretrainedImageEncoder`: EfficientNet-Lite0 with ImageNet weights, its stride-8, -16 or -32
  feature map as the token grid (a one-channel image is replicated to three).
Every encoder is a *backbone* followed by a *projection* to D. `backbone_features` is the part a
training run can compute once and cache when the backbone is frozen; `project` is the rest.

The decoders are D_m, used in stage 1 (reconstruction) and to turn flow samples back into pixels:
`ConvImageDecoder` upsamples the token grid with convolutions to full resolution (the default),
`ImageDecoder` is MAE-style (ViT blocks, one linear patch each: blocky at 16 px patches).
Both normalise with the modality's fixed mean/std, so callers pass and receive [0, 1] images.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block, VisionTransformer

from .backbones import EFFICIENTNET_MEAN, EFFICIENTNET_STD, EfficientNetBackbone
from .config import ModalityConfig
from .hub import require_hub_file


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, T, p*p*C), patches in raster order (the token order of SPEC 1)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int, grid: tuple[int, int]) -> torch.Tensor:
    """(B, T, p*p*C) -> (B, C, H, W); the inverse of `patchify`."""
    b = patches.shape[0]
    rows, cols = grid
    p = patch_size
    x = patches.reshape(b, rows, cols, p, p, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, rows * p, cols * p)


class _Normalise(nn.Module):
    """Fixed per-channel affine map between [0, 1] pixels and the network's input scale."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        # non-persistent: derived from the config, so they are not weights
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std

    def inverse(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.std + self.mean


class ImageEncoder(nn.Module):
    """timm VisionTransformer over one modality; returns its patch tokens only, projected to D.

    `pretrained` is a timm "name.tag" (e.g. "vit_base_patch16_224.mae"); timm adapts the patch
    embedding to the channel count and resamples position embeddings to `image_size`. With
    `load_pretrained=False` the same architecture is built empty (a checkpoint fills it).
    """

    def __init__(
        self,
        modality: ModalityConfig,
        image_size: int,
        patch_size: int,
        dim: int,
        width: int,
        depth: int,
        heads: int,
        pretrained: str | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.image_size = image_size
        self.patch_size = patch_size
        self.normalise = _Normalise(modality.mean, modality.std)
        if pretrained is not None:
            import timm

            if load_pretrained:
                _require_timm_weights(pretrained)
            self.vit = timm.create_model(
                pretrained, pretrained=load_pretrained, in_chans=modality.channels,
                img_size=image_size, num_classes=0, global_pool="",
            )
        else:
            self.vit = VisionTransformer(
                img_size=image_size, patch_size=patch_size, in_chans=modality.channels,
                num_classes=0, global_pool="", embed_dim=width, depth=depth, num_heads=heads,
                class_token=False,
            )
        vit_width = self.vit.embed_dim
        self.proj = nn.Identity() if vit_width == dim else nn.Linear(vit_width, dim)

    frozen_backbone = False  # trained in stage 1 (and in stage 2 when image encoders are fine-tuned)

    def backbone_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, T, width) ViT patch tokens in raster order."""
        _check_images(pixels, self.modality, self.image_size)
        tokens = self.vit.forward_features(self.normalise(pixels))
        return tokens[:, self.vit.num_prefix_tokens :]

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, T, D) patch tokens in raster order."""
        return self.project(self.backbone_features(pixels))


def _check_images(pixels: torch.Tensor, modality: ModalityConfig, image_size: int) -> None:
    expected = (modality.channels, image_size, image_size)
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
        raise ValueError(
            f"modality {modality.name!r} expects images (B, {expected[0]}, {expected[1]}, "
            f"{expected[2]}), got {tuple(pixels.shape)}"
        )


class PretrainedImageEncoder(nn.Module):
    """EfficientNet-Lite0 (ImageNet) feature map at stride `patch_size` (8: 152 channels, 16: 112, 32: 1280)
    as the token grid, then a linear projection to D.

    The backbone is frozen unless `finetune` (its BatchNorm statistics too: it stays in eval mode),
    and its weights come from `mango.models.weights`, checked against `expected_fingerprint` when a
    checkpoint recorded one. Pixels in [0, 1] are mapped to the backbone's own input scale
    ((x - 0.5) / 0.5), one-channel images replicated to three.
    """

    weights_name = "efficientnet_lite0"

    def __init__(
        self,
        modality: ModalityConfig,
        image_size: int,
        patch_size: int,
        dim: int,
        finetune: bool = False,
        load_pretrained: bool = True,
        expected_fingerprint: str | None = None,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.image_size = image_size
        self.patch_size = patch_size
        self.normalise = _Normalise(EFFICIENTNET_MEAN, EFFICIENTNET_STD)
        self.backbone = EfficientNetBackbone(patch_size)
        self.frozen_backbone = not finetune
        self.weights_fingerprint: str | None = expected_fingerprint
        self.weights_source: str | None = None
        if load_pretrained or self.frozen_backbone:  # frozen weights are never in a checkpoint
            self.weights_fingerprint, self.weights_source = self.backbone.load_pretrained(expected_fingerprint)
        if self.frozen_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.proj = nn.Linear(self.backbone.channels, dim)

    def train(self, mode: bool = True) -> "PretrainedImageEncoder":
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()  # BatchNorm statistics are part of the pretrained weights
        return self

    def backbone_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, T, channels) feature-map tokens in raster order."""
        _check_images(pixels, self.modality, self.image_size)
        x = self.normalise(pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels)
        # a frozen backbone's parameters need no gradient (requires_grad is off), but the pixels may:
        # attributions differentiate through it
        return self.backbone(x).flatten(2).transpose(1, 2)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, T, D)."""
        return self.project(self.backbone_features(pixels))


class ImageDecoder(nn.Module):
    """MAE-style light decoder: tokens -> linear embed + position -> ViT blocks -> pixels per patch.

    Predicts the normalised image (the reconstruction loss compares there, so modalities of
    different scales weigh alike); `forward` maps back to [0, 1] pixel scale.
    """

    def __init__(
        self,
        modality: ModalityConfig,
        image_size: int,
        patch_size: int,
        in_dim: int,
        width: int,
        depth: int,
        heads: int,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.patch_size = patch_size
        self.grid = (image_size // patch_size, image_size // patch_size)
        tokens = self.grid[0] * self.grid[1]
        self.normalise = _Normalise(modality.mean, modality.std)
        self.embed = nn.Linear(in_dim, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.pred = nn.Linear(width, patch_size * patch_size * modality.channels)

    def forward_normalised(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, in_dim) -> (B, C, H, W) in the modality's normalised scale."""
        x = self.blocks(self.embed(tokens) + self.pos_embed)
        patches = self.pred(self.norm(x))
        return unpatchify(patches, self.patch_size, self.modality.channels, self.grid)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, in_dim) -> (B, C, H, W) pixels, [0, 1] scale (not clamped)."""
        return self.normalise.inverse(self.forward_normalised(tokens))

    def reconstruction_loss(self, tokens: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """Mean squared error in normalised space (MAE's per-pixel loss, no masking)."""
        return torch.mean((self.forward_normalised(tokens) - self.normalise(pixels)) ** 2)


class ConvImageDecoder(nn.Module):
    """Tokens -> their grid -> residual conv blocks -> log2(patch) x2 upsampling stages -> pixels.

    Each stage doubles the resolution and halves the width (down to 32 channels), so a 16 px
    patch grid is drawn back at full resolution without the 16 px blocks of a per-patch linear
    readout. Predicts the normalised image; `forward` maps back to [0, 1] pixel scale.
    """

    def __init__(self, modality: ModalityConfig, image_size: int, patch_size: int, in_dim: int,
                 width: int, depth: int = 1) -> None:
        super().__init__()
        if patch_size & (patch_size - 1):
            raise ValueError(f"a conv decoder upsamples by powers of two: patch_size {patch_size} is not one")
        self.modality = modality
        self.grid = (image_size // patch_size, image_size // patch_size)
        self.normalise = _Normalise(modality.mean, modality.std)
        self.stem = nn.Sequential(nn.Conv2d(in_dim, width, 1), *[_Residual(width) for _ in range(depth)])
        stages, channels = [], width
        for _ in range(int(math.log2(patch_size))):
            out = max(channels // 2, 32)
            stages += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), _conv(channels, out)]
            channels = out
        self.up = nn.Sequential(*stages)
        self.pred = nn.Conv2d(channels, modality.channels, 3, padding=1)

    def forward_normalised(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, c = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, c, *self.grid)
        return self.pred(self.up(self.stem(grid)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, in_dim) -> (B, C, H, W) pixels, [0, 1] scale (not clamped)."""
        return self.normalise.inverse(self.forward_normalised(tokens))

    def reconstruction_loss(self, tokens: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """Mean squared error in normalised space."""
        return torch.mean((self.forward_normalised(tokens) - self.normalise(pixels)) ** 2)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(min(8, cout), cout), nn.GELU())


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(width, width), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def build_image_decoder(kind: str, modality: ModalityConfig, image_size: int, patch_size: int, in_dim: int,
                        width: int, depth: int, heads: int) -> nn.Module:
    """The configured decoder: "conv" (`ConvImageDecoder`) or "mae" (`ImageDecoder`)."""
    if kind == "conv":
        return ConvImageDecoder(modality, image_size, patch_size, in_dim, width, depth)
    return ImageDecoder(modality, image_size, patch_size, in_dim, width, depth, heads)


def _require_timm_weights(name: str) -> None:
    """Fail fast (not after timm's ~25 s of Hub retries) when pretrained weights are unreachable."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception as err:  # unknown name
        raise ValueError(f"timm has no pretrained config {name!r}") from err
    if cfg is None or not cfg.hf_hub_id:
        return  # weights from a URL or a file: timm's own handling
    names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    require_hub_file(cfg.hf_hub_id.rstrip("/"), names, what=f"ViT encoder weights {name!r}")
