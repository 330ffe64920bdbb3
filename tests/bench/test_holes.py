"""`python -m mango.bench holes`: holes of the asked share and pattern, read as 0 or filled, and one
table row per pattern, share and reading; bad input is a usage error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mango.bench import holes as bench
from mango.data import SYNTHROOMS_CLASSES
from mango.models import MangoConfig, MangoModel

TINY = dict(image_size=32, patch_size=8, dim=16, encoder_width=16, encoder_depth=1, encoder_heads=2, decoder_width=16,
            decoder_heads=2, decoder_depth=1, head_width=16, num_blocks=1)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ramp(size: int = 64) -> np.ndarray:
    """A room-like depth: a far wall (0.6) with a near box (0.2) in front of it."""
    depth = np.full((size, size), 0.6, np.float32)
    depth[size // 4 : size // 2, size // 4 : size // 2] = 0.2
    return depth


@pytest.mark.parametrize("kind", bench.KINDS)
def test_holes_cover_about_the_share_asked(kind):
    depth = ramp() + np.linspace(0, 0.1, 64, dtype=np.float32)[None]
    mask = bench.hole_mask(depth, 0.15, kind, np.random.default_rng(0))
    assert mask.shape == depth.shape and mask.dtype == bool
    assert 0.05 < mask.mean() < 0.25
    if kind == "edges":  # camera shadows sit on the box's outline, not inside the wall
        assert mask[16, 16] and not mask[60, 60]


def test_zero_and_filled_readings():
    depth = ramp()
    mask = np.zeros_like(depth, dtype=bool)
    mask[30:34, 10:14] = True  # a hole in the wall, left of the box (columns 16-31)
    readings = bench.holed_depths(depth, mask)
    assert (readings["zero"][mask] == 0).all() and (readings["zero"][~mask] == depth[~mask]).all()
    np.testing.assert_array_equal(readings["filled"], depth)  # a hole inside one surface is filled with it
    assert (depth[mask] != 0).all()  # the input is left as it was


class FakeScenes:
    """Stands in for the NYUDv2-layout loader: three 32 px scenes with a box in front of a wall."""

    def __init__(self, root, split="test", image_size=32, train=False, depth_max=10.0, class_names=SYNTHROOMS_CLASSES):
        self.class_names = tuple(class_names)
        g = torch.Generator().manual_seed(0)
        self.items = [{"id": f"scene{i}", "a": torch.rand(3, 32, 32, generator=g),
                       "b": torch.from_numpy(ramp(32))[None] + 0.01 * i,
                       "target": torch.randint(0, len(self.class_names), (32, 32), generator=g)} for i in range(3)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoints") / "segmentation"
    torch.manual_seed(0)
    MangoModel(MangoConfig.preset("tiny", "segmentation", class_names=SYNTHROOMS_CLASSES, **TINY),
               load_pretrained=False).save_pretrained(path)
    return path


def test_one_row_per_pattern_share_and_reading(checkpoint, tmp_path, monkeypatch, capsys):
    import mango.data

    monkeypatch.setattr(mango.data, "NYUDv2", FakeScenes)
    out = tmp_path / "holes.csv"
    assert bench.main([str(checkpoint), "--root", str(tmp_path), "--limit", "2", "--shares", "0.1", "0.3",
                       "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 1 + 2 * 2 * 2 and (table["scenes"] == 2).all()
    assert set(table["reading"]) == {"complete", "zero", "filled"}
    complete = table[table["reading"] == "complete"].iloc[0]
    assert complete["holes"] == 0
    blobs = table[(table["pattern"] == "blobs") & (table["reading"] == "zero")].set_index("share")["holes"]
    assert blobs[0.1] == pytest.approx(0.1, abs=0.02) and blobs[0.3] == pytest.approx(0.3, abs=0.02)
    assert table[["miou", "pixel_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    # the complete reading is the model's own score on the unchanged scenes
    from mango import metrics

    model = MangoModel.from_pretrained(checkpoint).eval()
    conf = 0
    with torch.no_grad():
        for item in FakeScenes(None).items[:2]:
            pred = model(item["a"][None], item["b"][None]).output.argmax(1)[0].numpy()
            conf = conf + metrics.confusion_matrix(pred, item["target"].numpy(), len(SYNTHROOMS_CLASSES))
    assert complete["miou"] == pytest.approx(float(metrics.segmentation_scores(conf)["miou"]))
    assert "written to" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (["--limit", "0"], "--limit must be at least 1"),
    (["--shares", "0.2", "1.0"], "strictly between 0 and 1"),
    (["--threads", "0"], "--threads must be at least 1"),  # 0 was ignored without a word
])
def test_bad_numbers_are_usage_errors(checkpoint, tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(checkpoint), "--root", str(tmp_path), *options])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_scenes_of_other_classes_are_refused(checkpoint, tmp_path, monkeypatch, capsys):
    import mango.data

    monkeypatch.setattr(mango.data, "NYUDv2", lambda *a, **k: FakeScenes(*a, **k, class_names=[f"c{i}" for i in range(40)]))
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(checkpoint), "--root", str(tmp_path)])
    assert exit_info.value.code == 2 and "are not the checkpoint's" in capsys.readouterr().err


def test_reruns_make_the_same_holes_and_each_scene_its_own(checkpoint, monkeypatch):
    """The holes are seeded by the scene's index: a rerun scores the same holes, so two runs (or two
    checkpoints) are compared on equal terms."""
    made = []
    real = bench.hole_mask
    monkeypatch.setattr(bench, "hole_mask", lambda *args: made.append(real(*args)) or made[-1])
    model = MangoModel.from_pretrained(checkpoint).eval()
    first = bench.score(model, FakeScenes(None), 2, [0.2], ["blobs"])
    second = bench.score(model, FakeScenes(None), 2, [0.2], ["blobs"])
    assert len(made) == 4
    np.testing.assert_array_equal(made[0], made[2])
    np.testing.assert_array_equal(made[1], made[3])
    assert (made[0] != made[1]).any()
    pd.testing.assert_frame_equal(first, second)


def test_only_the_asked_patterns_are_made(checkpoint, tmp_path, monkeypatch):
    """--patterns edges: no blob rows (and no time spent on them)."""
    import mango.data

    monkeypatch.setattr(mango.data, "NYUDv2", FakeScenes)
    out = tmp_path / "holes.csv"
    assert bench.main([str(checkpoint), "--root", str(tmp_path), "--limit", "1", "--shares", "0.2",
                       "--patterns", "edges", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["pattern"]) == {"none", "edges"} and len(table) == 3
