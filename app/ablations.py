"""The measured ablation table: assets/ablations/results.csv (task, variant, metric, mean, std, n_seeds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ABLATIONS_DIR = Path(__file__).resolve().parents[1] / "assets" / "ablations"
COLUMNS = ("task", "variant", "metric", "mean", "std", "n_seeds")


def load_table(folder: Path = ABLATIONS_DIR) -> tuple[pd.DataFrame | None, str | None, str]:
    """(table for display or None, path of the figure or None, a status line)."""
    csv = folder / "results.csv"
    figure = folder / "ablations.png"
    figure_path = str(figure) if figure.is_file() else None
    if not csv.is_file():
        return None, figure_path, "not run yet"
    try:
        raw = pd.read_csv(csv)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        return None, figure_path, f"`{csv.name}` could not be read: {err}"
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        return None, figure_path, f"`{csv.name}` lacks the column(s) {missing}"
    table = raw.copy()
    table["mean ± std"] = [
        f"{m:.3f} ± {s:.3f}" if pd.notna(s) else f"{m:.3f}" for m, s in zip(table["mean"], table["std"])
    ]
    columns = ["task", "metric", "variant", "mean ± std", "n_seeds"]
    if "off_diagonal_share" in table:  # how much the variant's ICA layers mix; blank without them
        table["ICA share"] = [f"{v:.3f}" if pd.notna(v) else "" for v in table["off_diagonal_share"]]
        columns.append("ICA share")
    # each task's headline metric first (mIoU, micro F1), then the others
    headline = {"segmentation": "miou", "genre": "micro_f1"}
    table["_first"] = [m != headline.get(t) for t, m in zip(table["task"], table["metric"])]
    table = table.sort_values(["task", "_first", "metric"], kind="stable")[columns]
    return table.reset_index(drop=True), figure_path, f"{len(table)} rows from `assets/ablations/{csv.name}`"
