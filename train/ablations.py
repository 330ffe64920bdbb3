"""The paper's ablations in miniature: the same budget, several seeds, every variant.

    python -m train.ablations --task segmentation --root SYNTHROOMS/nyudv2 --out runs/ablations
    python -m train.ablations --task genre --root ../shared/data/movies --out runs/ablations

For each seed, stage 1 (the autoencoders) is trained once and shared by every variant, and so are
the frozen backbones' outputs (computed once, `train/features.py`), so variants differ only in how
they fuse and the whole ablation fits on two CPU cores. Variants: every ICA form (mango.flow.ica),
the partition subsets, the coupling-only flow, concatenation, late fusion, each modality alone,
deeper flows (L = 4) for MANGO's default and the coupling flow, and the prior (no training).
A finished run (``test_metrics.json``) is reused, and an unfinished one resumed, only when its
``train_config.json`` shows the same settings; one made with others (``--steps``, ``--set``, ...)
is refused, named: the folder's name says only the task, seed and variant.

Writes to ``--report`` (default ``OUT/report``; the bundled tables the app shows are updated only when
it names ``assets/ablations``), merging with rows already there for other tasks: ``runs.csv`` (one
row per run and metric, with the run's off-diagonal share),
``results.csv`` (mean ± std over seeds: task, variant, metric, mean, std, n_seeds),
``curves.csv`` (validation metric per step, per run), ``ablations.png`` (the headline metric)
and ``curves.png`` (the validation curves, mean over seeds, to show they flattened).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mango import metrics
from mango.models.card import flow_readout

from .__main__ import _override
from .cli import reports_user_errors
from .trainer import RESUME_MAY_CHANGE, TrainConfig, Trainer, config_differences, describe_differences

# name -> MangoConfig overrides; the first variant trains the shared stage-1 encoders
VARIANTS: dict[str, dict] = {
    "MANGO (default ICA)": {},
    "ICA: gate free in (0, 0.5)": {"gate_range": (0.0, 0.5), "gate_init": 0.1},
    "ICA: no value affine": {"value_affine": False},
    "ICA: strict causal (A_ii = 1 - alpha)": {"ica_exclude_self": True},
    "ICA: signed gate": {"gate_range": (-0.5, 0.5), "gate_init": 0.0},
    "ICA: identity_plus (authors')": {"ica_form": "identity_plus", "value_affine": False},
    "ICA: diag_bias (first release)": {"ica_form": "diag_bias", "value_affine": False},
    "MANGO MMCA+IMCA": {"partitions": ("mmca", "imca")},
    "MANGO MMCA only": {"partitions": ("mmca",)},
    "Coupling-layer flow": {"flow": "coupling"},
    "Concatenation": {"fusion": "concat"},
    "Late fusion": {"fusion": "late"},
    "Modality A only": {"fusion": "single_a"},
    "Modality B only": {"fusion": "single_b"},
    "MANGO, L = 4": {"num_blocks": 4},
    "Coupling-layer flow, L = 4": {"flow": "coupling", "num_blocks": 4},
}
HEADLINE = {"segmentation": "miou", "genre": "micro_f1"}
TASK_SETUP = {
    "segmentation": dict(dataset="nyudv2", metrics=("miou", "pixel_acc", "mean_acc"), modalities=("RGB", "depth")),
    "genre": dict(dataset="mmimdb", metrics=("micro_f1", "macro_f1"), modalities=("poster", "plot")),
}
PRIOR_VARIANT = "No input (training prior)"


def run_ablations(task: str, root: str, out: Path, seeds: list[int], variants: list[str], steps: int,
                  ae_steps: int, batch_size: int, image_size: int | None, eval_every: int,
                  num_workers: int, overrides: dict | None = None, report_only: bool = False,
                  train_options: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run and metric, the validation curve of every run)."""
    setup = TASK_SETUP[task]
    rows, curves = [], []
    for seed in seeds:
        encoders, caches = None, {}
        for variant in variants:
            run_dir = out / task / f"seed{seed}" / _slug(variant)
            cfg = TrainConfig(
                dataset=setup["dataset"], root=root, out=str(run_dir), image_size=image_size,
                batch_size=batch_size, steps=steps, ae_steps=0 if encoders else ae_steps, seed=seed,
                eval_every=eval_every, num_workers=num_workers, encoders_from=encoders,
                overrides={**(overrides or {}), **VARIANTS[variant]}, **(train_options or {}),
            )
            done = run_dir / "test_metrics.json"
            if not done.is_file() and report_only:
                continue
            check_reusable(run_dir, cfg)
            test = json.loads(done.read_text()) if done.is_file() else Trainer(cfg, caches=caches).run()
            encoders = encoders or str(run_dir / "final")
            label = _label(variant, setup["modalities"])
            final = run_dir / "final" / "config.json"
            share = flow_readout(json.loads(final.read_text()).get("metadata", {}) if final.is_file() else
                                 {"test_metrics": test}).get("off_diagonal_share")
            for metric in setup["metrics"]:
                rows.append(dict(task=task, variant=label, seed=seed, metric=metric, value=test[metric],
                                 off_diagonal_share=share))
            curves.append(_curve(run_dir, task, label, seed))
            print(f"[{task} seed {seed}] {label}: " + ", ".join(f"{m}={test[m]:.4f}" for m in setup["metrics"])
                  + ("" if share is None else f", off-diagonal share {share:.3f}"), flush=True)
    prior = prior_baseline(task, root, image_size or 128, (train_options or {}).get("limit"))
    rows += [dict(task=task, variant=PRIOR_VARIANT, seed=0, metric=m, value=prior[m]) for m in setup["metrics"]]
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def check_reusable(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse a run folder trained (or being trained) with other settings than `cfg`: the folder's
    name says only the task, seed and variant, not --steps, --set, --balance-classes, ... Its
    train_config.json (beside test_metrics.json) says how it was made; nothing else may differ,
    not even the step count a resume would extend."""
    if not ((run_dir / "test_metrics.json").is_file() or (run_dir / "last").is_dir()):
        return  # nothing trained there yet
    saved = run_dir / "train_config.json"
    if not saved.is_file():
        raise ValueError(f"{run_dir} holds a run without its train_config.json, so its settings are unknown: "
                         "remove the folder to train it again, or give --out another folder")
    differences = config_differences(json.loads(saved.read_text()), cfg, RESUME_MAY_CHANGE)
    if differences:
        raise ValueError(f"{run_dir} was trained with other settings ({describe_differences(differences)}): give "
                         "--out another folder for these settings, or remove that folder to train it again")


def _curve(run_dir: Path, task: str, label: str, seed: int) -> pd.DataFrame:
    """The run's validation headline metric at every evaluation of stage 2."""
    log = pd.read_csv(run_dir / "metrics.csv")
    log = log[log["stage"] == "task"]
    column = f"val_{HEADLINE[task]}"
    return pd.DataFrame(dict(task=task, variant=label, seed=seed, step=log["step"], value=log[column]))


def prior_baseline(task: str, root: str, image_size: int, limit: int | None = None) -> dict[str, float]:
    """What the training labels alone give, without looking at any input: the genres more frequent
    than 1/2 in train (a multi-label majority vote), or the most frequent class on every pixel."""
    from .data import build_splits

    splits = build_splits(TASK_SETUP[task]["dataset"], root, image_size, limit=limit)
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
    """Mean and sample standard deviation over seeds, in the variants' order, with the mean
    off-diagonal share of the variant's ICA layers (empty without them)."""
    order = {v: i for i, v in enumerate(dict.fromkeys(runs["variant"]))}
    order[PRIOR_VARIANT] = len(order)  # the reference row goes last
    if "off_diagonal_share" not in runs:
        runs = runs.assign(off_diagonal_share=np.nan)
    table = (runs.groupby(["task", "variant", "metric"], sort=False)
             .agg(mean=("value", "mean"), std=("value", "std"), n_seeds=("value", "count"),
                  off_diagonal_share=("off_diagonal_share", "mean"))
             .reset_index())
    table["std"] = table["std"].fillna(0.0)
    return table.sort_values(["task", "metric", "variant"], key=lambda s: s.map(order) if s.name == "variant" else s)


KINDS = {"MANGO's ICA flow (default, or one part changed)": "#d9822b", "another fusion or flow": "#5b7fa6",
         "no input (the training prior, untrained)": "#bbbbbb"}


def _colour(variant: str) -> str:
    colours = list(KINDS.values())
    if variant == PRIOR_VARIANT:
        return colours[2]
    if variant.startswith(("MANGO", "ICA")):
        return colours[0]
    return colours[1]


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    tasks = [t for t in HEADLINE if t in set(table["task"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 0.42 * len(VARIANTS) + 2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = table[(table["task"] == task) & (table["metric"] == HEADLINE[task])]
        bars = ax.barh(sub["variant"], sub["mean"], xerr=sub["std"], color=[_colour(v) for v in sub["variant"]],
                       capsize=3)
        ax.bar_label(bars, labels=[f"{m:.3f}" for m in sub["mean"]], padding=12, fontsize=8)  # differences are small
        ax.set_xlim(0, 1.18 * float(sub["mean"].max()))
        ax.invert_yaxis()
        n = int(sub["n_seeds"].max()) if len(sub) else 0
        ax.set_xlabel(f"test {HEADLINE[task]} (mean ± std over {n} seeds)")
        ax.set_title({"segmentation": "SynthRooms RGB-D segmentation", "genre": "MM-IMDb-style genres"}[task])
        ax.grid(axis="x", alpha=0.3)
    fig.legend(handles=[Patch(color=colour, label=kind) for kind, colour in KINDS.items()], loc="lower center",
               ncol=len(KINDS), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(curves: pd.DataFrame, path: Path) -> None:
    """Validation headline metric against stage-2 step, mean over seeds, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in HEADLINE if t in set(curves["task"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 4.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = curves[curves["task"] == task].groupby(["variant", "step"], sort=False)["value"].mean().reset_index()
        palette = plt.get_cmap("tab20").colors  # 20 distinct colours: no two variants share one
        for k, (variant, line) in enumerate(sub.groupby("variant", sort=False)):
            style = "-" if variant.startswith(("MANGO", "ICA")) else "--"
            ax.plot(line["step"], line["value"], style, marker="o", markersize=3, label=variant,
                    color=palette[k % len(palette)])
        ax.set_xlabel("stage-2 step")
        ax.set_ylabel(f"validation {HEADLINE[task]} (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _merge(path: Path, new: pd.DataFrame, task: str) -> pd.DataFrame:
    """New rows for `task`, the file's rows for other tasks kept."""
    if path.is_file():
        old = pd.read_csv(path)
        new = pd.concat([old[old["task"] != task], new], ignore_index=True)
    return new


@reports_user_errors("python -m train.ablations")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(TASK_SETUP), required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--out", type=Path, default=Path("runs/ablations"))
    p.add_argument("--report", type=Path, default=None,
                   help="where the tables and figures go (default: OUT/report); assets/ablations updates the "
                        "bundled ones, which the app shows and a publish ships")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--ae-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--balance-classes", default="none", choices=["none", "sqrt", "inverse"],
                   help="class / positive weights from the training labels (train.trainer.class_weights)")
    p.add_argument("--thresholds", default="per_class", choices=["per_class", "global", "none"],
                   help="genre decision thresholds tuned on the validation split")
    p.add_argument("--report-only", action="store_true", help="summarise finished runs, train nothing")
    p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                   help="MangoConfig override shared by every variant, e.g. --set patch_size=8")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="read only the first N samples of each split: a quick run of every variant (its tables "
                        "mean nothing, so they stay in OUT/report)")
    a = p.parse_args(argv)
    if a.limit is not None and a.report is not None:
        p.error(f"--limit {a.limit} makes a smoke run, whose tables mean nothing: leave --report out (they go to "
                f"{a.out / 'report'})")
    report = a.report if a.report is not None else a.out / "report"

    runs, curves = run_ablations(a.task, a.root, a.out, a.seeds, a.variants, a.steps, a.ae_steps, a.batch_size,
                                 a.image_size, a.eval_every, a.num_workers, dict(a.overrides), a.report_only,
                                 train_options=dict(balance_classes=a.balance_classes, thresholds=a.thresholds,
                                                    limit=a.limit))
    report.mkdir(parents=True, exist_ok=True)
    runs = _merge(report / "runs.csv", runs, a.task)
    runs.to_csv(report / "runs.csv", index=False)
    curves = _merge(report / "curves.csv", curves, a.task)
    curves.to_csv(report / "curves.csv", index=False)
    table = summarise(runs)
    table.to_csv(report / "results.csv", index=False, float_format="%.4f")
    plot(table, report / "ablations.png")
    if len(curves):
        plot_curves(curves, report / "curves.png")
    print(table.to_string(index=False))
    print(f"Tables and figures written to {report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
