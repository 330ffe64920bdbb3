"""`python -m train.evaluate` scores a checkpoint only on data it can read: its task, its classes, its domains."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mango import metrics
from train.evaluate import evaluate, tune_thresholds
from train.evaluate import main as evaluate_main
from train.trainer import TrainConfig, Trainer

from .conftest import TINY


@pytest.fixture(scope="module")
def segmentation_run(synthrooms, tmp_path_factory):
    run = tmp_path_factory.mktemp("eval") / "seg"
    Trainer(TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(run), ae_steps=1, steps=1,
                        **TINY)).run()
    return run


def test_only_the_requested_split_is_read(segmentation_run, synthrooms, tmp_path, capsys):
    data = tmp_path / "nyudv2"
    shutil.copytree(synthrooms / "nyudv2", data)
    (data / "train.txt").unlink()  # scoring the test split needs no training list
    assert evaluate_main([str(segmentation_run / "final"), "--dataset", "nyudv2", "--root", str(data), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["miou"] == pytest.approx(json.loads((segmentation_run / "test_metrics.json").read_text())["miou"])


def _refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_checkpoint_for_other_classes_another_task_or_other_domains_is_refused(segmentation_run, synthrooms,
                                                                                   tmp_path, capsys):
    checkpoint = tmp_path / "renamed"
    shutil.copytree(segmentation_run / "final", checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["class_names"] = ["not " + name for name in config["class_names"]]
    (checkpoint / "config.json").write_text(json.dumps(config))
    nyu = ["--dataset", "nyudv2", "--root", str(synthrooms / "nyudv2")]
    assert "train.transfer" in _refused([str(checkpoint), *nyu], capsys)
    assert "expected 'translation'" in _refused([str(segmentation_run / "final"), "--dataset", "taskonomy", "--root",
                                                  str(synthrooms / "taskonomy")], capsys)
    assert "Taskonomy domains" in _refused([str(segmentation_run / "final"), *nyu, "--inputs", "rgb", "depth"], capsys)

    run = tmp_path / "tr"
    Trainer(TrainConfig(dataset="taskonomy", root=str(synthrooms / "taskonomy"), out=str(run),
                        inputs=("depth_zbuffer", "normal"), target="rgb", ae_steps=1, steps=1, **TINY)).run()
    taskonomy = [str(run / "final"), "--dataset", "taskonomy", "--root", str(synthrooms / "taskonomy")]
    assert "trained on depth_zbuffer normal" in _refused([*taskonomy, "--inputs", "normal", "depth_zbuffer"], capsys)
    assert "predicts rgb" in _refused([*taskonomy, "--target", "reshading"], capsys)
    assert evaluate_main([*taskonomy, "--inputs", "depth_zbuffer", "normal", "--target", "rgb"]) == 0


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


class GivenOutputs(torch.nn.Module):
    """A model whose output is its first input, with a known bits/dim per sample (from its second)."""

    def __init__(self, task: str, num_classes: int = 3):
        super().__init__()
        self.config = SimpleNamespace(task=task, num_classes=num_classes, thresholds=lambda: (0.5,) * num_classes)
        self.device = torch.device("cpu")

    def forward(self, a, b):
        return SimpleNamespace(output=a, bits_per_dim=b.float())


def _data(outputs, targets):
    return [{"a": o, "b": torch.tensor(float(k)), "target": t} for k, (o, t) in enumerate(zip(outputs, targets))]


def test_genre_selection_score_averages_micro_f1_and_macro_f1_over_present_genres():
    logits = torch.tensor([[3.0, -3, -3], [3, 3, -3], [-3, 3, -3], [3, -3, -3]])
    targets = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])  # genre 2: never present, never predicted
    result = evaluate(GivenOutputs("genre"), _data(logits, targets), batch_size=2)
    scores = metrics.multilabel_f1(torch.sigmoid(logits).numpy(), targets.numpy())
    assert scores["macro_f1"] != pytest.approx(scores["macro_f1_present"])
    assert result["mean_f1"] == pytest.approx((scores["micro_f1"] + scores["macro_f1_present"]) / 2)


def test_a_class_absent_from_the_split_has_no_iou_rather_than_nan():
    logits = torch.zeros(2, 3, 2, 2)
    logits[:, 0] = 1.0  # class 0 everywhere
    targets = torch.zeros(2, 2, 2, dtype=torch.long)
    targets[:, 0] = 1  # classes 0 and 1 present, class 2 absent from both
    result = evaluate(GivenOutputs("segmentation"), _data(logits, targets), batch_size=2)
    assert result["per_class_iou"][2] is None and result["per_class_iou"][0] == pytest.approx(0.5)


def test_translation_errors_are_measured_on_the_clipped_image():
    outputs, targets = torch.full((2, 3, 2, 2), 1.5), torch.ones(2, 3, 2, 2)  # beyond white is white
    result = evaluate(GivenOutputs("translation"), _data(outputs, targets), batch_size=2)
    assert result["mae"] == 0.0 and result["mse"] == 0.0


def test_bits_per_dim_percentiles_are_in_order():
    outputs, targets = torch.zeros(100, 3, 2, 2), torch.zeros(100, 3, 2, 2)
    result = evaluate(GivenOutputs("translation"), _data(outputs, targets), batch_size=50)  # bits/dim 0..99
    assert result["bits_per_dim"] == pytest.approx(49.5)
    assert (result["bits_per_dim_p5"], result["bits_per_dim_p50"], result["bits_per_dim_p95"]) == \
        pytest.approx((np.percentile(np.arange(100), 5), 49.5, np.percentile(np.arange(100), 95)))


def test_a_genre_without_positives_keeps_the_default_threshold():
    logits = torch.tensor([[3.0, -3, 0], [3, 3, 1], [-3, 3, -1], [-3, -3, 2]])
    targets = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])  # genre 2 never present here
    assert tune_thresholds(GivenOutputs("genre"), _data(logits, targets), batch_size=2)[2] == 0.5
