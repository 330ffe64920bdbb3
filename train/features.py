"""Stage 2 on frozen backbones: compute their outputs once, then train the flow and the head on them.

When no backbone changes in stage 2 (`MangoModel.cacheable_backbones`: pretrained backbones are
frozen, image encoders were trained in stage 1, a text tower is not fine-tuned), every step would
recompute the same backbone outputs. `BackboneCache` runs the backbones once over a split and keeps
their outputs (float16) with the targets; the trainer then draws batches from it. This is what
makes a 3-seed ablation affordable on two CPU cores.

Augmentation: the cache holds each sample as evaluation reads it (centre crop) and, with
``mirrored=True``, also its left-right mirror image (normals' x channel mirrored too, as the data
loaders do). Random crops are not cached.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mango.models import MangoModel


def mirror_item(item: dict[str, Any], names: dict[str, str], task: str) -> dict[str, Any]:
    """A loader item or batch mirrored left-right: images, label maps and image targets flipped,
    text and genre targets unchanged, a `normal` image's x channel mirrored. ``names`` maps "a",
    "b", "target" to modality names."""
    out = dict(item)
    keys = ("a", "b", "target") if task in ("segmentation", "translation") else ("a", "b")
    for key in keys:
        value = item[key]
        if not isinstance(value, torch.Tensor):
            continue  # text
        flipped = value.flip(-1)
        if names.get(key) == "normal":  # stored as 127 + 128 n: mirror x as the loaders do
            flipped = flipped.clone()
            flipped[..., 0, :, :] = (254.0 / 255.0 - flipped[..., 0, :, :]).clamp_(0.0, 1.0)
        out[key] = flipped
    return out


def _pack(value: Any) -> Any:
    """float16 on the CPU for features; ids stay integers."""
    if isinstance(value, tuple):
        return tuple(_pack(v) for v in value)
    if value.is_floating_point():
        return value.detach().to("cpu", torch.float16)
    return value.detach().cpu()


def _unpack(value: Any, device: torch.device) -> Any:
    if isinstance(value, tuple):
        return tuple(_unpack(v, device) for v in value)
    return value.to(device, torch.float32) if value.is_floating_point() else value.to(device)


def _compact_target(target: torch.Tensor, task: str) -> torch.Tensor:
    if task == "segmentation":
        return target.to(torch.uint8)  # labels < 255 or 255 = ignore
    if task == "translation":
        return (target.clamp(0, 1) * 255).round().to(torch.uint8)
    return target.to(torch.uint8)  # multi-hot genres


def _expand_target(target: torch.Tensor, task: str) -> torch.Tensor:
    if task == "segmentation":
        return target.long()
    if task == "translation":
        return target.float() / 255
    return target.float()


class BackboneCache(Dataset):
    """A split's backbone outputs and targets, computed once with a model's frozen backbones.

    Items: ``{"backbone": {key: output}, "target": tensor, "id": str}`` in the form
    `MangoModel.loss` accepts. Translation targets are stored as 8-bit images (1/255 steps).
    """

    def __init__(self, model: MangoModel, dataset: Dataset, mirrored: bool = False, batch_size: int = 32,
                 progress: bool = True, split: str = ""):
        if not model.cacheable_backbones:
            raise ValueError("a backbone is trained in stage 2: its outputs cannot be cached")
        self.task = model.config.task
        self.split = split
        self.keys = list(model.plan.modalities)
        desc = f"caching {split + ' ' if split else ''}backbone outputs"
        names = {"a": model.config.a.name, "b": model.config.b.name,
                 "target": model.config.target.name if model.config.target is not None else ""}
        views = [False, True] if mirrored else [False]
        outputs: dict[str, list[Any]] = {k: [] for k in self.keys}
        targets: list[torch.Tensor] = []
        self.ids: list[str] = []
        was_training = model.training
        model.eval()
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
        with torch.no_grad():
            for view in views:
                for batch in _loader_pass(loader, desc + (" (mirrored)" if view else ""), progress):
                    if view:
                        batch = mirror_item(batch, names, self.task)
                    found = model.backbone_outputs(batch["a"], batch.get("b"))
                    for key in self.keys:
                        outputs[key].append(_pack(found[key]))
                    targets.append(_compact_target(batch["target"], self.task))
                    self.ids += [f"{i}{'~mirrored' if view else ''}" for i in batch["id"]]
        model.train(was_training)
        self.outputs = {k: _concat(v) for k, v in outputs.items()}
        self.targets = torch.cat(targets)
        self.samples, self.views = len(dataset), len(views)  # rows: every sample, then (mirrored) again

    def subset(self, indices: Sequence[int], mirrored: bool | None = None) -> BackboneCache:
        """The cache `Subset(dataset, indices)` would give, from these rows instead of the backbones
        (train.crossval: one cache for every fold). ``mirrored=False`` leaves the mirrored rows out."""
        views = self.views if mirrored is None else (2 if mirrored else 1)
        if views > self.views:
            raise ValueError("this cache holds no mirrored rows")
        index = torch.as_tensor(list(indices), dtype=torch.long)
        if len(index) and not (0 <= int(index.min()) and int(index.max()) < self.samples):
            raise IndexError(f"indices must lie in [0, {self.samples})")
        rows = torch.cat([index + view * self.samples for view in range(views)])
        part = copy.copy(self)
        part.outputs = {k: _index(v, rows) for k, v in self.outputs.items()}
        part.targets = self.targets[rows]
        part.ids = [self.ids[i] for i in rows.tolist()]
        part.samples, part.views = len(index), views
        return part

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        backbone = {k: _index(v, index) for k, v in self.outputs.items()}
        return {"backbone": backbone, "target": _expand_target(self.targets[index], self.task), "id": self.ids[index]}

    def batches(self, batch_size: int, generator: torch.Generator, device: torch.device,
                skip: int = 0) -> Iterator[dict[str, Any]]:
        """Shuffled full batches forever (an epoch at a time, the last partial batch dropped); the
        first `skip` are drawn but not yielded, so a resumed run goes on with the batches an
        uninterrupted one trains on next."""
        n = len(self)
        if n < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} cached training rows: "
                             "give a smaller --batch-size")
        while True:
            order = torch.randperm(n, generator=generator)
            for start in range(0, n - batch_size + 1, batch_size):
                if skip > 0:
                    skip -= 1
                    continue
                yield self.batch(order[start : start + batch_size], device)

    def batch(self, indices: torch.Tensor, device: torch.device) -> dict[str, Any]:
        backbone = {k: _unpack(_index(v, indices), device) for k, v in self.outputs.items()}
        target = _expand_target(self.targets[indices], self.task).to(device)
        return {"backbone": backbone, "target": target, "id": [self.ids[i] for i in indices.tolist()]}

    def in_order(self, batch_size: int, device: torch.device) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, len(self))), device)


def _loader_pass(loader: DataLoader, desc: str, progress: bool) -> Iterator[Any]:
    return tqdm(loader, desc=desc, disable=not progress, leave=False)


def draw_like_caching(passes: int) -> None:
    """Draw from torch's global generator what `passes` passes over a split draw while caching it
    (each DataLoader iterator seeds itself from it), without reading any data: a run given rows of
    a cache made elsewhere (train.crossval) then trains on the random stream it would have had."""
    loader = DataLoader(range(1), batch_size=1, num_workers=0)
    for _ in range(passes):
        for _batch in _loader_pass(loader, "", progress=False):
            pass


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))
    return torch.cat(parts)


def _index(value: Any, index: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(v[index] for v in value)
    return value[index]


__all__ = ["BackboneCache", "draw_like_caching", "mirror_item"]
