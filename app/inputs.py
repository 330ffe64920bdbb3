"""Reading and checking what users upload: images per modality, and plot text.

Every problem becomes an `InputError` whose message tells the user what to do; anything that can
be fixed (a size mismatch, an 8-bit depth map) is fixed and reported as a notice instead.
Nothing here imports gradio, and nothing is written anywhere: files are only read.

Value conventions follow `mango.data.transforms` (the loaders the checkpoints were trained with):
rgb / normal / reshading 8-bit / 255; NYU-style depth 16-bit millimetres / depth_max, its 0 (a depth
camera's "no measurement") filled from the nearest measured pixel as the loaders do; Taskonomy
depth_zbuffer 16-bit 1/512 m through log(1 + raw) / 11.1; edge_texture 16-bit / 11355. An 8-bit
file of a 16-bit modality is read as already scaled to its range (value / 255), with a notice that says
what that range is. Geometry follows the loaders too (`PairedTransform`, eval): the shorter side is
resized to the model's size, then the centre square is kept; the notice says how much was cropped.
EXIF orientation is applied as browsers do; dropped transparency (an alpha channel, a palette's or a
colour key's), a constant single-channel map and a depth map in the wrong units are reported. A 16-bit
colour PNG of a single-channel modality is read at its full depth (PIL would keep 8 bits of it).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from pi_heif import register_heif_opener

from mango.data import fill_depth_holes
from mango.data.transforms import TASKONOMY_DEPTH_LOG_MAX, TASKONOMY_EDGE_MAX, PairedTransform, taskonomy_depth_metres
from mango.text_coverage import strip_control, word_count

MAX_SIDE = 4096  # pixels per side
MAX_PIXELS = 16_000_000  # 16 megapixels
MAX_FILE_BYTES = 20 * 1024 * 1024  # also enforced by the server (launch(max_file_size=...))
MAX_PLOT_CHARS = 3000
MIN_PLOT_WORDS = 3
NEAREST_ROOM_MM = 500  # a 16-bit depth map whose farthest point is nearer is not in millimetres

EDGE_TEXTURE_MAX = TASKONOMY_EDGE_MAX["edge_texture"]
# A HEIC photo (what phones save) cannot be decoded at a fraction of its size as a JPEG can: one up to
# this many pixels (a 48-megapixel phone photo) is decoded in full, then halved until it fits.
HEIF_DECODE_PIXELS = 50_000_000

register_heif_opener()  # PIL reads HEIC/HEIF (phone photos) from here on; decoding only


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
def is_missing(value: Any) -> bool:
    """An input slot with nothing in it: no file, or a blank plot."""
    return value is None or (isinstance(value, str) and not value.strip())


def missing_message(label: str, is_text: bool = False) -> str:
    """What an empty slot is told: by a prediction button's check, beside the slot
    (`app.events.MangoApp.check_inputs`), and by the reading that finds it empty."""
    if is_text:
        return f"The {label} is empty: write a few sentences about the film, or click an example."
    return f"The {label} is missing: upload one, or click an example."


def _open(path: str | os.PathLike[str] | None, label: str, image_size: int,
          notices: list[str]) -> tuple[Image.Image, tuple[int, int]]:
    """The image at ``path``, checked for size (a large JPEG or HEIC reduced), and its size in the file;
    EXIF orientation is applied later by `_oriented`."""
    if is_missing(path):
        raise InputError(missing_message(label))
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The {label} file could not be read (it is no longer on the server): upload it again.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"The {label} file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            # nothing over the app's own limits is decoded (a JPEG or HEIC only reduced): PIL's warning from
            # 89 megapixels refused a 108-megapixel phone JPEG that an eighth of fits; its error stays
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = width_in_file, height_in_file = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        if isinstance(err, UnidentifiedImageError):
            raise InputError(f"The {label} is not an image file the app can read ({path.suffix or 'no extension'}). "
                             "Upload a PNG, JPEG, WebP or HEIC.") from err
        raise InputError(f"The {label} is far too large to open safely (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                         f"megapixels); the limit is {MAX_PIXELS / 1e6:.0f} megapixels, or a JPEG an eighth of which "
                         "fits.") from err
    except OSError as err:
        raise InputError(f"The {label} file is damaged or not an image ({err}).") from err
    heif = image.format == "HEIF"
    if _too_large(width, height) and image.format in ("JPEG", "HEIF"):
        image = _reduced_photo(image, label, image_size, notices)
        width, height = image.size
    if _too_large(width, height):
        raise InputError(
            f"The {label} is {width}×{height} pixels; the limit is {MAX_SIDE} pixels per side and "
            f"{MAX_PIXELS / 1e6:.0f} megapixels. The model works at {image_size}×{image_size} anyway: downscale it first."
        )
    if width < 8 or height < 8:
        raise InputError(f"The {label} is only {width}×{height} pixels; it needs at least 8×8.")
    if getattr(image, "is_animated", False):  # a GIF, APNG or WebP animation, a camera's MPO, a multi-page TIFF
        notices.append(f"The {label} file holds {image.n_frames} images (an animation or a multi-picture file); "
                       "the model reads only the first.")
    if heif:
        notices.append(f"The {label} is a HEIC photo. Browsers other than Safari cannot show HEIC, so its upload box "
                       "may show a broken image; the app has read it all the same.")
    return image, (width_in_file, height_in_file)


def _too_large(width: int, height: int) -> bool:
    return max(width, height) > MAX_SIDE or width * height > MAX_PIXELS


def _reduced_photo(image: Image.Image, label: str, image_size: int, notices: list[str]) -> Image.Image:
    """A phone photo over the limits (24 or 48 megapixels) read at 1/2, 1/4 or 1/8 of its size, the first
    that fits. A JPEG decoder scales while decoding, so the full JPEG is never in memory; a HEIC is
    decoded in full (up to `HEIF_DECODE_PIXELS`), then reduced."""
    width, height = image.size
    scale = next((s for s in (2, 4, 8) if not _too_large(math.ceil(width / s), math.ceil(height / s))), None)
    if scale is None or (image.format == "HEIF" and width * height > HEIF_DECODE_PIXELS):
        return image  # too large even at 1/8, or to decode: refused by the caller
    if image.format == "JPEG":
        image.draft(image.mode, (math.ceil(width / scale), math.ceil(height / scale)))
    else:
        try:
            image = image.reduce(scale)
        except (OSError, ValueError) as err:
            raise InputError(f"The {label} could not be decoded ({err}). Upload a PNG or JPEG.") from err
    if not _too_large(*image.size):
        notices.append(f"The {label} is {width}×{height} pixels, more than the app reads in full ({MAX_SIDE} px per "
                       f"side, {MAX_PIXELS / 1e6:.0f} megapixels): it was decoded at {image.size[0]}×{image.size[1]} "
                       f"(1/{scale} of its size); the model works at {image_size}×{image_size}.")
    return image


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1: upright, also when the EXIF cannot be read)."""
    try:
        return image.getexif().get(0x0112, 1) or 1
    except Exception:  # unreadable EXIF: leave the image as stored
        return 1


