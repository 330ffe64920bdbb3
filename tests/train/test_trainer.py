"""Training end to end at a tiny size: both stages, logs, resume, checkpoints, evaluation, ablations."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mango.models import MangoModel
from train.__main__ import parse_args
from train.ablations import plot, summarise
from train.evaluate import main as evaluate_main
from train.trainer import TrainConfig, Trainer, _schedule, class_weights

from .conftest import TINY


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_segmentation_two_stages_resume_and_final_checkpoint(synthrooms, tmp_path):
    run = tmp_path / "seg"
    first = TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(run), ae_steps=2, steps=2, **TINY)
    Trainer(first).run()
    # "interrupted" after 2 task steps; the same --out with more steps continues from step 2
    more = TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(run), ae_steps=2, steps=4, **TINY)
    test = Trainer(more).run()

    rows = _rows(run)
    assert [(r["stage"], r["step"]) for r in rows] == [
        ("autoencoder", 2), ("task", 2), ("task", 4)
    ], "the resumed run must neither redo stage 1 nor repeat task steps"
    task_rows = [r for r in rows if r["stage"] == "task"]
    assert all(0 <= r["val_miou"] <= 1 and r["roundtrip_error"] < 1e-3 for r in task_rows)
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("stage,step")

    model = MangoModel.from_pretrained(run / "final")
    meta = model.config.metadata
    assert meta["test_metrics"] == test and 0 <= test["miou"] <= 1 and test["samples"] == 4
    # the flow's readout is measured on validation inputs: beside the test metrics, not among them
    assert not set(test) & {"off_diagonal_share", "roundtrip_error"}
    assert 0 <= meta["mixing"]["off_diagonal_share"] <= 1 and meta["mixing"]["roundtrip_error"] < 1e-3
    assert meta["data"]["dataset"] == "nyudv2" and meta["data"]["train_samples"] == 9
    assert meta["training"]["steps"] == 4
    # what took effect: no Taskonomy domains for NYUDv2 data, no bf16 without CUDA (the run's own settings keep them)
    assert meta["training"]["inputs"] is None and meta["training"]["target"] is None
    assert meta["training"]["bf16"] is (more.bf16 and torch.cuda.is_available() and more.device.startswith("cuda"))
    assert model.config.class_names[0] and model.config.num_classes == len(model.config.class_names)


def test_translation_depth_normal_to_rgb_and_evaluate_cli(synthrooms, tmp_path, capsys):
    run = tmp_path / "tr"
    cfg = TrainConfig(dataset="taskonomy", root=str(synthrooms / "taskonomy"), out=str(run),
                      inputs=("depth_zbuffer", "normal"), target="rgb", ae_steps=1, steps=2, **TINY)
    test = Trainer(cfg).run()
    model = MangoModel.from_pretrained(run / "final", expected_task="translation")
    assert (model.config.a.name, model.config.b.name, model.config.target.name) == ("depth_zbuffer", "normal", "rgb")
    assert model.config.b.channels == 3 and 0 < test["mae"] < 1 and test["mse"] < 1

    assert evaluate_main([str(run / "final"), "--dataset", "taskonomy", "--root", str(synthrooms / "taskonomy"),
                          "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mae"] == pytest.approx(test["mae"], rel=1e-5)


def test_encoders_reused_from_a_checkpoint_skip_stage_one(synthrooms, tmp_path):
    base = tmp_path / "base"
    Trainer(TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(base), ae_steps=2, steps=1,
                        **TINY)).run()
    cfg = TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(tmp_path / "late"), ae_steps=0,
                      steps=1, encoders_from=str(base / "final"), **{**TINY, "overrides": {**TINY["overrides"],
                                                                                            "fusion": "late"}})
    trainer = Trainer(cfg)
    source = MangoModel.from_pretrained(base / "final")
    for key in ("a", "b"):
        for mine, theirs in zip(trainer.model.encoders[key].parameters(), source.encoders[key].parameters()):
            assert (mine.detach() == theirs.detach()).all()
    trainer.run()
    assert [r["stage"] for r in _rows(tmp_path / "late")] == ["task"]


def test_cli_overrides_are_parsed_as_json():
    cfg = parse_args(["--dataset", "mmimdb", "--root", "r", "--out", "o", "--set", "fusion=late",
                      "--set", 'partitions=["mmca","imca"]', "--set", "nll_weight=0.5", "--steps", "7"])
    assert cfg.task == "genre" and cfg.steps == 7
    assert cfg.overrides == {"fusion": "late", "partitions": ("mmca", "imca"), "nll_weight": 0.5}


def test_ablation_summary_mean_std_and_plot(tmp_path):
    runs = pd.DataFrame([
        dict(task="segmentation", variant=v, seed=s, metric="miou", value=x)
        for v, xs in {"MANGO (MMCA+IMCA+LICA)": [0.5, 0.7], "Concatenation": [0.4, 0.4]}.items()
        for s, x in enumerate(xs)
    ])
    table = summarise(runs)
    mango = table[table["variant"].str.startswith("MANGO")].iloc[0]
    assert mango["mean"] == pytest.approx(0.6) and mango["std"] == pytest.approx(0.1414, abs=1e-4)
    assert mango["n_seeds"] == 2 and list(table["variant"]) == ["MANGO (MMCA+IMCA+LICA)", "Concatenation"]
    plot(table, tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 5000


def test_prior_baseline_is_the_majority_answer(synthrooms, movies_root):
    from train.ablations import prior_baseline

    seg = prior_baseline("segmentation", str(synthrooms / "nyudv2"), 32)
    assert 0 < seg["pixel_acc"] < 1 and seg["miou"] <= seg["pixel_acc"]
    genre = prior_baseline("genre", str(movies_root), 32)
    # only Drama is in more than half of the training films: the prior is "always Drama"
    from mango.data import MMIMDb
    from mango import metrics
    import numpy as np

    test = MMIMDb(movies_root, "test", image_size=32)
    targets = np.stack([test[i]["target"].numpy() for i in range(len(test))])
    drama = np.zeros_like(targets)
    drama[:, list(test.class_names).index("Drama")] = 1
    assert genre["micro_f1"] == metrics.multilabel_f1(drama, targets)["micro_f1"]


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_schedule_warms_up_from_one_step_and_ends_at_zero():
    assert _schedule(0, 100, 10) == pytest.approx(0.1)  # the first step already learns
    assert _schedule(9, 100, 10) == pytest.approx(1.0)
    assert _schedule(10, 100, 10) == pytest.approx(1.0)
    assert _schedule(55, 100, 10) == pytest.approx(0.5)
    assert _schedule(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert _schedule(150, 100, 10) == pytest.approx(0.0, abs=1e-12)  # a resumed run past `total` does not climb again


def _segmentation(labels):
    return [{"target": np.asarray(t)} for t in labels]


def test_segmentation_class_weights_favour_rare_classes_mean_one_over_present():
    # class 0: 300 px, class 1: 100 px, class 2: absent; 255 is not counted
    data = _segmentation([np.r_[np.zeros(300), np.ones(100), np.full(50, 255)].astype(np.int64)])
    config = SimpleNamespace(num_classes=3, task="segmentation")
    assert class_weights(data, config, "inverse") == pytest.approx((0.5, 1.5, 0.0), abs=1e-4)
    s = np.array([0.75 ** -0.5, 0.25 ** -0.5])
    assert class_weights(data, config, "sqrt") == pytest.approx((*(s / s.mean()), 0.0), abs=1e-4)


def test_genre_positive_weights_are_negatives_over_positives_clipped_to_1_50():
    n = 100
    targets = np.zeros((n, 4))
    targets[:1, 0] = 1  # 1 positive: 99 negatives
    targets[:50, 1] = 1  # balanced
    targets[:, 2] = 1  # always on: clipped up to 1
    # genre 3 never on: 100 / 1, clipped to 50
    data = [{"target": t} for t in targets]
    config = SimpleNamespace(num_classes=4, task="genre")
    assert class_weights(data, config, "inverse") == pytest.approx((50.0, 1.0, 1.0, 50.0))
    targets[:1, 0] = 0
    targets[:4, 0] = 1  # 4 positives, 96 negatives
    data = [{"target": t} for t in targets]
    assert class_weights(data, config, "inverse")[0] == pytest.approx(24.0)
    assert class_weights(data, config, "sqrt")[0] == pytest.approx(math.sqrt(24.0), abs=1e-4)
    targets[:, 0] = 0
    targets[:2, 0] = 1  # 2 positives, 98 negatives: 49 (n / positives would give 50)
    data = [{"target": t} for t in targets]
    assert class_weights(data, config, "inverse")[0] == pytest.approx(49.0)
