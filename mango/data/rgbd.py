"""RGB-D semantic segmentation loaders: NYUDv2 (TokenFusion list layout) and SUN RGB-D (DFormer layout)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .constants import IGNORE_INDEX, NYUDV2_CLASSES, SUNRGBD_CLASSES
from .errors import (DataError, check_labels, check_same_size, read_image, read_json, read_list_file, require_files,
                     require_samples)
from .transforms import ColourJitter, PairedTransform, depth_to_unit, fill_depth_holes, rgb_to_unit


class RGBDSegmentation(Dataset):
    """Base: samples are (id, rgb path, depth path, label path); items follow the mango.data contract.

    Item: ``{"a": rgb (3,H,W) in [0,1], "b": depth (1,H,W) = metres / depth_max clipped to [0,1],
    "target": int64 (H,W) with 255 = ignore, "id": str}``. Depth holes (stored 0) are filled from
    the nearest measured pixel (``fill_depth_holes``). ``photometric`` (with ``train``) jitters
    the colour image's colours (``ColourJitter``) after the crop.
    """

    class_names: tuple[str, ...] = ()

    def __init__(self, samples: list[tuple[str, Path, Path, Path]], image_size: int, train: bool,
                 depth_max: float, depth_scale: float | None, photometric: bool = False):
        if depth_max <= 0:
            raise ValueError(f"depth_max must be positive, got {depth_max}")
        self.samples = samples
        self.image_size = int(image_size)
        self.train = bool(train)
        self.depth_max = float(depth_max)
        self.depth_scale = depth_scale
        self.transform = PairedTransform(image_size, train)
        self.colour_jitter = ColourJitter() if (train and photometric) else None
        require_files((p for s in samples for p in s[1:]), "file listed by the split")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.samples)

    def _labels(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Stored label image -> int64 labels 0..K-1 / 255; overridden for shifted label sets."""
        labels = raw.astype(np.int64)
        check_labels(labels, self.num_classes, path, IGNORE_INDEX)
        return labels

    def _depth(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Stored depth as the loader's units expect it; overridden where a release encodes it."""
        return raw

    def load_raw(self, index: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """The stored arrays of one sample, checked: (id, rgb uint8 HxWx3, depth with holes filled, labels int64)."""
        sid, rgb_p, depth_p, mask_p = self.samples[index]
        rgb, depth, mask = read_image(rgb_p, colour=True), read_image(depth_p), read_image(mask_p)
        if rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise DataError(f"expected an 8-bit RGB image, got {rgb.dtype} {rgb.shape}: {rgb_p}")
        if mask.ndim == 3:
            raise DataError(f"label image must be single-channel, got shape {mask.shape}: {mask_p}")
        if depth.ndim == 3:
            depth = depth[..., 0]
        depth = fill_depth_holes(self._depth(depth, depth_p))[0]
        check_same_size({rgb_p: rgb, depth_p: depth, mask_p: mask})
        return sid, rgb, depth, self._labels(mask, mask_p)

    def __getitem__(self, index: int) -> dict:
        sid, rgb, depth, labels = self.load_raw(index)
        p = self.transform.params(*labels.shape)
        colour = PairedTransform.image(rgb_to_unit(rgb), p)
        return {
            "a": self.colour_jitter(colour) if self.colour_jitter is not None else colour,
            "b": PairedTransform.image(depth_to_unit(depth, self.depth_max, self.depth_scale), p),
            "target": PairedTransform.mask(torch.from_numpy(labels), p),
            "id": sid,
        }

    def verify(self) -> None:
        """Read every sample once; raises the first DataError (naming the file)."""
        for i in range(len(self)):
            self.load_raw(i)


def _classes_from_meta(root: Path, default: Sequence[str]) -> tuple[str, ...]:
    meta = root / "meta.json"
    if meta.is_file():
        classes = read_json(meta).get("classes")
        if classes:
            return tuple(classes)
    return tuple(default)


class NYUDv2(RGBDSegmentation):
    """NYU Depth v2 in the TokenFusion list layout.

    ``root/<split>.txt`` lists one sample a line, tab- (or space-) separated columns
    ``rgb/NNNNNN.png  masks/NNNNNN.png  depth/NNNNNN.png`` (mask in the middle column), paths
    relative to ``root``. rgb: 8-bit colour; depth: uint16 millimetres (``depth_scale`` metres per
    unit, default 1e-3); masks: uint8 labels 0..39, 255 unlabelled. A two-column list (rgb, mask)
    takes the depth path from the rgb path with its ``rgb`` folder replaced by ``depth``.

    ``class_names``: default the 40 Gupta et al. classes, or the ``classes`` of ``root/meta.json``
    when present (SynthRooms writes one, so its NYUDv2-layout copy loads with its own classes).
    """

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, train: bool = False,
                 depth_max: float = 10.0, depth_scale: float | None = None,
                 class_names: Sequence[str] | None = None, list_file: str | Path | None = None,
                 photometric: bool = False):
        self.root = Path(root)
        self.split = split
        list_path = Path(list_file) if list_file is not None else self.root / f"{split}.txt"
        self.class_names = tuple(class_names) if class_names is not None else _classes_from_meta(
            self.root, NYUDV2_CLASSES)
        samples = []
        for n, cols in enumerate(read_list_file(list_path), 1):
            if len(cols) >= 3:
                rgb, mask, depth = cols[:3]
            elif len(cols) == 2:
                rgb, mask = cols
                parts = Path(rgb).parts
                if "rgb" not in parts:
                    raise DataError(f"{list_path}:{n}: two columns, and no 'rgb' folder to derive depth from")
                depth = str(Path(*[("depth" if q == "rgb" else q) for q in parts]))
            else:
                raise DataError(f"{list_path}:{n}: expected 'rgb mask depth' columns, got {cols}")
            samples.append((Path(rgb).stem, self.root / rgb, self.root / depth, self.root / mask))
        require_samples(len(samples), list_path)
        super().__init__(samples, image_size, train, depth_max, depth_scale, photometric)


class SUNRGBD(RGBDSegmentation):
    """SUN RGB-D in the DFormer layout.

    ``root/RGB/<name>.jpg``, ``root/Depth/<name>.png``, ``root/labels/<name>.png`` (or ``Label/``),
    and ``root/train.txt`` / ``root/test.txt`` (5,285 / 5,050 lines); each line's first column is a
    path whose file stem is the sample name (e.g. ``RGB/0001.jpg``).
    Labels are stored 0..37 with 0 = unlabelled; they are shifted by one as DFormer does
    (stored k -> k-1, stored 0 -> 255 ignore; a stored 255 stays ignore), giving 37 classes.
    Depth: 16-bit files are ``depth_scale`` metres per unit (default 1e-3, millimetres); 8-bit files
    (DFormer's released depth maps) are taken as already normalised (value / 255) unless a
    ``depth_scale`` is given. Then divided by ``depth_max`` and clipped to [0, 1]. The official
    release's 16-bit files (millimetres rotated left by 3 bits) are recognised and rotated back.
    """

    class_names = SUNRGBD_CLASSES

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, train: bool = False,
                 depth_max: float = 10.0, depth_scale: float | None = None,
                 rgb_dir: str = "RGB", depth_dir: str = "Depth", label_dir: str | None = None,
                 rgb_ext: str = ".jpg", depth_ext: str = ".png", label_ext: str = ".png", photometric: bool = False):
        self.root = Path(root)
        self.split = split
        if label_dir is None:
            label_dir = next((d for d in ("labels", "Label", "Labels", "label") if (self.root / d).is_dir()), "labels")
        samples = []
        for cols in read_list_file(self.root / f"{split}.txt"):
            name = Path(cols[0]).stem
            samples.append((name, self.root / rgb_dir / (name + rgb_ext),
                            self.root / depth_dir / (name + depth_ext),
                            self.root / label_dir / (name + label_ext)))
        require_samples(len(samples), self.root / f"{split}.txt")
        super().__init__(samples, image_size, train, depth_max, depth_scale, photometric)

    def _depth(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """The official SUN RGB-D depth PNGs store millimetres rotated left by 3 bits (the SUN3D
        toolbox's depthRead undoes it); read as plain millimetres they would be 8x too far and clip.
        Such a file is recognised (every value a multiple of 8, a median beyond 12 m as millimetres)
        and rotated back; any other 16-bit depth beyond 12 m at its median is refused."""
        if raw.dtype != np.uint16 or self.depth_scale not in (None, 1e-3):
            return raw
        valid = raw[raw > 0]
        if valid.size == 0 or np.median(valid) <= 12000:
            return raw
        if not (valid % 8).any():
            return ((raw >> 3) | (raw << 13)).astype(np.uint16)
        raise DataError(f"depth median {np.median(valid) / 1000:.1f} m in {path}: not indoor millimetres. Give "
                        "depth_scale for other units; the official release's bit-shifted files are undone by themselves")

    def _labels(self, raw: np.ndarray, path: Path) -> np.ndarray:
        raw = raw.astype(np.int64)
        bad = (raw > len(self.class_names)) & (raw != IGNORE_INDEX)
        if bad.any():
            raise DataError(
                f"label out of range in {path}: values {np.unique(raw[bad])[:10].tolist()} "
                f"(SUN RGB-D stores 0 = unlabelled, 1..{len(self.class_names)})")
        return np.where((raw == 0) | (raw == IGNORE_INDEX), IGNORE_INDEX, raw - 1)
