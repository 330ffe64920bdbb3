"""The SynthRooms -> NYUDv2 transfer score: class mapping by name, and a run on the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from mango.data import NYUDV2_CLASSES, SYNTHROOMS_CLASSES, NYUDv2
from mango.models import MangoModel
from train.transfer import class_mapping, transfer_scores

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "segmentation"


def test_class_mapping_by_name():
    mapping = class_mapping(SYNTHROOMS_CLASSES)
    named = {SYNTHROOMS_CLASSES[s]: NYUDV2_CLASSES[t] for s, t in mapping.items()}
    assert named["wall"] == "wall" and named["rug"] == "floor mat" and named["lamp"] == "lamp"
    assert "ball" not in named and "camouflaged" not in named


def test_bundled_segmentation_on_real_nyudv2(nyudv2_root):
    if not (BUNDLED / "model.safetensors").is_file():
        pytest.skip("no bundled segmentation checkpoint")
    model = MangoModel.from_pretrained(BUNDLED, expected_task="segmentation")
    scores = transfer_scores(model, NYUDv2(nyudv2_root, "val", image_size=model.config.image_size))
    assert scores["images"] == 3 and scores["scored_pixels"] > 10_000
    assert 0 <= scores["miou"] <= 1 and 0 <= scores["pixel_acc"] <= 1
    # a trained model beats guessing among the 9 shared classes on real walls and floors
    assert scores["pixel_acc"] > 1 / 9
