"""`python -m train.evaluate` scores a checkpoint only on data it can read: its task, its classes, its domains."""

from __future__ import annotations

import json
import shutil

import pytest

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
