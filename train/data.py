"""Datasets for training, always through mango.data's real-format loaders.

SynthRooms is written to disk in the NYUDv2 list layout and the Taskonomy layout by
``python -m mango.data.synthrooms``; training reads it back with the NYUDv2 and Taskonomy loaders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from mango.data import GENERATOR_NAMES, LAYOUT_NAMES, MMIMDb, NYUDv2, SUNRGBD, Taskonomy
from mango.data.errors import DataFileNotFoundError

DATASETS = ("nyudv2", "sunrgbd", "taskonomy", "mmimdb")
FIT_ON = ("train", "train+val")  # what the model is fitted on; "train+val" leaves nothing to select on
TASK_OF_DATASET = {"nyudv2": "segmentation", "sunrgbd": "segmentation", "taskonomy": "translation", "mmimdb": "genre"}


@dataclass
class Splits:
    """Train / validation (for selection) / test (reported once, at the end) datasets."""

    train: Dataset
    val: Dataset
    test: Dataset
    class_names: tuple[str, ...]
    description: dict[str, Any]
    train_eval: Dataset | None = None  # the training samples read as evaluation reads them (no random crop)

    def __post_init__(self) -> None:
        if self.train_eval is None:
            self.train_eval = self.train


def _split_off(dataset: Dataset, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Carve a validation subset from a training set that has no split of its own."""
    n = len(dataset)
    n_val = max(1, int(round(n * fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])


PHOTOMETRIC_DATASETS = ("nyudv2", "sunrgbd")  # the sets whose colour images can be jittered (RGB-D segmentation)


def _reader(dataset: str, root: Path, image_size: int, inputs: tuple[str, str], target: str,
            photometric: bool = False):
    """`make(split, train)`: one split of the dataset through its loader, augmented when `train`
    (colours jittered too with `photometric`: RGB-D segmentation only)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {DATASETS}")
    if photometric and dataset not in PHOTOMETRIC_DATASETS:
        raise ValueError(f"photometric jitter is for the RGB-D segmentation sets (nyudv2, sunrgbd), not {dataset}")
    if dataset == "mmimdb":
        return lambda split, train: MMIMDb(root, split, image_size=image_size, train=train)
    if dataset == "nyudv2":
        return lambda split, train: NYUDv2(root, split, image_size=image_size, train=train, photometric=photometric)
    if dataset == "sunrgbd":
        return lambda split, train: SUNRGBD(root, split, image_size=image_size, train=train, photometric=photometric)
    return lambda split, train: Taskonomy(root, split, image_size=image_size, train=train, inputs=inputs, target=target)


def build_split(dataset: str, root: str | Path, image_size: int, split: str,
                inputs: tuple[str, str] = ("reshading", "edge_texture"), target: str = "rgb") -> Dataset:
    """One split as evaluation reads it (no augmentation), without reading any other: scoring a
    checkpoint on `split` needs only that split's files."""
    return _reader(dataset, Path(root), image_size, inputs, target)(split, False)


def build_splits(
    dataset: str,
    root: str | Path,
    image_size: int,
    inputs: tuple[str, str] = ("reshading", "edge_texture"),
    target: str = "rgb",
    val_fraction: float = 0.1,
    seed: int = 0,
    test_split: str = "test",
    fit_on: str = "train",
    photometric: bool = False,
    limit: int | None = None,
) -> Splits:
    """The three splits of a dataset; a validation set is carved from train when none exists.

    ``fit_on="train+val"`` puts the validation samples into the training set too, as a final fit
    at a step count chosen beforehand does (the MM-IMDb probe the genre targets come from was
    fitted on train + dev): the validation split is still returned, but it is no longer held out.
    ``limit`` reads only the first ``limit`` samples of each split: a smoke run of the whole path,
    whose scores mean nothing.
    """
    root = Path(root)
    if fit_on not in FIT_ON:
        raise ValueError(f"fit_on must be one of {FIT_ON}, got {fit_on!r}")
    if not root.is_dir():  # before a split's list file is looked for in it
        raise DataFileNotFoundError(f"no {dataset} folder at {root} (--root): give the folder that holds its "
                                    f"{'split.json' if dataset == 'mmimdb' else 'split list files'}")
    if limit is not None and limit < 2:
        raise ValueError(f"limit must be at least 2 samples per split, got {limit}")
    with_val = fit_on == "train+val"
    read = _reader(dataset, root, image_size, inputs, target, photometric)

    def make(split: str, train: bool) -> Dataset:
        whole = read(split, train)
        return whole if limit is None or len(whole) <= limit else Subset(whole, range(limit))

    if dataset == "mmimdb":
        train_set, val_set = make("train", True), make("dev", False)
        train_eval = make("train", False)
        if with_val:
            train_set, train_eval = ConcatDataset([train_set, make("dev", True)]), ConcatDataset([train_eval, val_set])
        test_set = make(test_split, False)
        val_note = "dev split, trained on (not held out)" if with_val else "dev split"
    else:
        full_train = make("train", True)
        train_set, _ = _split_off(full_train, val_fraction, seed)
        # the validation subset is read without augmentation
        full_train_eval = make("train", False)
        train_eval, val_set = _split_off(full_train_eval, val_fraction, seed)
        if with_val:
            train_set, train_eval = full_train, full_train_eval
        test_set = make(test_split, False)
        held = "trained on (not held out)" if with_val else "held out"
        val_note = f"{val_fraction:.0%} of train, {held} (seed {seed})"
    class_names = tuple(getattr(getattr(test_set, "dataset", test_set), "class_names", ()) or ())
    distinct = len(train_eval) + (0 if with_val else len(val_set)) + len(test_set)
    meta = _generator_meta(root)
    description = dict(
        dataset=dataset,
        name=dataset_name(dataset, root, distinct, meta.get("generator"), meta.get("fitted", False)),
        root=root.resolve().name,  # the folder's own name, also for `--root .`
        image_size=image_size,
        train_samples=len(train_set),
        val_samples=len(val_set),
        test_samples=len(test_set),
        validation=val_note,
        test_split=test_split,
        fit_on=fit_on,
    )
    if limit is not None:
        description["limit"] = limit
    if photometric:
        description["augmentation"] = "crops, flips, colour jitter"
    if dataset == "taskonomy":
        description.update(inputs=list(inputs), target=target)
    description.update(_generator_description(meta))
    return Splits(train_set, val_set, test_set, class_names, description, train_eval)


def dataset_name(dataset: str, root: Path, samples: int, generator: str | None = None,
                 fitted: bool | str = False) -> str:
    """What a model card calls the data: a generated set by its generator ("SynthRooms (NYUDv2
    layout)", "SynthRooms, fitted rooms (...)"), any other by its folder's own name, layout and
    size, never by a machine path."""
    layout = LAYOUT_NAMES[dataset]
    if generator in GENERATOR_NAMES:
        rooms = {True: ", fitted rooms", "desks": ", desks with drawers"}.get(fitted, "")
        return f"{GENERATOR_NAMES[generator]}{rooms} ({layout} layout)"
    unit = "films" if dataset == "mmimdb" else "samples"
    return f"{root.resolve().name} ({layout} layout, {samples:,} {unit})"


def _generator_meta(root: Path) -> dict[str, Any]:
    """The generator's `meta.json` beside a generated data set ({} for any other folder)."""
    meta_path = root / "meta.json"
    return json.loads(meta_path.read_text()) if meta_path.is_file() else {}


def _generator_description(meta: dict[str, Any]) -> dict[str, Any]:
    """A generated data set (SynthRooms) says how to make it again, so the checkpoint can too."""
    if "generator" not in meta:
        return {}
    keep = ("generator", "generator_version", "seed", "n", "size", "fitted", "description")
    return {"source": {k: meta[k] for k in keep if k in meta}}
