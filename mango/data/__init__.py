"""MANGO's data layer: real-data loaders in their download layouts, and the SynthRooms generator.

Contract (every dataset here; the rest of the project codes against it)
-----------------------------------------------------------------------
``dataset[i]`` is a dict ``{"a": ..., "b": ..., "target": ..., "id": str}``: "a" is modality A
and "b" modality B, A first as in SPEC 1 (RGB then depth; first input domain then second;
poster then plot). The default torch collate works (ids and plots become lists of str).

- Images: float32 tensors (C, H, W), roughly in [0, 1].
  rgb: 3 channels, uint8 / 255.
  NYU / SUN depth: 1 channel, metres / ``depth_max`` (default 10 m) clipped to [0, 1];
  ``depth_scale`` = metres per stored unit (default 1e-3: uint16 millimetres; SUN's 8-bit depth
  files are taken as already normalised, value / 255).
  Taskonomy depth_zbuffer (uint16, 1/512 m): ``clamp(log(1 + raw) / 11.1, 0, 1)`` (the peer
  protocol's log(1+x) on the stored value; 11.1 ~ log(65536), so the invalid value 65535 -> ~1).
  normal: 3 channels, stored / 255 (127-centred). reshading: 1 channel, / 255.
  edge_texture: 1 channel, stored / 11355 clipped to [0, 1].
- Segmentation target: int64 (H, W), 255 = ignore. Translation target: float32 (C, H, W) image
  of the target domain, same conventions. Genre target: float32 multi-hot (num_genres,).
- MM-IMDb "b" is the plot as one str: the json's ``plot`` list joined with single spaces.
- Every dataset takes ``root``, ``split``, ``image_size`` and ``train`` and exposes
  ``class_names`` and ``num_classes`` (0 / () for translation). Geometry: the shorter side is
  resized to ``image_size`` and the centre square cropped (bilinear + antialias for images,
  nearest for masks); with ``train=True`` the shorter side goes to 1.125 x image_size, then a
  random square crop and a random left-right flip (normal maps get their x mirrored).
- Bad data raises ``DataError`` (``DataFileNotFoundError`` for a missing file), naming the file:
  a missing file, an unreadable image, modalities of different sizes, a label out of range.

Loaders: ``NYUDv2`` (TokenFusion list layout), ``SUNRGBD`` (DFormer layout), ``Taskonomy``
(domain folders, any two inputs and one target), ``MMIMDb`` (raw release layout).
SynthRooms: ``render_scene(seed, size)`` and ``python -m mango.data.synthrooms --out DIR``
(writes the Taskonomy and NYUDv2 layouts, so training always goes through the loaders above).
"""

from .constants import (
    GENERATOR_NAMES,
    IGNORE_INDEX,
    LAYOUT_NAMES,
    MMIMDB_GENRES,
    NYUDV2_CLASSES,
    SUNRGBD_CLASSES,
    SYNTHROOMS_CAMOUFLAGED_CLASS,
    SYNTHROOMS_CLASSES,
    SYNTHROOMS_DECAL_CLASSES,
    TASKONOMY_DOMAINS,
)
from .errors import DataError, DataFileNotFoundError
from .mmimdb import MMIMDb
from .rgbd import NYUDv2, RGBDSegmentation, SUNRGBD
from .taskonomy import Taskonomy
from .transforms import PairedTransform, decode_domain, depth_to_unit, fill_depth_holes

# SynthRooms names load lazily, so that `python -m mango.data.synthrooms` runs the module once
_SYNTHROOMS_NAMES = ("encode_scene", "render", "render_scene", "sample_scene", "save_grid", "scene_to_sample",
                     "write_dataset")


def __getattr__(name: str):
    if name in _SYNTHROOMS_NAMES:
        from . import synthrooms

        return getattr(synthrooms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GENERATOR_NAMES", "IGNORE_INDEX", "LAYOUT_NAMES", "MMIMDB_GENRES", "NYUDV2_CLASSES", "SUNRGBD_CLASSES",
    "SYNTHROOMS_CAMOUFLAGED_CLASS", "SYNTHROOMS_CLASSES", "SYNTHROOMS_DECAL_CLASSES", "TASKONOMY_DOMAINS",
    "DataError", "DataFileNotFoundError",
    "MMIMDb", "NYUDv2", "RGBDSegmentation", "SUNRGBD", "Taskonomy",
    "PairedTransform", "decode_domain", "depth_to_unit", "fill_depth_holes",
    "encode_scene", "render", "render_scene", "sample_scene", "save_grid", "scene_to_sample", "write_dataset",
]
