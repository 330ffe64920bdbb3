"""The README's "Explanations checked against known answers" tables against the bundled run they quote
(`assets/explanations/`): a rerun of `python -m mango.bench explanations` that writes a new table must
not leave the README saying what it contradicts. (The bracketed figures are the checkpoint before's,
which no bundled file holds.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "assets" / "explanations"
GROUPS = {"camouflaged": "camouflaged", "decals: picture + rug": "decal (picture + rug)", "picture": "picture",
          "rug": "rug"}
METHODS = {"Shapley values": "shapley", "blurred baseline": "blurred_shapley", "feature ablation": "ablation",
           "Integrated Gradients": "integrated_gradients",
           "attention rollout": "rollout"}


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    if not (BUNDLED / "summary.csv").exists():
        pytest.skip("no bundled explanation run")
    return pd.read_csv(BUNDLED / "summary.csv").set_index(["score", "group", "method"])


@pytest.fixture(scope="module")
def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Explanations checked against known answers")
    return text[start:text.index("\n## ", start + 1)]


def percent(cell: str) -> float:
    """The current figure of a cell such as "93.3 % (83.1)": the bracket is the checkpoint before's."""
    match = re.match(r"([\d.]+) %", cell)
    assert match, cell
    return float(match.group(1))


def test_the_tables_quote_the_bundled_run(summary, readme_table):
    logit = readme_table("## Explanations checked against known answers")
    log_prob = readme_table("With the class's mean **log-probability**")
    assert len(logit) == 4 and len(log_prob) == 3
    for score, rows in (("logit", logit), ("log_prob", log_prob)):
        for row in rows:
            name, count = re.fullmatch(r"(.+) \((\d+)\)", row["objects"]).groups()
            group = GROUPS[name]
            assert int(count) == summary.loc[(score, group, "shapley"), "objects"], row
            if "class IoU" in row:
                assert row["class IoU"] == f"{summary.loc[(score, group, 'shapley'), 'class_iou']:.2f}", row
            methods = [header for header in row if header in METHODS]
            assert len(methods) == len(row) - 1 - ("class IoU" in row), row
            for header in methods:
                assert percent(row[header]) == pytest.approx(
                    summary.loc[(score, group, METHODS[header]), "right_pct"], abs=0.05), (score, group, header)


def test_the_sentences_quote_the_bundled_run(summary, section):
    run = json.loads((BUNDLED / "run.json").read_text())
    said = " ".join(section.split())
    shapley = summary.xs("shapley", level="method")["right_pct"]
    objects = summary.loc[("logit", "camouflaged", "shapley"), "objects"] + \
        summary.loc[("logit", "decal (picture + rug)", "shapley"), "objects"]
    assert f"the first {run['scenes']} test scenes ({objects} objects" in said and f"`--limit {run['limit']}`" in said

    def pct(score: str, group: str) -> str:
        value = shapley[(score, group)]
        return f"{value:.0f} %" if value == 100 else f"{value:.1f} %"

    assert (f"logit {pct('logit', 'camouflaged')} and {pct('logit', 'decal (picture + rug)')}, log-probability "
            f"{pct('log_prob', 'camouflaged')} and {pct('log_prob', 'decal (picture + rug)')}") in said
    assert f"Rugs are the hard case for the logit ({pct('logit', 'rug')})" in said
    rug = summary.loc[("logit", "rug", "shapley")]
    assert f"mean Shapley value {rug['mean_other']:.1f} against colour's {rug['mean_revealing']:.1f}" in said
    assert f"credits colour for {pct('log_prob', 'rug')} of rugs" in said
    assert f"{pct('logit', 'rug').replace(' %', '')} % for this one" in said
