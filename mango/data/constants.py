"""Class and genre vocabularies of the data sets MANGO reads."""

from __future__ import annotations

#: NYUDv2 40-class set of Gupta et al. (CVPR 2013), in label order 0..39 (255 = unlabelled).
NYUDV2_CLASSES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)

#: SUN RGB-D 37-class set (the first 37 of the NYUDv2 40), label order 0..36 after the shift by one.
SUNRGBD_CLASSES: tuple[str, ...] = NYUDV2_CLASSES[:37]

#: The 23 MM-IMDb genres in the usual order (the MM-IMDb paper's, by descending frequency).
MMIMDB_GENRES: tuple[str, ...] = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
)

#: Taskonomy domains the Taskonomy loader can decode (see ``mango.data.transforms.decode_domain``).
TASKONOMY_DOMAINS: tuple[str, ...] = (
    "rgb", "depth_zbuffer", "depth_euclidean", "normal", "reshading", "edge_texture",
    "edge_occlusion", "principal_curvature", "segment_semantic",
)

#: SynthRooms semantic classes, label order. ``picture`` and ``rug`` are flat decals (only colour
#: reveals them); ``camouflaged`` objects carry the colour of what is behind them (only geometry
#: -- depth, normal, reshading -- reveals them).
SYNTHROOMS_CLASSES: tuple[str, ...] = (
    "wall", "floor", "ceiling", "cabinet", "table", "sofa", "stool", "ball", "lamp",
    "picture", "rug", "camouflaged",
)
SYNTHROOMS_DECAL_CLASSES: tuple[int, ...] = (9, 10)
SYNTHROOMS_CAMOUFLAGED_CLASS: int = 11

IGNORE_INDEX: int = 255

# how each loader's layout is named for readers (model cards, the app); a layout, not a claim
# that the files are that data set (the development films are "MM-IMDb-style", not MM-IMDb)
LAYOUT_NAMES: dict[str, str] = {"nyudv2": "NYUDv2", "sunrgbd": "SUN RGB-D", "taskonomy": "Taskonomy", "mmimdb": "MM-IMDb"}
GENERATOR_NAMES: dict[str, str] = {"mango.data.synthrooms": "SynthRooms"}