def _oriented(image: Image.Image, label: str, notices: list[str]) -> Image.Image:
    """The image turned upright by its EXIF orientation tag (phone photos), as browsers show it."""
    orientation = _orientation(image)
    if orientation == 1:
        return image
    try:
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError) as err:
        raise InputError(f"The {label} could not be decoded ({err}). Upload a PNG or JPEG.") from err
    turn = {3: "turned 180°", 6: "turned 90° clockwise", 8: "turned 90° anticlockwise"}.get(orientation, "mirrored/turned")
    notices.append(f"The {label} was {turn}, as its EXIF orientation tag asks (the way browsers and phones show it).")
    return upright


# what ImageOps.exif_transpose does for each orientation tag, for arrays PIL cannot hold (16-bit colour)
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                   5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                   8: Image.Transpose.ROTATE_90}


def _png_header(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk; None for any other file."""
    with open(path, "rb") as file:
        head = file.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _wide_colour_png(path: str | os.PathLike[str], orientation: int, label: str, notices: list[str]) -> np.ndarray | None:
    """A 16-bit colour PNG (RGB, RGBA, grey + alpha) at its full depth, upright, alpha dropped: (H, W) or
    (H, W, 3) uint16; None for any other file. PIL reads such a file as 8-bit (it keeps the high byte), which
    would turn a depth map in millimetres into an 8-bit map of its high byte, read as another scene."""
    header = _png_header(path)
    if header is None or header[0] != 16 or header[1] not in (2, 4, 6):  # 2: RGB, 4: grey + alpha, 6: RGBA
        return None
    from torchvision.io import ImageReadMode, decode_png, read_file

    try:
        pixels = decode_png(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as err:
        raise InputError(f"The {label} could not be decoded ({err}). Upload a single-channel 16-bit PNG.") from err
    arr = np.ascontiguousarray(pixels.permute(1, 2, 0).numpy()).astype(np.uint16)
    method = _EXIF_TRANSPOSE.get(orientation)
    if method is not None:
        arr = np.stack([np.asarray(Image.fromarray(arr[..., c]).transpose(method)) for c in range(arr.shape[2])], axis=-1)
    if header[1] in (4, 6):
        notices.append(_alpha_notice(label, float((arr[..., -1] < 65535).mean())))
        arr = arr[..., :-1]
    return arr[..., 0] if arr.shape[2] == 1 else arr


def _alpha_notice(label: str, see_through: float, kind: str = "an alpha (transparency) channel") -> str:
    return (f"The {label} has {kind}; it was dropped: the model reads only the stored "
            + (f"values, including under the {see_through:.0%} of pixels that are (partly) transparent."
               if see_through > 0 else "values (every pixel was opaque, so nothing changes)."))


def _array(image: Image.Image, label: str, notices: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Pixels as (H, W) or (H, W, C) and the bit depth (8 or 16) of the stored values. A dropped
    alpha channel is reported in ``notices``."""
    notices = notices if notices is not None else []
    try:
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = np.asarray(image).astype(np.uint16)
            if isinstance(image.info.get("transparency"), int):  # a 16-bit grey PNG's colour key
                notices.append(_alpha_notice(label, float((arr == image.info["transparency"]).mean()),
                                             "a transparent colour key"))
            return arr, 16
        if image.mode == "I":
            arr = np.asarray(image)
            if arr.min() < 0 or arr.max() > 65535:
                raise InputError(f"The {label} has 32-bit values outside 0..65535; save it as an 8- or 16-bit PNG.")
            return arr.astype(np.uint16), 16
        if image.mode == "F":
            raise InputError(f"The {label} is a floating-point image; save it as an 8- or 16-bit PNG.")
        if "transparency" in image.info and image.mode in ("1", "L", "P", "RGB"):  # a palette's or a colour key's
            kind = "a transparent palette colour" if image.mode == "P" else "a transparent colour key"
            image = image.convert("LA" if image.mode in ("1", "L") else "RGBA")
            alpha = np.asarray(image.getchannel("A"))
            notices.append(_alpha_notice(label, float((alpha < 255).mean()), kind))
            image = image.convert("L" if image.mode == "LA" else "RGB")
        if image.mode in ("1", "L", "P", "LA", "PA"):
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            elif image.mode == "1":
                image = image.convert("L")
        if image.mode in ("RGBA", "LA", "RGBa", "La"):
            alpha = np.asarray(image.getchannel("A"))
            notices.append(_alpha_notice(label, float((alpha < 255).mean())))
        if image.mode in ("RGBA", "LA", "RGBa", "La", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("L" if image.mode in ("LA", "La") else "RGB")
        arr = np.asarray(image)
    except InputError:
        raise
    except (OSError, ValueError) as err:
        raise InputError(f"The {label} could not be decoded ({err}). Upload a PNG or JPEG.") from err
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    return arr, 8


def _grey_from(arr: np.ndarray, bits: int, label: str, notices: list[str]) -> np.ndarray:
    """A single-channel map: (H, W) passes; three equal channels are accepted with a notice."""
    if arr.ndim == 2:
        return arr
    first = arr[..., 0]
    if all(np.array_equal(first, arr[..., c]) for c in range(1, arr.shape[2])):
        notices.append(f"The {label} was stored with {arr.shape[2]} identical channels; read as one channel"
                       + (", at its full 16 bits." if bits == 16 else "."))
        return first
    raise InputError(
        f"The {label} has {arr.shape[2]} different colour channels, but it must be a single-channel "
        f"(greyscale) map. A colourised visualisation cannot be turned back into values: upload the raw "
        f"8- or 16-bit greyscale PNG."
    )


def _centre_square(arr: Any) -> Any:
    """The centre square of an (H, W, ...) array or tensor: what the model reads of an image, for drawing
    (within a pixel of the loaders' crop, which is taken after resizing)."""
    height, width = arr.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return arr[top : top + side, left : left + side]


def _where_read(arr: np.ndarray) -> str:
    """Where a share was counted: the whole image, or (said) the centre square of a non-square one."""
    return "" if arr.shape[0] == arr.shape[1] else " (in the centre square the model reads)"


def _crop_notice(label: str, size: tuple[int, int], image_size: int) -> list[str]:
    """How much of a non-square upload (``size`` as uploaded and turned upright) the model reads."""
    width, height = size
    if width == height:
        return []
    where = "left and right" if width > height else "top and bottom"
    return [f"The {label} is {width}×{height} ({_aspect(width, height)}). Like the training data, its centre square "
            f"was kept ({min(width, height) / max(width, height):.1%} of it; the {where} were cropped) at the model's "
            f"{image_size}×{image_size} px, so nothing is stretched."]


def _aspect(width: int, height: int) -> str:
    """"aspect ratio 1.33:1, landscape" or "aspect ratio 1:1.33, portrait": the orientation kept."""
    if width > height:
        return f"aspect ratio {width / height:.3g}:1, landscape"
    return f"aspect ratio 1:{height / width:.3g}, portrait"


STRIP_ASPECT = 4  # beyond this aspect ratio, the centre square is cut out first (see `_model_square`)


def _model_square(t: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size) as the loaders make it: the shorter side resized, the centre kept
    (cropping first and resizing after changed 7 % of a segmentation of a real 640×480 photo). A strip
    beyond STRIP_ASPECT:1 is cropped first: resized whole, a 4096×8 upload became a 400 MB tensor at 256 px."""
    transform = PairedTransform(size, train=False)
    params = transform.params(*t.shape[-2:])
    if max(params.resized) <= STRIP_ASPECT * size:
        return transform.image(t, params)
    square = _centre_square(t.permute(1, 2, 0)).permute(2, 0, 1)
    return transform.image(square, transform.params(*square.shape[-2:]))


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
    read, where = _centre_square(arr), _where_read(arr)  # shares count what the model reads, not the cut sides
    if modality == "depth":  # NYU / SUN / SynthRooms-nyudv2 style: millimetres / depth_max
        if bits == 16:
            far = float((read > 1000.0 * depth_max).mean())
            if far > 0:
                notices.append(f"{_percent(far)} of the {label}{where} lies beyond {depth_max:g} m, the farthest the "
                               f"model reads: those pixels are read as {depth_max:g} m.")
            return (x * (1e-3 / depth_max)).clamp(0, 1)
        notices.append(f"The {label} is 8-bit: each value is read as value / 255 × {depth_max:g} m (0 at the lens, 255 at "
                       f"{depth_max:g} m, steps of {100 * depth_max / 255:.1f} cm), not stretched to your scene: a map "
                       "scaled to 0–255 per image reads as another scene, and one where near is bright (a disparity map, or "
                       "a monocular estimate such as Depth Anything or MiDaS) reads back to front. Upload the 16-bit "
                       "map in millimetres.")
        zeros = float((read == 0).mean())
        if 0 < zeros and not (arr == 0).all():  # all zeros: the constant map's warning says it
            notices.append(f"⚠️ {_percent(zeros)} of the {label}{where} is 0: in an 8-bit map that is read as 0 m, a surface "
                           "at the lens. If these are a depth camera's holes, upload the 16-bit map, where they are "
                           "filled from the nearest measured pixel.")
        return x / 255.0
    if modality in ("depth_zbuffer", "depth_euclidean"):  # Taskonomy: 1/512 m, log(1 + raw) / 11.1
        if bits == 16:
            return (torch.log1p(x) / TASKONOMY_DEPTH_LOG_MAX).clamp(0, 1)
        scale = ", ".join(f"{v} ≈ {_metres(float(taskonomy_depth_metres(v / 255.0)))}" for v in (64, 128, 192, 255))
        notices.append(f"The {label} is 8-bit: each value is read on the model's logarithmic depth scale ({scale}), so "
                       "an ordinary 0–255 depth image reads as a very different scene (and one where near is bright, such "
                       "as a disparity map, reads back to front). Upload the 16-bit z-buffer (1/512 m).")
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
    notices: list[str] = []
    opened, uploaded = _open(path, label, image_size, notices)
    image = _oriented(opened, label, notices)
    if _orientation(opened) in (5, 6, 7, 8):  # turned a quarter: width and height swap
        uploaded = uploaded[::-1]
    wide = _wide_colour_png(path, _orientation(opened), label, notices) if channels == 1 else None
    arr, bits = (wide, 16) if wide is not None else _array(image, label, notices)
    if channels == 1:
        arr = _grey_from(arr, bits, label, notices)
        filled = 0
        # a 16-bit depth in millimetres stores 0 where the camera measured nothing; an 8-bit one has no such
        # code, so its zeros are read as 0 m (and warned of in `_to_unit`)
        if modality == "depth" and bits == 16:
            arr, filled = _filled_holes(arr, label, notices)
        if not _check_constant(arr, modality, bits, label, notices, holes_filled=filled > 0):
            _check_millimetres(arr, modality, bits, label, notices)
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
    notices += _crop_notice(label, uploaded, image_size)
    unit = _to_unit(arr, bits, modality, label, notices, depth_max)
    tensor = _model_square(unit, image_size).clamp(0, 1)
    return LoadedImage(modality, tensor, _display(_centre_square(arr), display_size), uploaded, bits, notices)


def _metres(value: float) -> str:
    return f"{value:.1f} m" if value >= 0.095 else f"{100 * value:.0f} cm"


def _percent(share: float) -> str:
    """A share as a percentage that never reads 0 % or 100 % when it is not."""
    if 0 < share < 0.001:
        return "under 0.1%"
    if 0.999 < share < 1:
        return "over 99.9%"
    return f"{share:.1%}"


def _check_constant(arr: np.ndarray, modality: str, bits: int, label: str, notices: list[str],
                    holes_filled: bool = False) -> bool:
    """A single-channel map with one value everywhere carries no information: say what follows, and
    return True. ``holes_filled``: the map is constant only once its holes were filled (one depth was
    measured)."""
    low, high = int(arr.min()), int(arr.max())
    if low != high:
        return False
    if "depth" in modality:
        if low == 0:
            unmeasured = ("0 means 'no measurement' to a depth camera, and nothing was measured here, so nothing "
                          "could be filled: " if modality == "depth" and bits == 16 else "")
            meaning = f"{unmeasured}the model reads a flat surface at 0 m, touching the lens, everywhere"
        else:
            meaning = "a flat wall facing the camera at one distance, which no real scene is"
        which = (f"With its holes filled, the {label} has the same value ({low}) at every pixel (only that depth was "
                 "measured)" if holes_filled else f"The {label} has the same value ({low}) at every pixel")
        notices.append(
            f"⚠️ {which}: {meaning}. The prediction rests on the other input and on this made-up depth (another "
            "constant gives another prediction), so it is unreliable. Upload the real depth map for a meaningful result."
        )
    else:
        notices.append(f"⚠️ The {label} has the same value ({low}) at every pixel: it carries no information, so the "
                       "prediction rests on the other input alone.")
    return True


def _check_millimetres(arr: np.ndarray, modality: str, bits: int, label: str, notices: list[str]) -> None:
    """A 16-bit NYU-style depth map whose farthest point is nearer than NEAREST_ROOM_MM is not in millimetres
    (centimetres, metres): the model would read a scene a few centimetres deep, and nothing else says so."""
    if modality != "depth" or bits != 16 or int(arr.max()) >= NEAREST_ROOM_MM:
        return
    notices.append(f"⚠️ The farthest point of the {label} is {int(arr.max())} mm away, read as {int(arr.max()) / 1000:.3g} m: "
                   "is it in millimetres (1000 = 1 m)? A map in centimetres or metres reads as a scene a few "
                   "centimetres deep. Save the depth in millimetres, as a 16-bit PNG.")


def _filled_holes(arr: np.ndarray, label: str, notices: list[str]) -> tuple[np.ndarray, int]:
    """Depth cameras write 0 where they measured nothing; the model was trained on complete depth,
    where 0 would read as a surface touching the lens, so each hole takes its nearest measured depth.
    Returns the map and how many pixels were filled."""
    filled, count = fill_depth_holes(arr)
    read = float((_centre_square(arr) == 0).mean())  # holes in the cut sides change nothing the model reads
    if read:
        notices.append(f"{_percent(read)} of the {label}{_where_read(arr)} is 0, which depth cameras write where they "
                       "measured nothing: those pixels were given the depth of the nearest measured pixel (the model "
                       "was trained on complete depth maps, and would read 0 as a surface touching the lens).")
    return filled, count


def check_pair_sizes(first: LoadedImage, second: LoadedImage, first_label: str, second_label: str) -> list[str]:
    """A notice when two images of one example differ in size (both are resized to the model's size)."""
    if first.original_size == second.original_size:
        return []
    (w1, h1), (w2, h2) = first.original_size, second.original_size
    return [
        f"The {first_label} is {w1}×{h1} but the {second_label} is {w2}×{h2}: each was cropped and resized to the "
        f"model's input size on its own, so check that they show the same view."
    ]


def check_plot(text: str | None, max_chars: int = MAX_PLOT_CHARS) -> tuple[str, list[str]]:
    """A plot summary, cleaned: control characters removed, whitespace collapsed; empty, too short
    or too long is an InputError. Words are counted in any script (`mango.text_coverage`)."""
    if text is None or not str(text).strip():
        raise InputError(missing_message("plot", is_text=True))
    notices: list[str] = []
    text, removed = strip_control(str(text))
    if removed:
        notices.append(f"{removed} control or invisible character{'s were' if removed > 1 else ' was'} removed from the plot.")
    cleaned = " ".join(text.split())
    if len(cleaned) > max_chars:
        raise InputError(
            f"The plot is {len(cleaned):,} characters long; the limit is {max_chars:,}. Shorten it to a "
            f"summary of a paragraph or two (the model reads only the first 60 or so word pieces anyway)."
        )
    count = word_count(cleaned)
    if count < MIN_PLOT_WORDS:
        raise InputError(
            f"The plot has {count} word{'' if count == 1 else 's'}; it needs at least {MIN_PLOT_WORDS}: write at least a "
            "sentence. (Words are runs of letters or digits, or single characters in scripts written without spaces; "
            "emoji, symbols and control characters do not count.)"
        )
    return cleaned, notices
