"""`python -m mango.bench holes CHECKPOINT --root SYNTHROOMS_ROOT`: what depth holes cost segmentation.

Depth cameras write 0 where they measure nothing: in the shadow beside a depth edge, on glass,
black or distant surfaces. SynthRooms renders complete depth, so holes are made here in the test
scenes' depth and the model is scored three ways: complete depth, holes read as 0 (0 m), and holes
filled from the nearest measured pixel (`mango.data.fill_depth_holes`, what the loaders and the
app do with a stored 0). Two hole patterns, each at several shares of the image:

- ``edges``: the pixels of the strongest depth changes, widened by two pixels (camera shadows);
- ``blobs``: smooth random regions (surfaces the camera cannot read).

The holes are made at the model's input size, in depth already scaled to [0, 1]; each scene's
pattern is seeded by its index, so reruns agree. Prints mIoU and pixel accuracy per row and
writes them to ``--out`` as CSV when given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from mango.atomic import atomic_write_text
from mango.bench import refuse_below

KINDS = ("edges", "blobs")


def hole_mask(depth: np.ndarray, share: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A boolean (H, W) mask covering about ``share`` of a depth map, in the pattern ``kind``."""
    if kind == "edges":  # a third of the share at the strongest gradients, widened by 2 px each side
        gradient = np.hypot(*np.gradient(depth.astype(np.float64)))
        return ndimage.binary_dilation(gradient > np.quantile(gradient, 1 - share / 3), iterations=2)
    if kind == "blobs":
        field = ndimage.gaussian_filter(rng.standard_normal(depth.shape), 6)
        return field > np.quantile(field, 1 - share)
    raise ValueError(f"unknown hole pattern {kind!r}; choose from {KINDS}")


def holed_depths(depth: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The depth with its masked pixels read as 0, and filled from the nearest unmasked pixel."""
    from mango.data import fill_depth_holes

    zero = np.where(mask, 0.0, depth).astype(depth.dtype)
    return {"zero": zero, "filled": fill_depth_holes(zero)[0]}


@torch.no_grad()
def score(model: torch.nn.Module, data: Any, limit: int | None, shares: list[float], kinds: list[str]) -> pd.DataFrame:
    """One row per (pattern, share, reading): mean hole share, mIoU and pixel accuracy over the scenes."""
    from mango import metrics
    from mango.bench.explanations import scenes_of

    k = len(model.config.class_names)
    confusion: dict[tuple[str, float, str], np.ndarray] = {}
    holes: dict[tuple[str, float], list[float]] = {}

    def add(key: tuple[str, float, str], a: torch.Tensor, depth: np.ndarray, target: np.ndarray) -> None:
        b = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None, None]
        pred = model(a, b).output.argmax(1)[0].numpy()
        confusion[key] = confusion.get(key, 0) + metrics.confusion_matrix(pred, target, k)

    count = 0
    for index, (_, a, b, target) in enumerate(scenes_of(data, limit)):
        depth, labels = b[0, 0].numpy(), target.numpy()
        add(("none", 0.0, "complete"), a, depth, labels)
        for kind in kinds:
            for share in shares:
                mask = hole_mask(depth, share, kind, np.random.default_rng(index))
                holes.setdefault((kind, share), []).append(float(mask.mean()))
                for reading, holed in holed_depths(depth, mask).items():
                    add((kind, share, reading), a, holed, labels)
        count = index + 1
        if count % 20 == 0:
            print(f"  {count} scenes", file=sys.stderr, flush=True)
    rows = []
    for (kind, share, reading), conf in confusion.items():
        scores = metrics.segmentation_scores(conf)
        rows.append({"pattern": kind, "share": share, "holes": float(np.mean(holes.get((kind, share), [0.0]))),
                     "reading": reading, "scenes": count, "miou": float(scores["miou"]),
                     "pixel_acc": float(scores["pixel_acc"])})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mango.bench holes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="segmentation checkpoint folder or Hub repo id")
    ap.add_argument("--root", required=True, help="SynthRooms folder (holding nyudv2/) or its nyudv2/ copy")
    ap.add_argument("--split", default="test", help="split list to read (default test)")
    ap.add_argument("--limit", type=int, default=120, help="the first N scenes of the split (default 120)")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.15, 0.3], help="hole shares to make")
    ap.add_argument("--patterns", nargs="+", choices=KINDS, default=list(KINDS), help="hole patterns to make")
    ap.add_argument("--out", default=None, help="write the table to this CSV file too")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.limit < 1:
        ap.error(f"--limit must be at least 1 scene, got {args.limit}")
    refuse_below(ap, 1, ("--threads", args.threads))
    if any(not 0 < s < 1 for s in args.shares):
        ap.error(f"--shares must lie strictly between 0 and 1, got {args.shares}")

    from mango.bench.explanations import scene_data
    from mango.data import DataError
    from mango.models import CheckpointError, MangoModel

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = MangoModel.from_pretrained(args.checkpoint, expected_task="segmentation").eval()
        data = scene_data(args.root, model.config.image_size, float(model.config.metadata.get("depth_max", 10.0)),
                          args.split)
    except (CheckpointError, DataError) as err:
        ap.error(str(err))
    if tuple(data.class_names) != tuple(model.config.class_names):
        ap.error(f"--root's classes ({', '.join(data.class_names[:4])}, ...) are not the checkpoint's "
                 f"({', '.join(model.config.class_names[:4])}, ...)")
    table = score(model, data, args.limit, args.shares, args.patterns)
    with pd.option_context("display.width", 120):
        print(table.round(3).to_string(index=False))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, table.to_csv(index=False))
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
