"""The Ablations tab's summary sentences against the bundled results they summarise: rerunning the
ablations must not leave the tab saying what the new table contradicts."""

from __future__ import annotations

import pandas as pd
import pytest

from app import texts
from app.ablations import ABLATIONS_DIR

SINGLE = {"segmentation": ("RGB only", "depth only"), "genre": ("poster only", "plot only")}
NOT_FUSED = ("No input (training prior)",)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    path = ABLATIONS_DIR / "results.csv"
    if not path.exists():
        pytest.skip("no bundled ablation results")
    return pd.read_csv(path).set_index(["task", "variant", "metric"])["mean"]


def test_segmentation_sentences(table):
    miou = table.xs(("segmentation", "miou"), level=("task", "metric"))
    fused = miou.drop(list(SINGLE["segmentation"]) + list(NOT_FUSED))
    assert "every\nfused variant beats each modality alone" in texts.ABLATIONS
    assert fused.min() > miou[list(SINGLE["segmentation"])].max()
    gap_coupling = miou["Coupling-layer flow"] - miou["MANGO (default ICA)"]
    gap_late = miou["Late fusion"] - miou["MANGO (default ICA)"]
    assert "half a point of mIoU *below* the\ncoupling-only flow" in texts.ABLATIONS and 0.003 <= gap_coupling <= 0.007
    assert "about one point below late fusion" in texts.ABLATIONS and 0.007 <= gap_late <= 0.013
    forced = miou[["ICA: strict causal (A_ii = 1 - alpha)", "ICA: identity_plus (authors')"]]
    assert "forcing the ICA layers to mix more costs" in texts.ABLATIONS and (forced < miou["MANGO (default ICA)"]).all()


def test_genre_sentences(table):
    genre = table.xs("genre", level="task")
    for metric in ("micro_f1", "macro_f1"):
        scores = genre.xs(metric, level="metric").drop(list(NOT_FUSED))
        assert scores.idxmax() == "MANGO (default ICA)", metric
    macro = genre.xs("macro_f1", level="metric")
    assert "late fusion's macro F1 is level with the\nplot alone" in texts.ABLATIONS
    assert abs(macro["Late fusion"] - macro["plot only"]) < 0.005
