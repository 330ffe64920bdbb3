"""`python -m mango.bench explanations CHECKPOINT --root SYNTHROOMS_ROOT`: explanations you can check.

For every known-answer object in unseen SynthRooms scenes (camouflaged objects: only depth shows
them; pictures and rugs: only colour), how often does each explanation method point at the
modality that reveals the object? Methods: exact two-player Shapley values, feature ablation,
Integrated Gradients (encoder features, Gauss-Legendre, steps doubled until converged) and the
attention rollout (which modality's input tokens feed the object's tokens). The rules are in
`mango.known_answers`: the target is the object's class's mean logit (and, separately, its mean
log-probability) over its ground-truth region, and a method is right when the revealing modality
raises the target by more than the other modality does (rollout: gives more than half).

Each figure comes with the class's IoU on the same scenes, and with the share of objects the model
labels at all (recall >= 0.5): an explanation can only be right where the model is right.

Writes to ``--out`` (default ``bench_results/explanations``): ``objects.csv`` (one row per object
and target), ``summary.csv`` (per target, class group and method), ``explanations.png`` and
``run.json`` (settings, timing). ``objects.csv`` grows scene by scene, and Ctrl-C writes the rest
for the scenes finished so far (``run.json``: ``"interrupted": true``); ``run.json`` is written at
the start with ``"status": "running, or killed..."``, so a run killed outright is not mistaken for a
finished one. ``--root`` is the folder
written by ``python -m mango.data.synthrooms`` (or its ``nyudv2/`` copy); its test split holds
scenes the model never saw in training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mango import known_answers as ka
from mango.atomic import atomic_write_text, replace_file
from mango.bench import refuse_below
from mango.interpret import SCORES

DEFAULT_OUT = Path("bench_results") / "explanations"
OUTPUTS = ("objects.csv", "summary.csv", "explanations.png", "run.json")
GOAL_PCT = 90.0  # an attribution method is trusted on a group when it credits the revealing modality this often
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("camouflaged", ("camouflaged",)),
    ("picture", ("picture",)),
    ("rug", ("rug",)),
    ("decal (picture + rug)", ("picture", "rug")),
)
Scene = tuple[str, Tensor, Tensor, Tensor]  # id, a (1, C, H, W), b (1, C, H, W), labels (H, W) int64


def scene_data(root: str | Path, image_size: int, depth_max: float = 10.0, split: str = "test") -> Any:
    """The split's NYUDv2-layout data set (raises mango.data.DataError for a missing or bad folder)."""
    from mango.data import NYUDv2

    root = Path(root)
    if (root / "nyudv2" / f"{split}.txt").is_file():
        root = root / "nyudv2"
    return NYUDv2(root, split, image_size=image_size, train=False, depth_max=depth_max)


def scenes_of(data: Sequence[dict[str, Any]], limit: int | None = None) -> Iterator[Scene]:
    """The first ``limit`` (default all) scenes of a data set from `scene_data`."""
    count = len(data) if limit is None else min(limit, len(data))
    for index in range(count):
        item = data[index]
        yield item["id"], item["a"][None], item["b"][None], item["target"]


