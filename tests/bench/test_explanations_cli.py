"""`python -m mango.bench explanations`: bad input is a usage error, an interrupted run keeps what it
finished, a run never leaves an earlier run's files beside its own, and a class group's IoU is over
the classes that have objects. The known-answer checks themselves are tested in test_known_answers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mango import known_answers as ka
from mango.bench import explanations as bench
from mango.data import SYNTHROOMS_CLASSES
from mango.models import MangoConfig, MangoModel

TINY = dict(image_size=32, patch_size=8, dim=16, encoder_width=16, encoder_depth=1, encoder_heads=2, decoder_width=16,
            decoder_heads=2, decoder_depth=1, head_width=16, num_blocks=1)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    MangoModel(MangoConfig.preset("tiny", "segmentation", class_names=SYNTHROOMS_CLASSES, **TINY),
               load_pretrained=False).save_pretrained(root / "segmentation")
    MangoModel(MangoConfig.preset("tiny", "genre", **TINY), load_pretrained=False).save_pretrained(root / "genre")
    return root


class FakeScenes:
    """Stands in for the NYUDv2-layout loader: three random 32 px scenes, with the given classes."""

    def __init__(self, root, split="test", image_size=32, train=False, depth_max=10.0, class_names=SYNTHROOMS_CLASSES):
        self.class_names = tuple(class_names)
        g = torch.Generator().manual_seed(0)
        self.items = [{"id": f"scene{i}", "a": torch.rand(3, 32, 32, generator=g), "b": torch.rand(1, 32, 32, generator=g),
                       "target": torch.randint(0, len(self.class_names), (32, 32), generator=g)} for i in range(3)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def _check(obj, score: str) -> SimpleNamespace:
    values = {m: (0.7, 0.3) if m == "rollout" else (0.1, 0.5) for m in ka.METHODS}
    return SimpleNamespace(obj=obj, values=values, right={m: True for m in ka.METHODS}, recall=1.0, f_both=1.0,
                           f_none=0.0, ig_delta=0.0, ig_steps=8, ig_converged=True, score=score)


def fake_checks(monkeypatch, interrupt_at: int | None = None, objects: bool = True) -> None:
    """One camouflaged object per scene with made-up values (no captum); Ctrl-C in scene ``interrupt_at``."""
    import mango.data

    monkeypatch.setattr(mango.data, "NYUDv2", FakeScenes)
    obj = SimpleNamespace(class_name="camouflaged", kind="camouflaged", revealing="b", pixels=20)
    monkeypatch.setattr(ka, "known_objects", lambda *args: [obj] if objects else [])
    calls = {"scenes": 0}

    def check_objects(model, a, b, found, score, *rest):
        if score == "logit":
            calls["scenes"] += 1
        if calls["scenes"] == interrupt_at:
            raise KeyboardInterrupt
        return [_check(o, score) for o in found]

    monkeypatch.setattr(ka, "check_objects", check_objects)


def test_an_interrupted_run_keeps_the_scenes_it_finished(checkpoints, tmp_path, monkeypatch):
    fake_checks(monkeypatch, interrupt_at=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("an earlier run's\n")
    try:
        code = bench.main([str(checkpoints / "segmentation"), "--root", str(tmp_path), "--out", str(out),
                           "--ig-steps", "8", "--max-ig-steps", "8"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped, and the finished scenes were not written")
    assert code == 130
    objects = pd.read_csv(out / "objects.csv")
    assert sorted(set(objects["scene"])) == ["scene0", "scene1"] and len(objects) == 2 * len(bench.SCORES)
    meta = json.loads((out / "run.json").read_text())
    assert meta["interrupted"] is True and meta["status"] == "interrupted" and meta["scenes"] == 2
    assert pd.read_csv(out / "summary.csv")["objects"].eq(2).all() and (out / "explanations.png").is_file()
    assert not list(out.glob("*.part"))


def test_objects_are_appended_as_each_scene_finishes(checkpoints, tmp_path, monkeypatch):
    fake_checks(monkeypatch)
    out = tmp_path / "out"
    sizes = []
    real_check = ka.check_objects

    statuses = []

    def check_and_look(*args):  # what is on disk while the next scene is checked (what a kill -9 would leave)
        path = out / "objects.csv"
        sizes.append(len(pd.read_csv(path)) if path.is_file() else 0)
        statuses.append(json.loads((out / "run.json").read_text())["status"])
        return real_check(*args)

    monkeypatch.setattr(ka, "check_objects", check_and_look)
    assert bench.main([str(checkpoints / "segmentation"), "--root", str(tmp_path), "--out", str(out),
                       "--scores", "logit", "--ig-steps", "8", "--max-ig-steps", "8"]) == 0
    assert sizes == [0, 1, 2] and len(pd.read_csv(out / "objects.csv")) == 3
    assert all(status.startswith("running, or killed") for status in statuses) and len(statuses) == 3
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["interrupted"] is False and meta["scenes"] == 3


def test_a_run_without_a_figure_removes_an_earlier_one(tmp_path):
    (tmp_path / "explanations.png").write_bytes(b"an earlier run's figure")
    bench.write(tmp_path, pd.DataFrame(), pd.DataFrame(), {"checkpoint": "x", "scenes": 0})
    assert not (tmp_path / "explanations.png").exists()
    assert (tmp_path / "run.json").is_file() and (tmp_path / "summary.csv").is_file()


@pytest.mark.parametrize("options, message", [
    (["--limit", "-1"], "--limit must be at least 1"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--ig-steps", "0"], "--ig-steps must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),  # 0 was ignored without a word
    (["--ig-steps", "64", "--max-ig-steps", "32"], "--ig-steps 64 is above --max-ig-steps 32"),
])
def test_bad_numbers_are_usage_errors(checkpoints, tmp_path, monkeypatch, capsys, options, message):
    fake_checks(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(checkpoints / "segmentation"), "--root", str(tmp_path), "--out", str(tmp_path / "out"), *options])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_checkpoints_roots_and_data_are_usage_errors(checkpoints, tmp_path, monkeypatch, capsys):
    cases = [
        ([str(tmp_path / "missing"), "--root", str(tmp_path)], "no checkpoint folder"),
        ([str(checkpoints / "genre"), "--root", str(tmp_path)], "expected 'segmentation'"),
        ([str(checkpoints / "segmentation"), "--root", str(tmp_path / "no-scenes")], "no-scenes"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            bench.main([*argv, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "usage:" in err and message in err, err
    # scenes labelled with other classes (NYUDv2's 40): label k would be scored as another class k
    import mango.data

    monkeypatch.setattr(mango.data, "NYUDv2", lambda *a, **k: FakeScenes(*a, **k, class_names=[f"c{i}" for i in range(40)]))
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(checkpoints / "segmentation"), "--root", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "are not the data's 40" in capsys.readouterr().err


def test_a_group_iou_averages_only_the_classes_with_objects():
    """Two scenes with rugs and no pictures: the decal IoU is the rug's, not its mean with picture's 0."""
    rows = [{"scene": f"s{i}", "class": "rug", "score": "logit", "recall": 1.0, "revealing": "rgb",
             "ig_converged": True, **{f"{m}_right": True for m in ka.METHODS},
             **{f"{m}_{n}": v for m in ka.METHODS for n, v in (("rgb", 0.6), ("depth", 0.4))}} for i in range(2)]
    summary = bench.summarise(pd.DataFrame(rows), {"picture": 0.0, "rug": 0.722, "camouflaged": float("nan")})
    iou = summary.groupby("group")["class_iou"].first().to_dict()
    assert iou == {"rug": 0.722, "decal (picture + rug)": 0.722}
    assert np.isclose(summary["right_pct"], 100).all()


def test_the_summary_reads_each_object_s_revealing_modality_and_counts_detected_objects_apart():
    """Four rugs, two detected; the method is right on three, one of them detected: 75 % right,
    50 % among the detected. The printed table shows the first, under the method's name."""
    recalls, right = [1.0, 0.6, 0.2, 0.1], [True, False, True, True]
    rows = [{"scene": f"s{i}", "class": "rug", "score": "logit", "recall": recalls[i], "revealing": "rgb",
             "ig_converged": True, **{f"{m}_right": right[i] for m in ka.METHODS},
             **{f"{m}_{n}": v for m in ka.METHODS for n, v in (("rgb", 0.6), ("depth", 0.2))}} for i in range(4)]
    summary = bench.summarise(pd.DataFrame(rows), {"rug": 0.5})
    shapley = summary[(summary["group"] == "rug") & (summary["method"] == "shapley")].iloc[0]
    assert shapley["objects"] == 4 and shapley["detected_objects"] == 2
    assert shapley["right_pct"] == 75.0 and shapley["right_pct_detected"] == 50.0
    assert shapley["mean_revealing"] == 0.6 and shapley["mean_other"] == 0.2
    printed = bench.table(summary)
    assert printed[printed["group"] == "rug"].iloc[0][ka.METHOD_LABELS["shapley"]] == 75.0


