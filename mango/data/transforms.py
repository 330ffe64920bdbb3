"""Shared train/eval transforms and the per-domain value conventions.

Geometry (every loader): *shorter side resize, then a square crop* of ``image_size``.
- eval (``train=False``): resize the shorter side to ``image_size`` and take the centre crop.
- train (``train=True``): resize the shorter side to ``round(image_size * train_scale)``
  (default 1.125, as the peer protocol's 286 -> 256), take a random ``image_size`` crop, and flip
  left-right with probability 1/2. The same crop and flip apply to every field of a sample.
Images use bilinear interpolation with antialiasing; label masks use nearest neighbour.
Randomness comes from torch's generator, so DataLoader workers draw different crops.

Photometric jitter (``ColourJitter``, segmentation loaders with ``photometric=True``, training
only): brightness, contrast and saturation each scaled by a factor in [0.6, 1.4] and hue shifted
by up to 0.05 turn, in a random order (torchvision's ``ColorJitter``), then with chance 0.3 a
Gaussian blur (σ 0.1-1.5 px). A camera's exposure, white balance and focus vary where a renderer's
need not; depth is left in metres. Measured on SynthRooms -> NYUDv2 transfer: no gain
(docs/transfer-experiments.md).

Value conventions (float32, channels first):
- rgb: uint8 / 255, 3 channels.
- NYU/SUN depth: metres / ``depth_max``, clipped to [0, 1], 1 channel (``depth_to_unit``). A stored
  0 is a depth camera's "no measurement" (shadows behind edges, glass, black or distant surfaces):
  such holes take the depth of their nearest measured pixel (``fill_depth_holes``) before anything
  else, as the models train on complete depth. Read as 0 m they cost SynthRooms 0.12-0.18 mIoU at
  15 % holes; filled, 0.03 (docs/depth-holes.md).
- Taskonomy ``depth_zbuffer`` / ``depth_euclidean`` (uint16, 1/512 m): the peer protocol's
  ``log(1 + raw) / 11.1`` clipped to [0, 1] (log(65536) = 11.09, so raw 65535 = invalid -> ~1.0).
- ``normal``: stored uint8 / 255, 3 channels (127-centred: x right, y up, z towards the camera).
  A left-right flip also mirrors the x channel: ``x -> 254/255 - x``.
- ``reshading``: uint8 / 255, 1 channel.  ``edge_texture``: uint16 / 11355, clipped, 1 channel
  (``edge_occlusion``: / 11584).  ``principal_curvature``: uint8 / 255, 3 channels.
- ``segment_semantic``: int64 labels (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torchvision.transforms import v2

from .errors import DataError

TASKONOMY_DEPTH_LOG_MAX = 11.1  # peer protocol: log(1 + raw uint16) / 11.1
TASKONOMY_EDGE_MAX = {"edge_texture": 11355.0, "edge_occlusion": 11584.0}


@dataclass(frozen=True)
class CropParams:
    resized: tuple[int, int]  # (h, w) after the shorter-side resize
    top: int
    left: int
    size: int
    flip: bool


class PairedTransform:
    """One geometric transform shared by all fields of a sample (see the module docstring)."""

    def __init__(self, image_size: int, train: bool, train_scale: float = 1.125, hflip: bool = True):
        if int(image_size) < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size}")
        self.image_size = int(image_size)
        self.train = bool(train)
        self.train_scale = float(train_scale) if train else 1.0
        self.hflip = bool(hflip) and self.train

    def params(self, h: int, w: int) -> CropParams:
        target = max(self.image_size, round(self.image_size * self.train_scale))
        scale = target / min(h, w)
        rh, rw = (target, max(target, round(w * scale))) if h <= w else (max(target, round(h * scale)), target)
        if self.train:
            top = int(torch.randint(0, rh - self.image_size + 1, ()).item())
            left = int(torch.randint(0, rw - self.image_size + 1, ()).item())
            flip = self.hflip and bool(torch.rand(()) < 0.5)
        else:
            top, left, flip = (rh - self.image_size) // 2, (rw - self.image_size) // 2, False
        return CropParams((rh, rw), top, left, self.image_size, flip)

    @staticmethod
    def image(x: torch.Tensor, p: CropParams) -> torch.Tensor:
        """(C, H, W) float -> (C, size, size)."""
        if tuple(x.shape[-2:]) != p.resized:
            x = F.interpolate(x[None], size=p.resized, mode="bilinear", align_corners=False, antialias=True)[0]
            x = x.clamp_(0.0, 1.0)  # the antialiasing filter can overshoot by rounding
        x = x[:, p.top : p.top + p.size, p.left : p.left + p.size]
        if p.flip:
            x = x.flip(-1)
        return x.contiguous()

    @staticmethod
    def mask(m: torch.Tensor, p: CropParams) -> torch.Tensor:
        """(H, W) integer labels -> (size, size), nearest neighbour (pixel-centre sampling)."""
        h, w = m.shape[-2:]
        rh, rw = p.resized
        if (h, w) != (rh, rw):
            rows = ((torch.arange(rh, dtype=torch.float64) + 0.5) * (h / rh)).long().clamp_(max=h - 1)
            cols = ((torch.arange(rw, dtype=torch.float64) + 0.5) * (w / rw)).long().clamp_(max=w - 1)
            rows = rows[p.top : p.top + p.size]
            cols = cols[p.left : p.left + p.size]
            m = m.index_select(0, rows).index_select(1, cols)
        else:
            m = m[p.top : p.top + p.size, p.left : p.left + p.size]
        if p.flip:
            m = m.flip(-1)
        return m.contiguous()


class ColourJitter:
    """The photometric jitter of the module docstring: (3, H, W) float in [0, 1] -> same shape.

    Draws from torch's global generator, as the crops do."""

    def __init__(self, strength: float = 0.4, hue: float = 0.05, blur_p: float = 0.3):
        self.transform = v2.Compose([
            v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength, hue=hue),
            v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=blur_p),
        ])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"ColourJitter takes a (3, H, W) colour image, got {tuple(x.shape)}")
        return self.transform(x).clamp_(0.0, 1.0).contiguous()