def evaluate(model: nn.Module, scenes: Iterable[Scene], scores: Sequence[str] = SCORES, ig_steps: int = 32,
             max_ig_steps: int = 128, min_pixels: int | None = None,
             progress: Callable[[int, float], None] | None = None,
             on_scene: Callable[[list[dict[str, Any]], np.ndarray], None] | None = None,
             ) -> tuple[pd.DataFrame, np.ndarray]:
    """Check every known-answer object of every scene. Returns one row per (object, score) and the
    confusion matrix of the model's predictions on the same scenes (rows: ground truth).

    ``min_pixels`` (default a quarter of one patch) skips specks the model cannot resolve.
    ``on_scene`` gets each finished scene's rows and the confusion so far, so a caller can keep
    them as they come (a full run takes many minutes).
    """
    from mango.metrics import confusion_matrix

    config = model.config
    names = (config.a.name, config.b.name)
    classes = list(config.class_names)
    if min_pixels is None:
        min_pixels = max(1, config.patch_size**2 // 4)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for count, (scene_id, a, b, labels) in enumerate(scenes, start=1):
        with torch.no_grad():
            predicted = model(a, b).output.argmax(dim=1)[0].cpu()
        confusion += confusion_matrix(predicted, labels, len(classes))
        objects = ka.known_objects(labels, classes, names, min_pixels)
        scene_rows = [_row(scene_id, number, check, names) for score in scores
                      for number, check in enumerate(ka.check_objects(model, a, b, objects, score, ig_steps, max_ig_steps))]
        rows.extend(scene_rows)
        if on_scene is not None:
            on_scene(scene_rows, confusion.copy())
        if progress is not None:
            progress(count, time.perf_counter() - start)
    return pd.DataFrame(rows), confusion


def _row(scene_id: str, number: int, check: ka.ObjectCheck, names: tuple[str, str]) -> dict[str, Any]:
    obj = check.obj
    row: dict[str, Any] = {
        "scene": scene_id, "object": number, "class": obj.class_name, "kind": obj.kind,
        "revealing": names["ab".index(obj.revealing)], "pixels": obj.pixels, "recall": round(check.recall, 4),
        "score": check.score, "f_both": check.f_both, "f_none": check.f_none,
    }
    for method in ka.METHODS:
        values = check.values.get(method, (float("nan"), float("nan")))
        row[f"{method}_{names[0]}"], row[f"{method}_{names[1]}"] = values
        row[f"{method}_right"] = check.right.get(method, False) if method in check.values else None
    row.update(ig_delta=check.ig_delta, ig_steps=check.ig_steps, ig_converged=check.ig_converged)
    return row


def class_iou(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Per-class IoU from a confusion matrix (NaN for a class absent from labels and predictions)."""
    from mango.metrics import segmentation_scores

    iou = segmentation_scores(confusion)["iou"]
    return {name: float(iou[k]) for k, name in enumerate(class_names)}


def summarise(objects: pd.DataFrame, iou: dict[str, float]) -> pd.DataFrame:
    """Per target score, class group and method: objects, how many the method gets right (%), the
    same among the objects the model detects (recall >= 0.5), the class IoU and IG convergence."""
    rows = []
    for score in [s for s in SCORES if not objects.empty and s in set(objects["score"])]:
        for group, members in GROUPS:
            part = objects[(objects["score"] == score) & objects["class"].isin(members)]
            if part.empty:
                continue
            detected = part[part["recall"] >= ka.DETECTED_RECALL]
            # only the classes with objects here: a class absent from the scenes would pull the mean to 0
            present = [m for m in members if m in set(part["class"])]
            group_iou = float(np.nanmean([iou.get(m, float("nan")) for m in present]))
            for method in ka.METHODS:
                column = f"{method}_right"
                if part[column].isna().all():
                    continue
                right = int(part[column].astype(bool).sum())
                right_detected = int(detected[column].astype(bool).sum())
                revealing, other = _revealing_values(part, method)
                rows.append({
                    "score": score, "group": group, "method": method, "objects": len(part),
                    "right": right, "right_pct": round(100 * right / len(part), 1),
                    "detected_objects": len(detected),
                    "right_pct_detected": round(100 * right_detected / len(detected), 1) if len(detected) else float("nan"),
                    "mean_revealing": round(float(revealing.mean()), 4), "mean_other": round(float(other.mean()), 4),
                    "class_iou": round(group_iou, 3),
                    "ig_converged_pct": round(100 * float(part["ig_converged"].mean()), 1)
                    if method == "integrated_gradients" else float("nan"),
                })
    return pd.DataFrame(rows)


def _revealing_values(objects: pd.DataFrame, method: str) -> tuple[pd.Series, pd.Series]:
    """Per object, the method's value for the revealing modality and for the other one."""
    names = [c[len(method) + 1:] for c in objects.columns if c.startswith(f"{method}_") and c != f"{method}_right"]
    revealing = pd.Series([row[f"{method}_{row['revealing']}"] for _, row in objects.iterrows()], index=objects.index)
    other = pd.Series([row[f"{method}_{next(n for n in names if n != row['revealing'])}"] for _, row in objects.iterrows()],
                      index=objects.index)
    return revealing, other


def table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as one row per (score, group): right % per method, IoU and objects beside."""
    wide = summary.pivot_table(index=["score", "group"], columns="method", values="right_pct", sort=False)
    wide = wide[[m for m in ka.METHODS if m in wide.columns]].rename(columns=ka.METHOD_LABELS)
    info = summary.groupby(["score", "group"], sort=False)[["objects", "detected_objects", "class_iou"]].first()
    return info.join(wide).reset_index()


def figure(summary: pd.DataFrame, objects: pd.DataFrame, path: str | Path, title: str = "",
           image_format: str | None = None) -> Path:
    """Per target score, per class group, the % of objects each attribution method gets right; and
    a panel for the rollout (it does not depend on the target): the share of the object's tokens'
    absolute rollout weight on the revealing modality, mean and range over objects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [s for s in SCORES if s in set(summary["score"])]
    groups = [g for g, _ in GROUPS if g in set(summary["group"])]
    methods = [m for m in ka.METHODS if m != "rollout" and m in set(summary["method"])]
    has_rollout = "rollout" in set(summary["method"])
    panels = len(scores) + int(has_rollout)
    ratios = [3] * len(scores) + [2] * int(has_rollout)
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * len(scores) + 3.6 * has_rollout, 4.4), squeeze=False,
                             gridspec_kw={"width_ratios": ratios})
    width = 0.8 / max(1, len(methods))
    labels = [g.replace(" (", "\n(") for g in groups]
    for ax, score in zip(axes[0], scores):
        part = summary[summary["score"] == score]
        for j, method in enumerate(methods):
            heights = [_value(part, g, method, "right_pct") for g in groups]
            xs = np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * width
            ax.bar(xs, heights, width, label=ka.METHOD_LABELS[method], color=ka.METHOD_COLOURS[method])
        for i, group in enumerate(groups):
            iou, n = _value(part, group, methods[0], "class_iou"), _value(part, group, methods[0], "objects")
            ax.text(i, 103, f"IoU {iou:.2f}\n{int(n)} objects", ha="center", va="bottom", fontsize=8)
        ax.axhline(GOAL_PCT, color="#111827", lw=0.8, ls="--")
        ax.set_xticks(range(len(groups)), labels, fontsize=8)
        ax.set_ylim(0, 122)
        ax.set_ylabel("% of objects where the revealing modality\nraises the target, and more than the other", fontsize=8)
        ax.set_title(f"target: the class's mean {'logit' if score == 'logit' else 'log-probability'} over the object",
                     fontsize=9)
    if has_rollout:
        ax = axes[0][-1]
        part = objects[objects["score"] == scores[0]]
        for i, (group, members) in enumerate(g for g in GROUPS if g[0] in groups):
            shares, _ = _revealing_values(part[part["class"].isin(members)], "rollout")
            mean = 100 * float(shares.mean())
            ax.bar(i, mean, 0.6, color=ka.METHOD_COLOURS["rollout"])
            ax.errorbar(i, mean, yerr=[[mean - 100 * shares.min()], [100 * shares.max() - mean]], color="#111827",
                        capsize=4, lw=1)
            ax.text(i, 100 * shares.max() + 2, f"{mean:.1f}%", ha="center", va="bottom", fontsize=8)
        ax.axhline(50, color="#111827", lw=0.8, ls=":")
        ax.set_xticks(range(len(groups)), labels, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of the object's tokens' absolute\nrollout weight on the revealing modality", fontsize=8)
        ax.set_title("attention rollout (mean, min-max)\nright: above the dotted half", fontsize=9)
    handles, names = axes[0][0].get_legend_handles_labels()
    if scores:  # the panels with the 90 % line
        handles.append(plt.Line2D([], [], color="#111827", lw=0.8, ls="--"))
        names.append(f"goal: {GOAL_PCT:.0f} % right")
    fig.legend(handles, names, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=120, format=image_format)  # None: from the file name
    plt.close(fig)
    return path


def _value(part: pd.DataFrame, group: str, method: str, column: str) -> float:
    hit = part[(part["group"] == group) & (part["method"] == method)]
    return float(hit[column].iloc[0]) if len(hit) else float("nan")


def write(out: str | Path, objects: pd.DataFrame, summary: pd.DataFrame, meta: dict[str, Any]) -> Path:
    """objects.csv, summary.csv, explanations.png and run.json in ``out``, each written whole or not
    at all. Without a summary no figure is drawn, and an earlier run's figure is removed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    replace_file(out / "objects.csv", lambda path: objects.to_csv(path, index=False))
    replace_file(out / "summary.csv", lambda path: summary.to_csv(path, index=False))
    atomic_write_text(out / "run.json", json.dumps(meta, indent=2) + "\n")
    if summary.empty:
        (out / "explanations.png").unlink(missing_ok=True)  # it would describe another run
    else:
        title = f"Known answers, {meta.get('checkpoint', '')}: {meta.get('scenes', '?')} unseen SynthRooms scenes"
        replace_file(out / "explanations.png", lambda path: figure(summary, objects, path, title, image_format="png"))
    return out


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append one scene's rows to a CSV (header first when the file is new): an interrupted run keeps
    the objects it has checked."""
    if rows:
        pd.DataFrame(rows).to_csv(path, mode="a", header=not path.is_file(), index=False)


def weights_sha256(location: str | Path) -> str | None:
    """SHA-256 of a local checkpoint folder's model.safetensors (None for a Hub id or no file): which
    weights a result belongs to."""
    path = Path(location) / "model.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mango.bench explanations", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="segmentation checkpoint folder or Hub repo id")
    ap.add_argument("--root", required=True, help="SynthRooms folder (holding nyudv2/) or its nyudv2/ copy")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--split", default="test", help="split list to read (default test: scenes never trained on)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N scenes of the split")
    ap.add_argument("--scores", nargs="+", choices=SCORES, default=list(SCORES), help="targets to check")
    ap.add_argument("--ig-steps", type=int, default=32, help="first Integrated Gradients step count")
    ap.add_argument("--max-ig-steps", type=int, default=128, help="double the steps up to this until converged")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1 scene, got {args.limit}")
    refuse_below(ap, 1, ("--ig-steps", args.ig_steps), ("--threads", args.threads))
    if args.max_ig_steps < args.ig_steps:  # the first pass would use --ig-steps anyway, above the maximum
        ap.error(f"--ig-steps {args.ig_steps} is above --max-ig-steps {args.max_ig_steps}: the steps start at "
                 "--ig-steps and double up to --max-ig-steps; lower --ig-steps or raise --max-ig-steps")

    from mango.data import DataError
    from mango.models import CheckpointError, MangoModel

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = MangoModel.from_pretrained(args.checkpoint, expected_task="segmentation").eval()
    except CheckpointError as err:
        ap.error(str(err))
    depth_max = float(model.config.metadata.get("depth_max", 10.0))
    try:
        data = scene_data(args.root, model.config.image_size, depth_max, args.split)
    except DataError as err:
        ap.error(str(err))
    classes, data_classes = tuple(model.config.class_names), tuple(data.class_names)
    if classes != data_classes:  # label k would be read as another class k (or be out of range)
        ap.error(f"the checkpoint's {len(classes)} classes ({', '.join(classes[:4])}, ...) are not the data's "
                 f"{len(data_classes)} ({', '.join(data_classes[:4])}, ...): --root must hold SynthRooms scenes "
                 "labelled with the checkpoint's classes")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # an earlier run's results must not sit beside this run's
        (out / name).unlink(missing_ok=True)
    settings = {
        "checkpoint": str(args.checkpoint), "checkpoint_sha256": weights_sha256(args.checkpoint), "root": str(args.root),
        "split": args.split, "limit": args.limit, "scores": args.scores, "ig_steps": args.ig_steps,
        "max_ig_steps": args.max_ig_steps,
    }
    # said from the start: a run killed outright (no Ctrl-C) leaves objects.csv beside a run.json that says so
    atomic_write_text(out / "run.json", json.dumps({**settings, "status": "running, or killed: objects.csv holds "
                                                    "the scenes it finished"}, indent=2) + "\n")
    seen: dict[str, Any] = {"scenes": 0, "rows": [], "confusion": np.zeros((len(classes), len(classes)), dtype=np.int64)}

    def keep(rows: list[dict[str, Any]], confusion: np.ndarray) -> None:
        append_rows(out / "objects.csv", rows)
        seen["rows"].extend(rows)
        seen["confusion"] = confusion

    def report(count: int, elapsed: float) -> None:
        seen["scenes"] = count
        if count % 10 == 0:
            print(f"  {count} scenes, {elapsed:.0f} s", file=sys.stderr, flush=True)

    start = time.perf_counter()
    interrupted = False
    try:
        objects, confusion = evaluate(model, scenes_of(data, args.limit), args.scores, args.ig_steps, args.max_ig_steps,
                                      progress=report, on_scene=keep)
    except KeyboardInterrupt:  # summarise the scenes finished so far
        interrupted = True
        objects, confusion = pd.DataFrame(seen["rows"]), seen["confusion"]
    elapsed = time.perf_counter() - start
    iou = class_iou(confusion, model.config.class_names)
    summary = summarise(objects, iou)
    scenes_seen = int(objects["scene"].nunique()) if not objects.empty else 0
    meta = {
        **settings, "scenes": seen["scenes"], "scenes_with_known_answers": scenes_seen, "seconds": round(elapsed, 1),
        "status": "interrupted" if interrupted else "finished", "interrupted": interrupted,
        "class_iou": {k: round(v, 4) for k, v in iou.items()},
        "rule": "right = the revealing modality raises the target, by more than the other (rollout: > 1/2)",
    }
    write(out, objects, summary, meta)
    if not summary.empty:
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table(summary).to_string(index=False))
    if interrupted:
        print(f"interrupted after {seen['scenes']} scenes: {len(objects)} object checks written to {out}/",
              file=sys.stderr)
        return 130
    print(f"{len(objects)} object checks in {elapsed:.0f} s; written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
