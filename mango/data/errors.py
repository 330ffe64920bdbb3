"""Clear errors for bad data, each naming the file at fault, and the small readers that raise them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError


class DataError(ValueError):
    """A data set file is missing, unreadable or inconsistent. The message names the file."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A file a data set lists is not there."""


def require_files(paths: Iterable[Path], what: str = "file") -> None:
    """Raise DataFileNotFoundError naming the first path that does not exist."""
    for p in paths:
        if not os.path.isfile(p):
            raise DataFileNotFoundError(f"missing {what}: {p}")


def read_image(path: Path, colour: bool = False) -> np.ndarray:
    """Read an image file as a numpy array in its stored bit depth (uint8 or uint16, 2-D or HxWxC).

    ``colour``: the file holds a picture, not labels: palette and 1-bit images give their colours
    (RGB, 0..255), not their palette indices or 0/1.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"missing image file: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if colour and im.mode in ("P", "PA", "1"):
                arr = np.asarray(im.convert("RGB"))
            elif im.mode == "P":
                # palette images (common for label masks): the indices are the labels
                arr = np.asarray(im)
            elif im.mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im).astype(np.uint16)
            elif im.mode == "I":
                arr = np.asarray(im)
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise DataError(f"32-bit image with values outside uint16: {path}")
                arr = arr.astype(np.uint16)
            elif im.mode in ("L", "RGB"):
                arr = np.asarray(im)
            elif im.mode == "RGBA":
                arr = np.asarray(im)[..., :3]
            elif im.mode == "1":
                arr = np.asarray(im).astype(np.uint8)
            else:
                arr = np.asarray(im.convert("RGB"))
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"unreadable image file: {path} ({type(e).__name__}: {e})") from e
    return np.ascontiguousarray(arr)


def read_rgb(path: Path) -> np.ndarray:
    """An image as uint8 (H, W, 3); grey images are replicated to three channels."""
    arr = read_image(path, colour=True)
    if arr.dtype != np.uint8:
        raise DataError(f"expected an 8-bit colour image, got {arr.dtype}: {path}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr


def read_json(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"missing json file: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"unreadable json file: {path} ({e})") from e


def check_same_size(arrays: dict[Path, np.ndarray]) -> None:
    """All arrays must share height and width; the error names every file and its size."""
    sizes = {p: a.shape[:2] for p, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{p} is {w}x{h}" for p, (h, w) in sizes.items())
        raise DataError(f"modalities of one sample differ in size: {listing}")


def check_labels(labels: np.ndarray, num_classes: int, path: Path, ignore_index: int = 255) -> None:
    """Labels must lie in 0..num_classes-1 or equal ignore_index."""
    bad = (labels >= num_classes) & (labels != ignore_index)
    if labels.dtype.kind == "i":
        bad |= labels < 0
    if bad.any():
        values = np.unique(labels[bad])[:10].tolist()
        raise DataError(
            f"label out of range in {path}: values {values} (expected 0..{num_classes - 1} "
            f"or {ignore_index} = ignore)"
        )


def read_list_file(path: Path) -> list[list[str]]:
    """A list file: one sample a line, columns split on whitespace; blank and '#' lines skipped."""
    path = Path(path)
    if not path.is_file():
        siblings = sorted(p.name for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        hint = f" (list files there: {', '.join(siblings)})" if siblings else ""
        raise DataFileNotFoundError(f"missing split list file: {path}{hint}")
    rows = []
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Windows editors) is not a path
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append(line.split())
    return rows


def require_samples(count: int, where: object) -> None:
    """An empty split is an error, not a data set: training on it would fail far from the cause."""
    if count == 0:
        raise DataError(f"no samples in {where}: the split lists none (or the layout is not the expected one)")