def test_the_run_reads_depth_at_the_checkpoint_s_scale_and_passes_the_ig_steps_on(tmp_path, monkeypatch):
    """A model trained on depth up to 5 m must see depth scaled by 5 m, not the default 10 m; and
    --max-ig-steps bounds the doubling of Integrated Gradients' steps."""
    import mango.data

    fake_checks(monkeypatch)
    made = []
    monkeypatch.setattr(mango.data, "NYUDv2", lambda *args, **kwargs: made.append(kwargs) or FakeScenes(*args, **kwargs))
    steps = []
    real = ka.check_objects
    monkeypatch.setattr(ka, "check_objects", lambda *args: steps.append(args[5:7]) or real(*args))
    checkpoint = tmp_path / "ckpt"
    torch.manual_seed(0)
    MangoModel(MangoConfig.preset("tiny", "segmentation", class_names=SYNTHROOMS_CLASSES, metadata={"depth_max": 5.0},
                                  **TINY), load_pretrained=False).save_pretrained(checkpoint)
    assert bench.main([str(checkpoint), "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--scores", "logit",
                       "--limit", "1", "--ig-steps", "8", "--max-ig-steps", "64"]) == 0
    assert [k["depth_max"] for k in made] == [5.0]
    assert steps == [(8, 64)]


def test_a_new_run_does_not_add_its_objects_to_an_earlier_run_s(checkpoints, tmp_path, monkeypatch):
    """objects.csv grows scene by scene, so a run killed outright leaves it as its record: an earlier
    run's file must be removed at the start, not appended to (the end of a run rewrites it whole,
    which hides the mix-up from a run that finishes)."""
    fake_checks(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame([{"scene": "an earlier run's scene", "object": 0}]).to_csv(out / "objects.csv", index=False)
    on_disk = []
    real = ka.check_objects

    def check_and_look(*args):  # what a kill -9 now would leave
        path = out / "objects.csv"
        on_disk.append(list(pd.read_csv(path)["scene"]) if path.is_file() else [])
        return real(*args)

    monkeypatch.setattr(ka, "check_objects", check_and_look)
    assert bench.main([str(checkpoints / "segmentation"), "--root", str(tmp_path), "--out", str(out),
                       "--scores", "logit", "--ig-steps", "8", "--max-ig-steps", "8"]) == 0
    assert on_disk == [[], ["scene0"], ["scene0", "scene1"]]
    assert list(pd.read_csv(out / "objects.csv")["scene"]) == ["scene0", "scene1", "scene2"]
