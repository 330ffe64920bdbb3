"""Taskonomy domain folders: two input domains and one target domain (image-to-image translation)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .constants import IGNORE_INDEX, TASKONOMY_DOMAINS
from .errors import (DataError, check_labels, check_same_size, read_image, read_json, read_list_file, require_files,
                     require_samples)
from .transforms import PairedTransform, decode_domain, flip_normal_x

# Domains whose files the release names otherwise than their folder: segment_semantic/
# point_0_view_0_domain_segmentsemantic.png (the folder's name is also read, as SynthRooms writes it).
FILE_TAGS = {"segment_semantic": "segmentsemantic"}
COLOUR_DOMAINS = ("rgb", "normal", "principal_curvature")  # pictures: a palette file means its colours
_ID_RE = re.compile(r"^(?P<id>.*point_\d+_view_\d+)_domain_[A-Za-z0-9_]+\.png$")


class Taskonomy(Dataset):
    """Taskonomy's storage layout: ``root/<domain>/point_P_view_V_domain_<domain>.png``.

    Item: ``{"a": inputs[0], "b": inputs[1], "target": target domain, "id": "point_P_view_V"}``,
    each image decoded per the peer protocol (``mango.data.transforms``): rgb /255 (3 ch),
    depth log(1+raw)/11.1 (1 ch), normal /255 (3 ch), reshading /255 (1 ch), edge_texture /11355
    (1 ch). A ``segment_semantic`` target is int64 (H, W) labels (255 ignore); its files are read by
    the release's name, ``..._domain_segmentsemantic.png``, or by the folder's.

    The split: ``root/<split>.txt``, one sample a line, either an id (``point_0_view_0``) or a
    path template relative to root with ``{domain}`` in it (the CEN/TokenFusion list format, e.g.
    ``{domain}/point_0_view_0_domain_{domain}.png``; building sub-folders allowed).
    ``split="all"`` with no ``all.txt`` scans the first input domain's folder.
    """

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, train: bool = False,
                 inputs: Sequence[str] = ("reshading", "edge_texture"), target: str = "rgb",
                 class_names: Sequence[str] | None = None):
        self.root = Path(root)
        self.split = split
        self.inputs = tuple(inputs)
        self.target = target
        if len(self.inputs) != 2:
            raise ValueError(f"Taskonomy takes exactly two input domains, got {self.inputs}")
        for d in (*self.inputs, target):
            if d not in TASKONOMY_DOMAINS:
                raise ValueError(f"unknown Taskonomy domain {d!r}; known: {', '.join(TASKONOMY_DOMAINS)}")
        self.image_size = int(image_size)
        self.train = bool(train)
        self.transform = PairedTransform(image_size, train)
        if target == "segment_semantic":
            if class_names is None:
                meta = self.root / "meta.json"
                class_names = read_json(meta).get("classes", ()) if meta.is_file() else ()
            if not class_names:
                raise ValueError("a segment_semantic target needs class_names (or root/meta.json 'classes')")
        self.class_names = tuple(class_names or ())

        templates: list[tuple[str, str]] = []  # (id, template with {domain})
        list_path = self.root / f"{split}.txt"
        if split == "all" and not list_path.is_file():
            folder = self.root / self.inputs[0]
            if not folder.is_dir():
                raise DataError(f"missing domain folder: {folder}")
            for p in sorted(folder.glob(f"*_domain_{self.inputs[0]}.png")):
                sid = p.name[: -len(f"_domain_{self.inputs[0]}.png")]
                templates.append((sid, f"{{domain}}/{sid}_domain_{{domain}}.png"))
        else:
            for cols in read_list_file(list_path):
                line = cols[0]
                if "{domain}" in line:
                    name = Path(line.replace("{domain}", "d")).name
                    m = _ID_RE.match(name)
                    stem = m.group("id") if m else Path(name).stem
                    folders = [q for q in Path(line).parent.parts if "{domain}" not in q]
                    templates.append(("/".join([*folders, stem]), line))
                else:
                    templates.append((line, f"{{domain}}/{line}_domain_{{domain}}.png"))
        self.samples = templates
        require_samples(len(templates), list_path if list_path.is_file() else self.root / self.inputs[0])
        require_files((self.path(i, d) for i in range(len(self.samples)) for d in (*self.inputs, target)),
                      "Taskonomy file")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def path(self, index: int, domain: str) -> Path:
        template = self.samples[index][1]
        plain = self.root / template.replace("{domain}", domain)
        tag = FILE_TAGS.get(domain)
        if tag is None or "{domain}" not in template:
            return plain
        head, _, tail = template.rpartition("{domain}")  # the release names the file by its tag
        released = self.root / (head.replace("{domain}", domain) + tag + tail)
        return released if released.is_file() or not plain.is_file() else plain

    def __len__(self) -> int:
        return len(self.samples)

    def load_raw(self, index: int) -> dict[str, np.ndarray]:
        domains = (*self.inputs, self.target)
        paths = {d: self.path(index, d) for d in domains}
        raw = {d: read_image(p, colour=d in COLOUR_DOMAINS) for d, p in paths.items()}
        check_same_size({paths[d]: raw[d] for d in domains})
        if self.target == "segment_semantic":
            lab = raw[self.target]
            lab = lab[..., 0] if lab.ndim == 3 else lab
            check_labels(lab, self.num_classes, paths[self.target], IGNORE_INDEX)
        return raw

    def _decode(self, domain: str, arr: np.ndarray, index: int, p) -> torch.Tensor:
        x = decode_domain(domain, arr, self.path(index, domain))
        if domain == "segment_semantic":
            return PairedTransform.mask(x, p)
        x = PairedTransform.image(x, p)
        if p.flip and domain == "normal":
            x = flip_normal_x(x)
        return x

    def __getitem__(self, index: int) -> dict:
        raw = self.load_raw(index)
        p = self.transform.params(*raw[self.target].shape[:2])
        a_dom, b_dom = self.inputs
        return {
            "a": self._decode(a_dom, raw[a_dom], index, p),
            "b": self._decode(b_dom, raw[b_dom], index, p),
            "target": self._decode(self.target, raw[self.target], index, p),
            "id": self.samples[index][0],
        }

    def verify(self) -> None:
        for i in range(len(self)):
            self.load_raw(i)
