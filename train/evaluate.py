"""Evaluate a checkpoint on a split and print its task metrics (SPEC 6).

    python -m train.evaluate CHECKPOINT --dataset nyudv2 --root DATA [--split test]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mango import metrics
from mango.models import MangoModel, TaskMismatchError

from .cli import reports_user_errors
from .data import DATASETS, TASK_OF_DATASET, build_split
from .features import BackboneCache

BITS_PER_DIM_PERCENTILES = (5, 50, 95)
# what picks best/ on the validation split; genre weighs the common and the rare genres alike
SELECTION_METRIC = {"segmentation": ("miou", +1), "translation": ("mae", -1), "genre": ("mean_f1", +1)}


def _outputs(model: MangoModel, dataset: Any, batch_size: int, num_workers: int, progress: bool) -> Iterator[tuple[Any, dict]]:
    """(model output, batch) over a dataset, or over a `BackboneCache` of it."""
    if isinstance(dataset, BackboneCache):
        for batch in tqdm(dataset.in_order(batch_size, model.device), desc="evaluate", disable=not progress,
                          leave=False, total=-(-len(dataset) // batch_size)):
            yield model.forward_features(*model.features_from_backbone(batch["backbone"])), batch
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        yield model(batch["a"].to(model.device), _to(batch["b"], model.device)), batch


@torch.no_grad()
def evaluate(model: MangoModel, dataset: Dataset | BackboneCache, batch_size: int = 16, num_workers: int = 0,
             progress: bool = False, keep_probabilities: bool = False) -> dict[str, Any]:
    """The task's metrics over a whole dataset (or its cached backbone outputs), plus the flow's
    bits/dim when it has one: the mean and the 5th, 50th and 95th percentiles (`bits_per_dim_p5`,
    ...). Genres count as predicted above the checkpoint's tuned thresholds (0.5 when it has none);
    with `keep_probabilities` the result also holds the genre `probabilities` and `targets` arrays
    (N, genres), in the dataset's order, for pooling predictions across runs (train.crossval)."""
    model.eval()
    task = model.config.task
    conf = None
    probs, targets, abs_err, sq_err, bpd = [], [], [], [], []
    for out, batch in _outputs(model, dataset, batch_size, num_workers, progress):
        if out.bits_per_dim is not None:
            bpd.append(out.bits_per_dim.float().cpu())
        target = batch["target"].cpu()
        if task == "segmentation":
            pred = out.output.argmax(dim=1).cpu()
            c = metrics.confusion_matrix(pred, target, model.config.num_classes)
            conf = c if conf is None else conf + c
        elif task == "translation":
            diff = out.output.float().cpu().clamp(0, 1) - target
            abs_err.append(diff.abs().flatten(1).mean(1))
            sq_err.append(diff.pow(2).flatten(1).mean(1))
        else:
            probs.append(torch.sigmoid(out.output.float()).cpu())
            targets.append(target)
    result: dict[str, Any] = {"samples": len(dataset)}
    if task == "segmentation":
        scores = metrics.segmentation_scores(conf)
        result.update({k: float(v) for k, v in scores.items() if np.ndim(v) == 0})
        result["per_class_iou"] = [None if np.isnan(v) else float(v) for v in np.asarray(scores["iou"])]
    elif task == "translation":
        result.update(mae=float(torch.cat(abs_err).mean()), mse=float(torch.cat(sq_err).mean()))
    else:
        thresholds = np.asarray(model.config.thresholds())
        all_probs, all_targets = torch.cat(probs).numpy(), torch.cat(targets).numpy()
        scores = metrics.multilabel_f1(all_probs, all_targets, threshold=thresholds)
        if keep_probabilities:
            result.update(probabilities=all_probs, targets=all_targets)
        result.update({k: float(v) for k, v in scores.items() if np.ndim(v) == 0})
        result["mean_f1"] = (result["micro_f1"] + result["macro_f1_present"]) / 2
        result["per_class_f1"] = [float(v) for v in scores["f1"]]
    if bpd:
        values = torch.cat(bpd)
        result["bits_per_dim"] = float(values.mean())
        # the spread too: the app shows where a sample's bits/dim falls among typical inputs
        for q in BITS_PER_DIM_PERCENTILES:
            result[f"bits_per_dim_p{q}"] = float(np.percentile(values.numpy(), q))
    return result


