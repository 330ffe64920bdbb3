"""The SynthRooms -> NYUDv2 transfer score: class mapping by name, and a run on the real samples."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mango.data import NYUDV2_CLASSES, SYNTHROOMS_CLASSES, NYUDv2
from mango.models import MangoConfig, MangoModel
from mango.models.card import model_card
from train.transfer import class_mapping, transfer_scores
from train.transfer import main as transfer_main

from .conftest import TINY_MODEL

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "segmentation"


def test_class_mapping_by_name():
    mapping = class_mapping(SYNTHROOMS_CLASSES)
    named = {SYNTHROOMS_CLASSES[s]: NYUDV2_CLASSES[t] for s, t in mapping.items()}
    assert named["wall"] == "wall" and named["rug"] == "floor mat" and named["lamp"] == "lamp"
    assert "ball" not in named and "camouflaged" not in named


class _FixedPredictions(torch.nn.Module):
    """Predicts the given SynthRooms label map for every image."""

    def __init__(self, labels: torch.Tensor) -> None:
        super().__init__()
        self.config = SimpleNamespace(class_names=SYNTHROOMS_CLASSES, num_classes=len(SYNTHROOMS_CLASSES))
        self.device = torch.device("cpu")
        self.labels = labels

    def forward(self, a, b):
        logits = torch.nn.functional.one_hot(self.labels, len(SYNTHROOMS_CLASSES)).permute(2, 0, 1)[None].float()
        return SimpleNamespace(output=logits)


def test_classes_absent_from_the_ground_truth_count_in_miou_but_not_in_its_present_mean():
    nyu, syn = NYUDV2_CLASSES.index, SYNTHROOMS_CLASSES.index
    target = torch.full((4, 4), nyu("wall"))
    target[2:] = nyu("floor")
    target[0, 0] = 255  # unlabelled: not scored
    pred = torch.full((4, 4), syn("wall"))
    pred[2:] = syn("floor")
    pred[3, 3] = syn("lamp")  # a lamp where the floor is: the photo has no lamp
    pred[1, 1] = syn("ball")  # no NYUDv2 counterpart: wrong, but no class of its own
    item = {"a": torch.zeros(3, 4, 4), "b": torch.zeros(1, 4, 4), "target": target}
    scores = transfer_scores(_FixedPredictions(pred), [item])
    iou = scores["per_class_iou"]
    assert iou["wall"] == pytest.approx(6 / 7, abs=1e-4) and iou["floor"] == pytest.approx(7 / 8, abs=1e-4) and iou["lamp"] == 0.0
    assert iou["ceiling"] is None  # neither in the ground truth nor predicted
    assert scores["miou"] == pytest.approx((6 / 7 + 7 / 8 + 0) / 3)
    assert scores["miou_classes_in_ground_truth"] == pytest.approx((6 / 7 + 7 / 8) / 2)
    assert "lamp" in scores["classes_absent_from_ground_truth"] and "wall" not in scores["classes_absent_from_ground_truth"]
    assert scores["scored_pixels"] == 15 and scores["pixel_acc"] == pytest.approx(13 / 15)


def test_bundled_segmentation_on_real_nyudv2(nyudv2_root):
    if not (BUNDLED / "model.safetensors").is_file():
        pytest.skip("no bundled segmentation checkpoint")
    model = MangoModel.from_pretrained(BUNDLED, expected_task="segmentation")
    scores = transfer_scores(model, NYUDv2(nyudv2_root, "val", image_size=model.config.image_size))
    assert scores["images"] == 3 and scores["scored_pixels"] > 10_000
    assert 0 <= scores["miou"] <= scores["miou_classes_in_ground_truth"] <= 1 and 0 <= scores["pixel_acc"] <= 1
    # a trained model beats guessing among the 9 shared classes on real walls and floors
    assert scores["pixel_acc"] > 1 / 9
    # and scores what its model cards (from the stored entry) and the README say it does
    stored = json.loads((BUNDLED / "config.json").read_text())["metadata"]["transfer"]
    assert (stored["images"], stored["scored_pixels"], stored["shared_classes"]) == \
        (scores["images"], scores["scored_pixels"], scores["shared_classes"])
    assert scores["pixel_acc"] == pytest.approx(stored["pixel_acc"], abs=2e-3)
    assert scores["miou"] == pytest.approx(stored["miou"], abs=2e-3)
    readme = (BUNDLED.parents[2] / "README.md").read_text()
    assert f"pixel accuracy {stored['pixel_acc']:.3g}, **mIoU {stored['miou']:.3g}**" in readme


def _tiny_segmentation(folder: Path) -> Path:
    torch.manual_seed(0)
    config = MangoConfig.preset("tiny", "segmentation", image_size=32, class_names=SYNTHROOMS_CLASSES,
                                **TINY_MODEL, metadata={"test_metrics": {"miou": 0.5}})
    MangoModel(config).save_pretrained(folder)
    return folder


def test_write_config_stores_the_scores_for_the_model_cards_and_nothing_else(synthrooms, tmp_path, capsys):
    folder = _tiny_segmentation(tmp_path / "ckpt")
    weights, before = (folder / "model.safetensors").read_bytes(), json.loads((folder / "config.json").read_text())
    argv = [str(folder), "--root", str(synthrooms / "nyudv2"), "--split", "test", "--write-config"]
    assert transfer_main(argv) == 0
    printed = capsys.readouterr().out
    scores = json.loads(printed[:printed.index("wrote the scores to")])
    after = json.loads((folder / "config.json").read_text())
    entry = after["metadata"].pop("transfer")
    assert after == before and (folder / "model.safetensors").read_bytes() == weights
    assert entry == {"data": "NYUDv2", "split": "test", "command": "python -m train.transfer " + " ".join(argv),
                     **{k: scores[k] for k in ("images", "scored_pixels", "pixel_acc", "miou", "shared_classes")}}
    assert entry["images"] == 4  # the tiny data set's test scenes
    assert "On real images:** pixel accuracy" in model_card(MangoConfig.load(folder / "config.json"))


def test_write_config_needs_a_local_folder_and_says_so_before_loading(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        transfer_main(["someone/a-hub-model", "--root", str(tmp_path), "--write-config"])
    assert stop.value.code == 2
    assert "--write-config needs a local checkpoint folder; someone/a-hub-model has no config.json" in \
        capsys.readouterr().err


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_predictions_of_unshared_classes_are_a_share_of_scored_pixels_and_never_right():
    nyu, syn = NYUDV2_CLASSES.index, SYNTHROOMS_CLASSES.index
    target = torch.full((4, 4), nyu("wall"))
    target[0, 0] = 255  # not scored
    pred = torch.full((4, 4), syn("wall"))
    pred[1, 1] = syn("ball")
    pred[2, 2] = syn("camouflaged")
    item = {"a": torch.zeros(3, 4, 4), "b": torch.zeros(1, 4, 4), "target": target}
    scores = transfer_scores(_FixedPredictions(pred), [item])
    assert scores["predicted_unshared_share"] == pytest.approx(2 / 15)
    assert scores["pixel_acc"] == pytest.approx(13 / 15)
    assert scores["per_class_iou"]["wall"] == pytest.approx(13 / 15, abs=1e-4)
