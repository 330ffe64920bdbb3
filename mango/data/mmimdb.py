"""MM-IMDb in its raw release layout: poster + plot -> multi-label genres."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .constants import MMIMDB_GENRES
from .errors import DataError, read_json, read_rgb, require_files
from .transforms import PairedTransform, rgb_to_unit

PLOT_MODES = ("longest", "join")
_SPLIT_ALIASES = {"val": "dev", "valid": "dev", "validation": "dev"}


class MMIMDb(Dataset):
    """MM-IMDb raw layout: ``root/dataset/<id>.jpeg``, ``root/dataset/<id>.json``, ``root/split.json``.

    Item: ``{"a": poster (3,H,W) in [0,1], "b": plot (str), "target": float32 multi-hot
    (num_genres,), "id": the IMDb id}``. MM-IMDb keeps one or more plot paragraphs per film;
    ``plot="longest"`` (default) takes the longest, as the release's own scripts and MMBT do, so
    scores compare with published ones; ``plot="join"`` joins them all with single spaces.
    A film listed in two splits is warned about (the release's splits are disjoint).

    ``split``: ``train`` / ``dev`` / ``test`` (``val`` is an alias of ``dev``).
    ``genres``: ``"standard"`` (default) = the 23 MM-IMDb genres in the usual order;
    ``"data"`` = every genre found in the films of split.json, by descending count then name;
    or an explicit list. Genres of a film outside the vocabulary are dropped (MM-IMDb's 23 leave
    out Adult, News, Reality-TV, Talk-Show), so a film may have an all-zero target.
    Posters: shorter side resized to ``image_size`` then centre-cropped (posters are portrait, so
    the top and bottom are cut); random crop and flip when ``train``.
    """

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 224, train: bool = False,
                 genres: str | Sequence[str] = "standard", plot: str = "longest"):
        if plot not in PLOT_MODES:
            raise ValueError(f"plot must be one of {PLOT_MODES}, got {plot!r}")
        self.plot_mode = plot
        self.root = Path(root)
        self.split = _SPLIT_ALIASES.get(split, split)
        self.image_size = int(image_size)
        self.train = bool(train)
        self.transform = PairedTransform(image_size, train)
        split_path = self.root / "split.json"
        splits = read_json(split_path)
        if not isinstance(splits, dict) or self.split not in splits:
            have = ", ".join(splits) if isinstance(splits, dict) else type(splits).__name__
            raise DataError(f"split {split!r} not in {split_path} (it has: {have})")
        numbers = [i for ids in splits.values() for i in ids if not isinstance(i, str)]
        if numbers:  # 297884 for "0297884" has lost its leading zero: the file would be "missing 297884.json"
            raise DataError(f"{split_path} lists film ids as numbers (e.g. {numbers[0]!r}); MM-IMDb ids are strings "
                            "that keep their leading zeros (\"0297884\"): write them quoted, as the release does")
        self.ids = list(splits[self.split])
        elsewhere = {i for key, ids in splits.items() if key != self.split for i in ids}
        shared = sorted(set(self.ids) & elsewhere)
        if shared:
            warnings.warn(f"{len(shared)} film(s) of split {self.split!r} are also in another split of {split_path} "
                          f"(e.g. {', '.join(shared[:3])}): scores on that split are not held out from them",
                          stacklevel=2)
        ddir = self.root / "dataset"
        require_files((ddir / f"{i}.{ext}" for i in self.ids for ext in ("json", "jpeg")), "MM-IMDb file")

        self._meta: dict[str, tuple[str, list[str]]] = {}
        for i in self.ids:
            self._meta[i] = self._read_meta(ddir / f"{i}.json", plot)
        if isinstance(genres, str):
            if genres == "standard":
                vocab: Sequence[str] = MMIMDB_GENRES
            elif genres == "data":
                counts: Counter[str] = Counter()
                for ids in splits.values():
                    for i in dict.fromkeys(ids):
                        meta = self._meta.get(i) or self._read_meta(ddir / f"{i}.json", plot)
                        counts.update(set(meta[1]))
                vocab = sorted(counts, key=lambda g: (-counts[g], g))
            else:
                raise ValueError(f"genres must be 'standard', 'data' or a list, got {genres!r}")
        else:
            vocab = genres
        self.class_names = tuple(vocab)
        self._index = {g: k for k, g in enumerate(self.class_names)}

    @staticmethod
    def _read_meta(path: Path, mode: str = "longest") -> tuple[str, list[str]]:
        d = read_json(path)
        if not isinstance(d, dict) or "genres" not in d or "plot" not in d:
            raise DataError(f"MM-IMDb json needs 'plot' and 'genres' keys: {path}")
        plot, genres = d["plot"], d["genres"]
        if isinstance(plot, str):
            plot = [plot]
        if not isinstance(plot, list) or not all(isinstance(s, str) for s in plot):
            raise DataError(f"'plot' must be a list of strings: {path}")
        if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
            raise DataError(f"'genres' must be a list of strings: {path}")
        paragraphs = [s.strip() for s in plot]
        if mode == "longest":  # the first of the longest, as numpy's argmax in the release's scripts
            return (max(paragraphs, key=len) if paragraphs else ""), genres
        return " ".join(paragraphs), genres

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.ids)

    def genre_target(self, genres: Sequence[str]) -> torch.Tensor:
        t = torch.zeros(len(self.class_names), dtype=torch.float32)
        for g in genres:
            k = self._index.get(g)
            if k is not None:
                t[k] = 1.0
        return t

    def __getitem__(self, index: int) -> dict:
        sid = self.ids[index]
        plot, genres = self._meta[sid]
        poster = rgb_to_unit(read_rgb(self.root / "dataset" / f"{sid}.jpeg"))
        p = self.transform.params(*poster.shape[-2:])
        return {"a": PairedTransform.image(poster, p), "b": plot, "target": self.genre_target(genres), "id": sid}
