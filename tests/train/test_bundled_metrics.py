"""The bundled checkpoints still score what their cards and the README say, through the README's own
command (``python -m train.evaluate``) on today's code.

Each checkpoint stores the test metrics its training run measured. A later change to how data is
read, resized or tokenised would move the real scores while the stored ones, and every number
quoted from them, stayed put; only scoring the shipped weights again catches that. The SynthRooms
test scenes are rendered from the checkpoint's own record of its data (generator seed, scene count,
size); the genre films are the real ones in ``../shared/data`` and skip without them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from mango.data.synthrooms import write_dataset
from train.evaluate import main as evaluate_main

CHECKPOINTS = Path(__file__).resolve().parents[2] / "assets" / "checkpoints"
# Scored again here, the stored scores moved by at most 1e-5 (a few pixels) and bits per dim by
# 1e-4; one flipped genre decision moves micro F1 by 1.4e-3. Reading edge_texture 3 % too bright
# moved MAE by 2e-4 and bits per dim by 4e-3, so these bounds catch it.
TOLERANCE = {"mae": 2e-5, "mse": 2e-5, "bits_per_dim": 1e-3}
DEFAULT_TOLERANCE = 2e-3  # decisions: F1, IoU, accuracy


def _metadata(name: str) -> dict:
    folder = CHECKPOINTS / name
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"no bundled checkpoint at {folder}")
    return json.loads((folder / "config.json").read_text())["metadata"]


@pytest.fixture(scope="module")
def synthrooms_test_split(tmp_path_factory) -> Path:
    """The SynthRooms test scenes every bundled SynthRooms checkpoint was scored on, and only them."""
    data = _metadata("segmentation")["data"]
    source = data["source"]
    for name in ("translation-shade-texture", "translation-depth-normal"):  # one rendering serves all three
        other = _metadata(name)["data"]
        assert (other["source"], other["test_samples"]) == (source, data["test_samples"]), name
    out = tmp_path_factory.mktemp("synthrooms-test")
    meta = write_dataset(out, source["n"], source["size"], seed=source["seed"],
                         test_fraction=data["test_samples"] / source["n"], workers=2, progress=False, only_test=True)
    assert meta["scenes"] == data["test_samples"]
    return out


def _scores(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert evaluate_main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _assert_same(now: dict, stored: dict) -> None:
    assert now["samples"] == stored["samples"]
    compared = 0
    for key, value in stored.items():
        if key == "samples" or key not in now:  # the flow's readout (off-diagonal share, round trip) is not re-scored
            continue
        tolerance = next((t for prefix, t in TOLERANCE.items() if key.startswith(prefix)), DEFAULT_TOLERANCE)
        values, current = (value, now[key]) if isinstance(value, list) else ([value], [now[key]])
        assert len(current) == len(values), key
        for got, want in zip(current, values):
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert got is None or math.isnan(got), key
            else:
                assert got == pytest.approx(want, abs=tolerance), key
        compared += 1
    assert compared >= 4  # the headline scores and the likelihood, at least


@pytest.mark.slow
@pytest.mark.parametrize("name, argv", [
    ("segmentation", ["--dataset", "nyudv2", "--root", "{root}/nyudv2"]),
    ("translation-shade-texture", ["--dataset", "taskonomy", "--root", "{root}/taskonomy"]),
    ("translation-depth-normal", ["--dataset", "taskonomy", "--root", "{root}/taskonomy"]),
])
def test_bundled_synthrooms_checkpoints_score_what_they_stored(synthrooms_test_split, capsys, name, argv):
    stored = _metadata(name)["test_metrics"]
    argv = [a.format(root=synthrooms_test_split) for a in argv]
    _assert_same(_scores(capsys, [str(CHECKPOINTS / name), *argv]), stored)


@pytest.mark.slow
def test_bundled_genre_checkpoint_scores_what_it_stored(movies_root, capsys):
    metadata = _metadata("genre")
    assert metadata["data"]["root"] == movies_root.name
    now = _scores(capsys, [str(CHECKPOINTS / "genre"), "--dataset", "mmimdb", "--root", str(movies_root)])
    _assert_same(now, metadata["test_metrics"])


@pytest.mark.parametrize("name, headline", [
    ("segmentation", "**mIoU {miou:.3g}**"),
    ("translation-shade-texture", "**MAE {mae:.3g}**"),
    ("translation-depth-normal", "**MAE {mae:.3g}**"),
    ("genre", "**micro F1 {micro_f1:.3g}, macro F1 {macro_f1:.3g}**"),
])
def test_the_readme_s_model_card_quotes_the_stored_scores(name, headline):
    row = next(line for line in (CHECKPOINTS.parents[1] / "README.md").read_text().splitlines()
               if line.startswith(f"| `{name}` |"))
    stored = _metadata(name)["test_metrics"]
    assert headline.format(**stored) in row
    flow = f"{stored['off_diagonal_share']:.3g} · {stored['roundtrip_error']:.2g}".replace("e-0", "e-")
    assert f"| {flow} |" in row  # the "ICA share · round trip" column
    size = (CHECKPOINTS / name / "model.safetensors").stat().st_size / 1e6
    assert re.search(rf"[|,] {size:.1f} MB \|", row), f"the size column, {size:.1f} MB"


def test_the_publishing_notes_give_the_bundled_weights_sizes():
    sizes = [f.stat().st_size / 1e6 for f in CHECKPOINTS.glob("*/model.safetensors")]
    if not sizes:
        pytest.skip("no bundled checkpoints")
    span = f"{min(sizes):.0f}–{max(sizes):.0f} MB"
    assert f"the bundled checkpoints are {span} files" in (CHECKPOINTS.parents[1] / "README.md").read_text()
    publish = (CHECKPOINTS.parents[1] / "app" / "publish.py").read_text()
    assert f"the bundled checkpoints ({span.replace('–', '-')} each)" in publish
