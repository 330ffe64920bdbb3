"""A SynthRooms-trained segmentation model on real NYUDv2 images, over the classes both share.

    python -m train.transfer CHECKPOINT --root NYUDV2_ROOT [--split val] [--write-config]

The model predicts SynthRooms classes; NYUDv2 labels are the 40 Gupta et al. classes. Predictions
are mapped to NYUDv2 by name (rug -> floor mat; classes without a counterpart map to nothing),
and the scores count only pixels whose ground truth is one of the mapped NYUDv2 classes. This
measures transfer from synthetic rooms, not NYUDv2 performance. `--write-config` stores the scores
in a local checkpoint's config.json, where the app's and the Hub's model cards show them to people
who upload a photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mango import metrics
from mango.data import NYUDV2_CLASSES, NYUDv2
from mango.models import MangoModel
from mango.models.checkpoint import CONFIG_NAME, write_metadata_entry

from .cli import printable, reports_user_errors

RENAMED = {"rug": "floor mat"}


def class_mapping(source_classes: tuple[str, ...]) -> dict[int, int]:
    """Source class index -> NYUDv2 class index, for the classes with a counterpart."""
    nyu = {name: i for i, name in enumerate(NYUDV2_CLASSES)}
    return {i: nyu[RENAMED.get(c, c)] for i, c in enumerate(source_classes) if RENAMED.get(c, c) in nyu}


@torch.no_grad()
def transfer_scores(model: MangoModel, dataset: NYUDv2) -> dict:
    """Pixel accuracy and mIoU over the shared classes (and over those of them the ground truth
    holds). A prediction of a class with no NYUDv2 counterpart (ball, camouflaged, ...) on a
    shared-class pixel counts as wrong."""
    mapping = class_mapping(model.config.class_names)
    shared = sorted(set(mapping.values()))
    k = len(shared)  # index k = "predicted a class NYUDv2 does not have"
    pred_lookup = np.full(model.config.num_classes, k, dtype=np.int64)
    for src, dst in mapping.items():
        pred_lookup[src] = shared.index(dst)
    target_lookup = np.full(256, 255, dtype=np.int64)
    for j, dst in enumerate(shared):
        target_lookup[dst] = j
    conf = np.zeros((k + 1, k + 1), dtype=np.int64)
    for i in range(len(dataset)):
        item = dataset[i]
        logits = model(item["a"][None].to(model.device), item["b"][None].to(model.device)).output
        pred = pred_lookup[logits.argmax(1)[0].cpu().numpy()]
        conf += metrics.confusion_matrix(pred, target_lookup[item["target"].numpy()], k + 1)
    scores = metrics.segmentation_scores(conf)
    iou = np.asarray(scores["iou"])[:k]
    present = conf[:k].sum(1) > 0  # classes with ground-truth pixels in these images
    return dict(
        images=len(dataset),
        shared_classes=[NYUDV2_CLASSES[c] for c in shared],
        scored_pixels=int(conf.sum()),
        pixel_acc=float(scores["pixel_acc"]),
        miou=float(np.nanmean(iou)),
        # on a few images many shared classes do not occur, and predicting one on a scored pixel
        # gives it an IoU of 0 in `miou`; this mean leaves them out (they are listed below)
        miou_classes_in_ground_truth=float(np.nanmean(iou[present])) if present.any() else float("nan"),
        classes_absent_from_ground_truth=[NYUDV2_CLASSES[c] for c, p in zip(shared, present) if not p],
        per_class_iou={NYUDV2_CLASSES[c]: (None if np.isnan(v) else round(float(v), 4)) for c, v in zip(shared, iou)},
        predicted_unshared_share=float(conf[:, k].sum() / max(1, conf.sum())),
    )


@reports_user_errors("python -m train.transfer")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.transfer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--root", required=True, help="NYUDv2 in the TokenFusion list layout")
    p.add_argument("--split", default="val")
    p.add_argument("--write-config", action="store_true",
                   help="store the scores in the checkpoint's config.json (metadata.transfer) for its model cards")
    a = p.parse_args(argv)
    if a.write_config and not (Path(a.checkpoint) / CONFIG_NAME).is_file():  # before a model is built
        p.error(f"--write-config needs a local checkpoint folder; {a.checkpoint} has no {CONFIG_NAME}")
    model = MangoModel.from_pretrained(a.checkpoint, expected_task="segmentation")
    dataset = NYUDv2(a.root, a.split, image_size=model.config.image_size, train=False)
    scores = transfer_scores(model, dataset)
    print(printable(scores))
    if a.write_config:
        command = "python -m train.transfer " + " ".join(argv if argv is not None else sys.argv[1:])
        entry = {"data": "NYUDv2", "split": a.split, "command": command,
                 **{k: scores[k] for k in ("images", "scored_pixels", "pixel_acc", "miou", "shared_classes")}}
        print(f"wrote the scores to {write_metadata_entry(a.checkpoint, 'transfer', entry)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