@torch.no_grad()
def tune_thresholds(model: MangoModel, dataset: Dataset | BackboneCache, batch_size: int = 16,
                    grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
                    per_class: bool = True) -> tuple[float, ...]:
    """The probability thresholds that maximise F1 on `dataset` (the validation split; never the
    test split): per genre (a genre with no positive there keeps 0.5), or one for all genres,
    chosen by the mean of micro and macro F1."""
    model.eval()
    probs, targets = [], []
    for out, batch in _outputs(model, dataset, batch_size, 0, False):
        probs.append(torch.sigmoid(out.output.float()).cpu())
        targets.append(batch["target"].cpu())
    p, y = torch.cat(probs).numpy(), torch.cat(targets).numpy().astype(bool)
    if not per_class:
        score = [sum(metrics.multilabel_f1(p, y, threshold=t)[k] for k in ("micro_f1", "macro_f1_present")) for t in grid]
        return (float(grid[int(np.argmax(score))]),) * p.shape[1]
    chosen = []
    for k in range(p.shape[1]):
        if not y[:, k].any():
            chosen.append(0.5)
            continue
        f1 = [metrics.multilabel_f1(p[:, k : k + 1], y[:, k : k + 1], threshold=t)["micro_f1"] for t in grid]
        chosen.append(float(grid[int(np.argmax(f1))]))
    return tuple(chosen)


def _to(x: Any, device: torch.device) -> Any:
    return x.to(device) if isinstance(x, torch.Tensor) else x


def format_table(results: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in results.items() if isinstance(v, (int, float))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows)


@reports_user_errors("python -m train.evaluate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", default="test", help="the split on disk to score (only its files are read)")
    parser.add_argument("--inputs", nargs=2, default=None, help="Taskonomy input domains (default: the checkpoint's)")
    parser.add_argument("--target", default=None, help="Taskonomy target domain (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    try:  # a model for another task cannot read this data's targets
        model = MangoModel.from_pretrained(args.checkpoint, device=args.device,
                                           expected_task=TASK_OF_DATASET[args.dataset])
    except TaskMismatchError as e:
        parser.error(f"{e}: --dataset {args.dataset} holds {TASK_OF_DATASET[args.dataset]} data")
    cfg = model.config
    inputs, target = (cfg.a.name, cfg.b.name), cfg.target.name if cfg.target is not None else "rgb"
    if args.dataset != "taskonomy" and (args.inputs or args.target):
        parser.error(f"--inputs and --target name Taskonomy domains; {args.dataset} has none to choose")
    # the model reads the domains it was trained on: other ones would be scored as if they were those
    if args.inputs and tuple(args.inputs) != inputs:
        parser.error(f"--inputs {' '.join(args.inputs)}: the checkpoint was trained on {' '.join(inputs)}; "
                     "leave --inputs out, or evaluate a checkpoint trained on these domains")
    if args.target and args.target != target:
        parser.error(f"--target {args.target}: the checkpoint predicts {target}; leave --target out, or evaluate "
                     "a checkpoint trained for this target")
    dataset = build_split(args.dataset, args.root, cfg.image_size, args.split, inputs=inputs, target=target)
    names = tuple(getattr(dataset, "class_names", ()) or ())
    if names and tuple(cfg.class_names) != names:  # label k would be scored against another class k
        parser.error(f"the checkpoint's {len(cfg.class_names)} classes ({', '.join(cfg.class_names[:4])}, ...) are not "
                     f"the data's {len(names)} ({', '.join(names[:4])}, ...): scores would pair different classes. "
                     "For a SynthRooms model on NYUDv2 use python -m train.transfer, which maps classes by name")
    results = evaluate(model, dataset, batch_size=args.batch_size, progress=True)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
