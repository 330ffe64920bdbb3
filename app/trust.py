""""Can these explanations be trusted?": the known-answer benchmark's bundled results, in words.

`python -m mango.bench explanations` checks, on unseen SynthRooms scenes, how often each method
credits the modality that is known to reveal an object; its output folder, copied to
``assets/explanations/``, is read here. The numbers are shown only beside the checkpoint they were
measured on (the benchmark records the weights' SHA-256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from mango.bench.explanations import GOAL_PCT, weights_sha256
from mango.known_answers import METHOD_LABELS, METHODS

from . import plots

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_DIR = REPO_ROOT / "assets" / "explanations"
LOW_IOU = 0.5  # below this test IoU, an explanation of the class is flagged: the model often misses it
GROUP_LABELS = {
    "camouflaged": "camouflaged objects (only depth)", "picture": "pictures (only colour)", "rug": "rugs (only colour)",
    "decal (picture + rug)": "decals: pictures and rugs",
}
SCORE_NAMES = {"logit": "logit", "log_prob": "log-probability"}  # the two targets, in words
GROUP_NAMES = {"camouflaged": "camouflaged objects", "picture": "pictures", "rug": "rugs", "decal (picture + rug)": "decals"}
KNOWN_ANSWER_CHOICES = {  # label -> (bundled example scene, class of the object to explain: its largest piece)
    "a camouflaged object (only depth shows it), scene 1": ("scene-011", "camouflaged"),
    "a picture (only colour shows it), scene 1": ("scene-011", "picture"),
    "a rug (only colour shows it), scene 3": ("scene-042", "rug"),
}


@dataclass
class Benchmark:
    """The bundled benchmark output (or why there is none)."""

    summary: pd.DataFrame | None
    figure: str | None
    run: dict[str, Any] = field(default_factory=dict)
    status: str = ""


def load_benchmark(folder: Path = BENCHMARK_DIR) -> Benchmark:
    summary_path, figure_path, run_path = folder / "summary.csv", folder / "explanations.png", folder / "run.json"
    if not summary_path.is_file():
        return Benchmark(None, None, {}, f"not bundled (no {_shown(summary_path)})")
    try:
        summary = pd.read_csv(summary_path)
        run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    except (OSError, ValueError, pd.errors.ParserError) as err:
        return Benchmark(None, None, {}, f"unreadable ({type(err).__name__}: {err})")
    return Benchmark(summary, str(figure_path) if figure_path.is_file() else None, run, f"read from {_shown(folder)}")


def checkpoint_weights(loaded: Any) -> str | None:
    """SHA-256 of the weights a loaded slot runs (None for an untrained model or a Hub checkpoint).
    A bundled location is shown relative to the repository: resolve it there."""
    if not loaded.trained:
        return None
    path = Path(loaded.location)
    return weights_sha256(path if path.is_absolute() or path.exists() else REPO_ROOT / path)


def class_iou(metadata: dict[str, Any], class_names: Sequence[str]) -> dict[str, float]:
    """Per-class test IoU from a checkpoint's metadata (empty when it has none)."""
    values = (metadata.get("test_metrics") or {}).get("per_class_iou")
    if not isinstance(values, list) or len(values) != len(class_names):
        return {}
    return {name: float(v) for name, v in zip(class_names, values) if v is not None}


def shapley_rate(benchmark: Benchmark, group: str, score: str = "logit") -> float | None:
    """The % of a group's objects for which the Shapley values credit the revealing modality."""
    frame = benchmark.summary
    if frame is None:
        return None
    hit = frame[(frame["score"] == score) & (frame["group"] == group) & (frame["method"] == "shapley")]
    return float(hit["right_pct"].iloc[0]) if len(hit) else None


def applies(benchmark: Benchmark, weights: str | None) -> bool:
    """Whether the bundled results may be shown beside this checkpoint: they exist, and they were not
    measured on other weights (unknowable for a Hub checkpoint or an old run: shown with a note)."""
    measured_on = benchmark.run.get("checkpoint_sha256")
    return benchmark.summary is not None and not (measured_on and weights and measured_on != weights)