def to_chw(arr: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC numpy -> float32 (C, H, W) tensor (values unchanged)."""
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def rgb_to_unit(arr: np.ndarray) -> torch.Tensor:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return to_chw(arr[..., :3]) / 255.0


def depth_to_unit(raw: np.ndarray, depth_max: float = 10.0, depth_scale: float | None = None) -> torch.Tensor:
    """Stored depth -> (1, H, W) in [0, 1].

    16-bit (or any non-uint8) depth: metres = raw * depth_scale (default 1e-3: millimetres, as NYU
    and SUN RGB-D store it), then divided by ``depth_max`` and clipped to [0, 1].
    8-bit depth with ``depth_scale=None`` is taken as already normalised: raw / 255.
    """
    if raw.ndim == 3:
        raw = raw[..., 0]
    if raw.dtype == np.uint8 and depth_scale is None:
        return to_chw(raw) / 255.0
    scale = 1e-3 if depth_scale is None else float(depth_scale)
    return (to_chw(raw) * (scale / float(depth_max))).clamp_(0.0, 1.0)


def taskonomy_depth_metres(unit: np.ndarray | float) -> np.ndarray:
    """Taskonomy log depth in [0, 1] (``log(1 + raw) / 11.1``, raw in 1/512 m) back to metres."""
    return np.expm1(np.asarray(unit, dtype=np.float64) * TASKONOMY_DEPTH_LOG_MAX) / 512.0


def fill_depth_holes(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """An (H, W) depth map with its zeros (no measurement) given the value of the nearest non-zero
    pixel, and how many were filled. A map with nothing but zeros has nothing to fill from: it comes
    back as it is, with 0 filled (callers warn about it as a constant map)."""
    holes = raw == 0
    count = int(holes.sum())
    if count == 0 or count == holes.size:
        return raw, 0
    nearest = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return raw[tuple(nearest)], count


def decode_domain(domain: str, raw: np.ndarray, path: object = "") -> torch.Tensor:
    """A Taskonomy domain's stored array -> the float tensor of the peer protocol (module docstring).

    ``segment_semantic`` returns int64 (H, W); every other domain float32 (C, H, W).
    """
    if domain == "rgb":
        if raw.dtype != np.uint8:
            raise DataError(f"rgb must be 8-bit, got {raw.dtype}: {path}")
        return rgb_to_unit(raw)
    if domain.startswith("depth"):
        if raw.ndim == 3:
            raw = raw[..., 0]
        if raw.dtype != np.uint16:
            raise DataError(f"{domain} must be 16-bit (1/512 m), got {raw.dtype}: {path}")
        return (torch.log1p(to_chw(raw)) / TASKONOMY_DEPTH_LOG_MAX).clamp_(0.0, 1.0)
    if domain in ("normal", "principal_curvature"):
        if raw.dtype != np.uint8:
            raise DataError(f"{domain} must be 8-bit RGB, got {raw.dtype}: {path}")
        return rgb_to_unit(raw)
    if domain == "reshading":
        if raw.ndim == 3:
            raw = raw[..., 0]
        if raw.dtype != np.uint8:
            raise DataError(f"reshading must be 8-bit grey, got {raw.dtype}: {path}")
        return to_chw(raw) / 255.0
    if domain in TASKONOMY_EDGE_MAX:
        if raw.ndim == 3:
            raw = raw[..., 0]
        if raw.dtype != np.uint16:  # an 8-bit file divided by the 16-bit scale would read as ~0
            raise DataError(f"{domain} must be 16-bit, got {raw.dtype}: {path}")
        return (to_chw(raw) / TASKONOMY_EDGE_MAX[domain]).clamp_(0.0, 1.0)
    if domain == "segment_semantic":
        if raw.ndim == 3:
            raw = raw[..., 0]
        return torch.from_numpy(raw.astype(np.int64))
    # unknown domain: generic full-range scaling
    full = 65535.0 if raw.dtype == np.uint16 else 255.0
    return to_chw(raw) / full


def flip_normal_x(x: torch.Tensor) -> torch.Tensor:
    """Mirror the x channel of a [0, 1] normal image (stored as 127 + 128 n) after a left-right flip."""
    x = x.clone()
    x[0] = (254.0 / 255.0 - x[0]).clamp_(0.0, 1.0)
    return x

