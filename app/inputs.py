"""Reading and checking what users upload: images per modality, and plot text.

Every problem becomes an `InputError` whose message tells the user what to do; anything that can
be fixed (a size mismatch, an 8-bit depth map) is fixed and reported as a notice instead.
Nothing here imports gradio, and nothing is written anywhere: files are only read.

Value conventions follow `mango.data.transforms` (the loaders the checkpoints were trained with):
rgb / normal / reshading 8-bit / 255; NYU-style depth 16-bit millimetres / depth_max; Taskonomy
depth_zbuffer 16-bit 1/512 m through log(1 + raw) / 11.1; edge_texture 16-bit / 11355. An 8-bit
file of a 16-bit modality is read as already scaled to its range (value / 255), with a notice.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

MAX_SIDE = 4096  # pixels per side
MAX_PIXELS = 16_000_000  # 16 megapixels
MAX_FILE_BYTES = 20 * 1024 * 1024  # also enforced by the server (launch(max_file_size=...))
MAX_PLOT_CHARS = 3000
MIN_PLOT_WORDS = 3

TASKONOMY_DEPTH_LOG_MAX = 11.1  # as mango.data.transforms
EDGE_TEXTURE_MAX = 11355.0


class InputError(ValueError):
    """Input the app cannot use; the message is shown to the user as it is."""


@dataclass
class LoadedImage:
    """One modality, ready for the model: ``tensor`` (C, S, S) float in [0, 1] at the model's size,
    ``display`` (H, W, 3) uint8 for drawing (at most ``display_size`` on the long side),
    ``original_size`` (width, height) as uploaded, and any notices about what was changed."""

    name: str
    tensor: torch.Tensor
    display: np.ndarray
    original_size: tuple[int, int]
    bit_depth: int
    notices: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- reading files
def _open(path: str | os.PathLike[str] | None, label: str) -> Image.Image:
    if path is None or (isinstance(path, str) and not path.strip()):
        raise InputError(f"The {label} is missing: upload one (or click an example). MANGO fuses two modalities and needs both.")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The {label} file could not be read (it is no longer on the server): upload it again.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"The {label} file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        if isinstance(err, UnidentifiedImageError):
            raise InputError(f"The {label} is not an image file PIL can read ({path.suffix or 'no extension'}). Upload a PNG or JPEG.") from err
        raise InputError(f"The {label} is far too large to open safely; the limit is {MAX_PIXELS / 1e6:.0f} megapixels.") from err
    except OSError as err:
        raise InputError(f"The {label} file is damaged or not an image ({err}).") from err
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(
            f"The {label} is {width}×{height} pixels; the limit is {MAX_SIDE} pixels per side and "
            f"{MAX_PIXELS / 1e6:.0f} megapixels. The model works at 128×128 anyway: downscale it first."
        )
    if width < 8 or height < 8:
        raise InputError(f"The {label} is only {width}×{height} pixels; it needs at least 8×8.")
    return image


def _array(image: Image.Image, label: str) -> tuple[np.ndarray, int]:
    """Pixels as (H, W) or (H, W, C) and the bit depth (8 or 16) of the stored values."""
    try:
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = np.asarray(image).astype(np.uint16)
            return arr, 16
        if image.mode == "I":
            arr = np.asarray(image)
            if arr.min() < 0 or arr.max() > 65535:
                raise InputError(f"The {label} has 32-bit values outside 0..65535; save it as an 8- or 16-bit PNG.")
            return arr.astype(np.uint16), 16
        if image.mode == "F":
            raise InputError(f"The {label} is a floating-point image; save it as an 8- or 16-bit PNG.")
        if image.mode in ("1", "L", "P", "LA", "PA"):
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            elif image.mode == "1":
                image = image.convert("L")
        if image.mode in ("RGBA", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB" if image.mode not in ("LA",) else "L")
        arr = np.asarray(image)
    except InputError:
        raise
    except (OSError, ValueError) as err:
        raise InputError(f"The {label} could not be decoded ({err}). Upload a PNG or JPEG.") from err
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    return arr, 8


def _channels(arr: np.ndarray) -> int:
    return 1 if arr.ndim == 2 else arr.shape[2]


def _grey_from(arr: np.ndarray, label: str, notices: list[str]) -> np.ndarray:
    """A single-channel map: (H, W) passes; three equal channels are accepted with a notice."""
    if arr.ndim == 2:
        return arr
    first = arr[..., 0]
    if all(np.array_equal(first, arr[..., c]) for c in range(1, arr.shape[2])):
        notices.append(f"The {label} was stored with {arr.shape[2]} identical channels; read as one channel.")
        return first
    raise InputError(
        f"The {label} has {arr.shape[2]} different colour channels, but it must be a single-channel "
        f"(greyscale) map. A colourised visualisation cannot be turned back into values: upload the raw "
        f"8- or 16-bit greyscale PNG."
    )


def _resize(t: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size), bilinear with antialiasing (aspect ratio not kept)."""
    if tuple(t.shape[-2:]) == (size, size):
        return t
    return F.interpolate(t[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def _display(arr: np.ndarray, display_size: int) -> np.ndarray:
    """uint8 (H, W, 3) preview, long side at most display_size (values as stored, 16-bit scaled)."""
    if arr.dtype == np.uint16:
        hi = float(np.percentile(arr, 99.5)) or 1.0
        arr = np.clip(arr.astype(np.float32) / hi * 255.0, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    image = Image.fromarray(arr[..., :3])
    image.thumbnail((display_size, display_size), Image.Resampling.LANCZOS)
    return np.asarray(image.convert("RGB"))


# ------------------------------------------------------------------------- per-modality decoding
def _to_unit(arr: np.ndarray, bits: int, modality: str, label: str, notices: list[str], depth_max: float) -> torch.Tensor:
    """Stored values -> float (C, H, W) in [0, 1], per the training conventions of `modality`."""
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
    if modality == "depth":  # NYU / SUN / SynthRooms-nyudv2 style: millimetres / depth_max
        if bits == 16:
            return (x * (1e-3 / depth_max)).clamp(0, 1)
        notices.append(f"The {label} is 8-bit: read as depth already scaled to 0–255 (near to far), not in millimetres.")
        return x / 255.0
    if modality in ("depth_zbuffer", "depth_euclidean"):  # Taskonomy: 1/512 m, log(1 + raw) / 11.1
        if bits == 16:
            return (torch.log1p(x) / TASKONOMY_DEPTH_LOG_MAX).clamp(0, 1)
        notices.append(f"The {label} is 8-bit: read as depth already scaled to 0–255, not in 1/512 m units.")
        return x / 255.0
    if modality == "edge_texture":
        if bits == 16:
            return (x / EDGE_TEXTURE_MAX).clamp(0, 1)
        notices.append(f"The {label} is 8-bit: read as edge strength scaled to 0–255.")
        return x / 255.0
    return x / (65535.0 if bits == 16 else 255.0)


def load_image(
    path: str | os.PathLike[str] | None,
    modality: str,
    channels: int,
    image_size: int,
    label: str | None = None,
    depth_max: float = 10.0,
    display_size: int = 256,
) -> LoadedImage:
    """Read one uploaded image as the model's ``modality`` (its name in the config), checked.

    RGB-like modalities (3 channels) accept greyscale (repeated) and drop alpha; single-channel
    modalities refuse colour images whose channels differ. Raises InputError with a readable message.
    """
    label = label or modality.replace("_", " ")
    image = _open(path, label)
    arr, bits = _array(image, label)
    notices: list[str] = []
    if channels == 1:
        arr = _grey_from(arr, label, notices)
    elif channels == 3:
        if arr.ndim == 2:
            if bits == 16:
                arr = (arr // 257).astype(np.uint8)
                bits = 8
            arr = np.repeat(arr[:, :, None], 3, axis=2)
            notices.append(f"The {label} is greyscale; its single channel was repeated to make three.")
        arr = arr[..., :3]
    else:  # pragma: no cover - no such modality today
        raise InputError(f"modality {modality!r} with {channels} channels is not supported by the app")
    height, width = arr.shape[:2]
    unit = _to_unit(arr, bits, modality, label, notices, depth_max)
    tensor = _resize(unit, image_size).clamp(0, 1)
    return LoadedImage(modality, tensor, _display(arr, display_size), (width, height), bits, notices)


def check_pair_sizes(first: LoadedImage, second: LoadedImage, first_label: str, second_label: str) -> list[str]:
    """A notice when two images of one example differ in size (both are resized to the model's size)."""
    if first.original_size == second.original_size:
        return []
    (w1, h1), (w2, h2) = first.original_size, second.original_size
    return [
        f"The {first_label} is {w1}×{h1} but the {second_label} is {w2}×{h2}: both were resized to the model's "
        f"input size, so check that they show the same view."
    ]


def check_plot(text: str | None, max_chars: int = MAX_PLOT_CHARS) -> tuple[str, list[str]]:
    """A plot summary, cleaned: whitespace collapsed; empty, too short or too long is an InputError."""
    if text is None or not str(text).strip():
        raise InputError("The plot is empty: write a few sentences about the film (or click an example).")
    cleaned = " ".join(str(text).split())
    if len(cleaned) > max_chars:
        raise InputError(
            f"The plot is {len(cleaned):,} characters long; the limit is {max_chars:,}. Shorten it to a "
            f"summary of a paragraph or two (the model reads only the first 60 or so word pieces anyway)."
        )
    if len(cleaned.split()) < MIN_PLOT_WORDS:
        raise InputError(f"The plot has fewer than {MIN_PLOT_WORDS} words: write at least a sentence.")
    return cleaned, []