def section_markdown(benchmark: Benchmark, weights: str | None, test_iou: dict[str, float]) -> str:
    """The section's text: the check, the bundled table (if it belongs to this checkpoint), caveats."""
    lines = [
        "SynthRooms has **known answers**: camouflaged objects are absent from the colour image (only depth shows "
        "them); pictures and rugs are flat (only colour shows them). An explanation is *right* on such an object "
        "when the revealing modality **raises** the object's class score over its true region, by more than the "
        "other modality does. A modality that lowers the score is not revealing the object, however large.",
    ]
    measured_on = benchmark.run.get("checkpoint_sha256")
    if benchmark.summary is None:
        lines.append(f"\n*The benchmark has not been bundled ({benchmark.status}): run `python -m mango.bench explanations "
                     "assets/checkpoints/segmentation --root DATA/synthrooms` and copy its output folder to "
                     "`assets/explanations/`.*")
    elif not applies(benchmark, weights):
        lines.append("\n⚠️ *The bundled benchmark was measured on another checkpoint than the one this tab runs, so its "
                     "numbers are not shown. Re-run `python -m mango.bench explanations` on this checkpoint.*")
    else:
        lines.append("\n" + _table(benchmark.summary, benchmark.run))
        lines.append("\n" + _below_goal(benchmark.summary, drawn=benchmark.figure is not None))
        if not (measured_on and weights):
            lines.append(f"\n<small>Measured on `{benchmark.run.get('checkpoint', '?')}`; whether that is the checkpoint "
                         "this tab runs could not be checked.</small>")
    low = [f"{name} {iou:.2f}" for name, iou in test_iou.items() if name in ("camouflaged", "picture", "rug") and iou < LOW_IOU]
    if low:
        lines.append(f"\n⚠️ The model's test IoU is low for {', '.join(low)}: where it does not see an object, "
                     "no explanation of it can be right.")
    lines.append("\nThe **attention rollout** is not an attribution: it says whose tokens were mixed into the object's "
                 "tokens, not what raised the score. It reads the object's positions in both modalities' halves, and "
                 "the rollout carries about as much weight from depth into RGB tokens as from RGB into depth tokens, so it "
                 "sits near 50 % (identity ICA layers would give exactly 50 %).")
    return "\n".join(lines)


def _table(summary: pd.DataFrame, run: dict[str, Any]) -> str:
    """One column per known answer and one row per method and target: the rates side by side without
    scrolling (a column per method ran to 1,800 px, and hid every rate to the right of a desktop column)."""
    groups = [g for g in GROUP_LABELS if (summary["group"] == g).any()]
    attributions = [m for m in METHODS if m != "rollout"]

    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    def first(group: str, method: str | None = None, score: str | None = None) -> pd.Series | None:
        part = summary[(summary["group"] == group) & ((summary["method"] == method) if method else True)
                       & ((summary["score"] == score) if score else True)]
        return part.iloc[0] if len(part) else None

    rows = [row("", [GROUP_LABELS[g] for g in groups]), "|" + " --- |" * (1 + len(groups)),
            row("objects · class IoU", [f"{int(first(g)['objects'])} · {first(g)['class_iou']:.2f}" for g in groups])]
    for score, name in SCORE_NAMES.items():
        if not (summary["score"] == score).any():
            continue
        rows.append(row(f"***class {name}***", [""] * len(groups)))
        for method in attributions:
            hits = [first(g, method, score) for g in groups]
            rows.append(row(METHOD_LABELS[method], [_rate(h["right_pct"]) if h is not None else "–" for h in hits]))
    rollouts = [first(g, "rollout") for g in groups]  # attention only: the same for either target
    if "mean_revealing" in summary and any(r is not None for r in rollouts):
        rows.append(row("rollout: revealing modality's share",
                        [f"{100 * r['mean_revealing']:.1f}%" if r is not None else "–" for r in rollouts]))
    scenes = run.get("scenes", "?")
    return (f"**How often each method credits the revealing modality** ({scenes} unseen test scenes, "
            "the class IoU too, so it can differ from the model card's, measured on the whole test split; the rollout "
            "row is the average share of the object's tokens' absolute rollout weight on the revealing modality, 50% = no "
            "preference):\n\n" + "\n".join(rows))


def _rate(pct: float) -> str:
    """A method's rate, with the decimals it takes to show which side of the goal it is on (89.7 %, not 90 %)."""
    return plots.percent_beside(float(pct) / 100.0, GOAL_PCT / 100.0)


def _below_goal(summary: pd.DataFrame, drawn: bool) -> str:
    """Where an attribution method misses the goal the figure draws as its dashed line, named from the results."""
    misses = []
    for score in SCORE_NAMES:
        for group, name in GROUP_NAMES.items():
            part = summary[(summary["score"] == score) & (summary["group"] == group) & (summary["method"] != "rollout")
                           & (summary["right_pct"] < GOAL_PCT)]
            if len(part):
                methods = ", ".join(f"{METHOD_LABELS[m]} {_rate(pct)}" for m, pct in zip(part["method"], part["right_pct"]))
                misses.append(f"{name} on the class {SCORE_NAMES[score]} ({methods})")
    goal = f"The benchmark's goal is **{GOAL_PCT:.0f} % right**" + (" (the dashed line in the figure below)" if drawn else "")
    if not misses:
        return goal + ": every attribution method meets it on every group."
    return goal + ". Below it: " + "; ".join(misses) + ". There, read an explanation with care."


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
