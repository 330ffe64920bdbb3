"""Per-modality image autoencoder: a timm ViT encoder to T patch tokens, an MAE-style decoder back.

The encoder is SPEC 5's E_m for an image modality (any channel count: RGB 3, depth 1, ...); the
decoder is D_m, used in stage 1 (reconstruction) and to turn flow samples back into pixels.
Both normalise with the modality's fixed mean/std, so callers pass and receive [0, 1] images.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block, VisionTransformer

from .config import ModalityConfig


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

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, T, D) patch tokens in raster order."""
        expected = (self.modality.channels, self.image_size, self.image_size)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise ValueError(
                f"modality {self.modality.name!r} expects images (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(pixels.shape)}"
            )
        tokens = self.vit.forward_features(self.normalise(pixels))
        return self.proj(tokens[:, self.vit.num_prefix_tokens :])


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


def _require_timm_weights(name: str) -> None:
    """Fail fast (not after timm's ~25 s of Hub retries) when pretrained weights are unreachable."""
    import timm

    from .hub import require_hub_file

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception as err:  # unknown name
        raise ValueError(f"timm has no pretrained config {name!r}") from err
    if cfg is None or not cfg.hf_hub_id:
        return  # weights from a URL or a file: timm's own handling
    names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    require_hub_file(cfg.hf_hub_id.rstrip("/"), names, what=f"ViT encoder weights {name!r}")
