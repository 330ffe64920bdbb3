"""The paper's ablations in miniature: the same budget, several seeds, every variant.

    python -m train.ablations --task segmentation --root SYNTHROOMS/nyudv2 --out runs/ablations
    python -m train.ablations --task genre --root ../shared/data/movies --out runs/ablations

For each seed, stage 1 (the autoencoders) is trained once and shared by every variant, so
variants differ only in how they fuse. Writes ``runs.csv`` (one row per run), ``results.csv``
(mean ± std over seeds: task, variant, metric, mean, std, n_seeds) and ``ablations.png`` to
``--report`` (default ``assets/ablations``), merging with rows already there for other tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mango import metrics

from .__main__ import _override
from .trainer import TrainConfig, Trainer

# name -> MangoConfig overrides; the first variant trains the shared stage-1 encoders
VARIANTS: dict[str, dict] = {
    "MANGO (MMCA+IMCA+LICA)": {},
    "MANGO MMCA+IMCA": {"partitions": ("mmca", "imca")},
    "MANGO MMCA only": {"partitions": ("mmca",)},
    "Coupling-layer flow": {"flow": "coupling"},
    "Concatenation": {"fusion": "concat"},
    "Late fusion": {"fusion": "late"},
    "Modality A only": {"fusion": "single_a"},
    "Modality B only": {"fusion": "single_b"},
}
TASK_SETUP = {
    "segmentation": dict(dataset="nyudv2", metrics=("miou", "pixel_acc", "mean_acc"), modalities=("RGB", "depth")),
    "genre": dict(dataset="mmimdb", metrics=("micro_f1", "macro_f1"), modalities=("poster", "plot")),
}


def run_ablations(task: str, root: str, out: Path, seeds: list[int], variants: list[str], steps: int,
                  ae_steps: int, batch_size: int, image_size: int | None, eval_every: int,
                  num_workers: int, overrides: dict | None = None, report_only: bool = False) -> pd.DataFrame:
    setup = TASK_SETUP[task]
    rows = []
    for seed in seeds:
        encoders = None
        for variant in variants:
            run_dir = out / task / f"seed{seed}" / _slug(variant)
            cfg = TrainConfig(
                dataset=setup["dataset"], root=root, out=str(run_dir), preset="demo", image_size=image_size,
                batch_size=batch_size, steps=steps, ae_steps=0 if encoders else ae_steps, seed=seed,
                eval_every=eval_every, num_workers=num_workers, encoders_from=encoders,
                overrides={**(overrides or {}), **VARIANTS[variant]},
            )
            done = run_dir / "test_metrics.json"
            if not done.is_file() and report_only:
                continue
            test = json.loads(done.read_text()) if done.is_file() else Trainer(cfg).run()
            encoders = encoders or str(run_dir / "final")
            label = _label(variant, setup["modalities"])
            for metric in setup["metrics"]:
                rows.append(dict(task=task, variant=label, seed=seed, metric=metric, value=test[metric]))
            print(f"[{task} seed {seed}] {label}: " + ", ".join(f"{m}={test[m]:.4f}" for m in setup["metrics"]))
    prior = prior_baseline(task, root, image_size or 128)
    rows += [dict(task=task, variant=PRIOR_VARIANT, seed=0, metric=m, value=prior[m]) for m in setup["metrics"]]
    return pd.DataFrame(rows)


PRIOR_VARIANT = "No input (training prior)"


def prior_baseline(task: str, root: str, image_size: int) -> dict[str, float]:
    """What the training labels alone give, without looking at any input: the genres more frequent
    than 1/2 in train (a multi-label majority vote), or the most frequent class on every pixel."""
    from .data import build_splits

    splits = build_splits(TASK_SETUP[task]["dataset"], root, image_size)
    train, test = splits.train, splits.test
    if task == "genre":
        prior = np.stack([train[i]["target"].numpy() for i in range(len(train))]).mean(0) > 0.5
        targets = np.stack([test[i]["target"].numpy() for i in range(len(test))])
        return {k: float(v) for k, v in metrics.multilabel_f1(np.tile(prior, (len(targets), 1)), targets).items()
                if np.ndim(v) == 0}
    n = len(splits.class_names)
    counts = sum(np.bincount(t[t != 255], minlength=n) for t in (train[i]["target"].numpy() for i in range(len(train))))
    majority = int(np.argmax(counts))
    conf = sum(metrics.confusion_matrix(np.full_like(t, majority), t, n) for t in (test[i]["target"].numpy() for i in range(len(test))))
    return {k: float(v) for k, v in metrics.segmentation_scores(conf).items() if np.ndim(v) == 0}


def _label(variant: str, modalities: tuple[str, str]) -> str:
    """"Modality A only" -> "RGB only" / "poster only"."""
    return variant.replace("Modality A", modalities[0]).replace("Modality B", modalities[1])


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds, in the variants' order."""
    order = {v: i for i, v in enumerate(dict.fromkeys(runs["variant"]))}
    order[PRIOR_VARIANT] = len(order)  # the reference row goes last
    table = (runs.groupby(["task", "variant", "metric"], sort=False)["value"]
             .agg(mean="mean", std="std", n_seeds="count").reset_index())
    table["std"] = table["std"].fillna(0.0)
    return table.sort_values(["task", "metric", "variant"], key=lambda s: s.map(order) if s.name == "variant" else s)


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = {"segmentation": "miou", "genre": "micro_f1"}
    tasks = [t for t in headline if t in set(table["task"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = table[(table["task"] == task) & (table["metric"] == headline[task])]
        colours = ["#d9822b" if v.startswith("MANGO") else "#bbbbbb" if v == PRIOR_VARIANT else "#5b7fa6"
                   for v in sub["variant"]]
        ax.barh(sub["variant"], sub["mean"], xerr=sub["std"], color=colours, capsize=3)
        ax.invert_yaxis()
        n = int(sub["n_seeds"].max()) if len(sub) else 0
        ax.set_xlabel(f"test {headline[task]} (mean ± std over {n} seeds)")
        ax.set_title({"segmentation": "SynthRooms RGB-D segmentation", "genre": "MM-IMDb-style genres"}[task])
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(TASK_SETUP), required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--out", type=Path, default=Path("runs/ablations"))
    p.add_argument("--report", type=Path, default=Path("assets/ablations"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--ae-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--report-only", action="store_true", help="summarise finished runs, train nothing")
    p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                   help="MangoConfig override shared by every variant, e.g. --set patch_size=8")
    a = p.parse_args(argv)

    runs = run_ablations(a.task, a.root, a.out, a.seeds, a.variants, a.steps, a.ae_steps, a.batch_size,
                         a.image_size, a.eval_every, a.num_workers, dict(a.overrides), a.report_only)
    a.report.mkdir(parents=True, exist_ok=True)
    runs_path = a.report / "runs.csv"
    if runs_path.is_file():  # keep other tasks' rows
        old = pd.read_csv(runs_path)
        runs = pd.concat([old[old["task"] != a.task], runs], ignore_index=True)
    runs.to_csv(runs_path, index=False)
    table = summarise(runs)
    table.to_csv(a.report / "results.csv", index=False, float_format="%.4f")
    plot(table, a.report / "ablations.png")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
