"""Settings a run cannot use are refused up front, with a message naming them, not after data loading or stage 1."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import train.__main__
import train.trainer
from train.__main__ import main as train_main
from train.__main__ import parse_args
from train.trainer import SettingsError, TrainConfig, Trainer, check_settings

from .conftest import TINY, TINY_MODEL


def _config(synthrooms, out, **changes) -> TrainConfig:
    base = TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(out), ae_steps=1, steps=1, **TINY)
    return dataclasses.replace(base, **changes)


LATE_FAILURES = {  # what failed only after data loading or stage 1, or with an unrelated error
    "balance classes on translation": (dict(dataset="taskonomy", task="translation", balance_classes="sqrt"),
                                       "translation has none"),
    "label projection on segmentation": (dict(text_projection="labels"), "needs multi-label targets"),
    "no evaluations": (dict(eval_every=0), "eval_every must be >= 1"),
    "nothing to train": (dict(ae_steps=0, steps=0), "nothing to train"),
    "stage-1 steps with encoders from a checkpoint": (dict(ae_steps=5, encoders_from="some/final"), "ae_steps=5"),
    "an unknown model field": (dict(overrides={"nosuchfield": 1}), r"the model config: unknown MangoConfig field"),
    "a text context longer than T": (dict(dataset="mmimdb", task="genre", overrides={"text_context_length": 999}),
                                     r"text_context_length 999 must be in \[1, T = \d+\].*--set text_context_length=N"),
}


@pytest.mark.parametrize("case", list(LATE_FAILURES))
def test_settings_that_fail_late_are_refused_before_the_data_is_read(case, synthrooms, tmp_path, monkeypatch):
    changes, message = LATE_FAILURES[case]

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the settings were checked")

    monkeypatch.setattr(train.trainer, "build_run_splits", no_data)
    with pytest.raises(SettingsError, match=message):
        Trainer(_config(synthrooms, tmp_path / "run", **changes))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_cuda_device_is_a_message(synthrooms, tmp_path, tiny_cli_args, capsys):
    argv = tiny_cli_args(tmp_path / "run", 1, 1, 1)
    argv[argv.index("--device") + 1] = "cuda"
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "use --device cpu" in capsys.readouterr().err
    with pytest.raises(SettingsError, match="use --device cpu"):
        Trainer(_config(synthrooms, tmp_path / "run", device="cuda"))


def test_cli_stage_one_steps_follow_encoders_from(tiny_cli_args, tmp_path, capsys):
    argv = tiny_cli_args(tmp_path / "run", 1, 1, 1)
    argv.remove("--ae-steps")
    argv.remove("1")
    assert parse_args(argv).ae_steps == 500
    assert parse_args([*argv, "--encoders-from", "x/final"]).ae_steps == 0  # recorded as what ran: no stage 1
    with pytest.raises(SystemExit):
        parse_args([*argv, "--encoders-from", "x/final", "--ae-steps", "5"])
    assert "--ae-steps 5 with --encoders-from" in capsys.readouterr().err


def test_set_image_size_is_the_size_the_data_is_read_at(synthrooms, tiny_cli_args, tmp_path, capsys):
    argv = tiny_cli_args(tmp_path / "run", 1, 1, 1)
    at = argv.index("--image-size")
    del argv[at : at + 2]
    cfg = parse_args([*argv, "--set", "image_size=16"])
    assert cfg.image_size == 16 and "image_size" not in cfg.overrides
    with pytest.raises(SystemExit):
        parse_args([*argv, "--image-size", "32", "--set", "image_size=16"])
    assert "give --image-size only" in capsys.readouterr().err
    assert train_main([*argv, "--set", "image_size=16"]) == 0  # the tiny preset is 32 px: data and model at 16
    capsys.readouterr()
    with pytest.raises(SettingsError, match="given twice"):
        TrainConfig(dataset="nyudv2", root="r", out="o", image_size=32, overrides={"image_size": 16})


def test_encoders_from_a_checkpoint_for_other_inputs_are_refused(synthrooms, tmp_path):
    base = tmp_path / "base"
    Trainer(_config(synthrooms, base)).run()
    patches = dataclasses.replace(_config(synthrooms, tmp_path / "p", ae_steps=0, encoders_from=str(base / "final")),
                                  overrides={**TINY_MODEL, "patch_size": 16})
    with pytest.raises(SettingsError, match="patch_size: 8 there, 16 here"):
        Trainer(patches)

    domains = dict(dataset="taskonomy", root=str(synthrooms / "taskonomy"), task="translation", target="rgb")
    depth_normal = tmp_path / "dn"
    Trainer(_config(synthrooms, depth_normal, inputs=("depth_zbuffer", "normal"), **domains)).run()
    other = _config(synthrooms, tmp_path / "rs", inputs=("reshading", "normal"), ae_steps=0,
                    encoders_from=str(depth_normal / "final"), **domains)
    with pytest.raises(SettingsError, match="a.name: 'depth_zbuffer' there, 'reshading' here"):
        Trainer(other)


def test_photometric_jitter_is_for_rgbd_segmentation_only(synthrooms, tmp_path):
    with pytest.raises(SettingsError, match="photometric jitter is for RGB-D segmentation"):
        Trainer(_config(synthrooms, tmp_path / "run", dataset="mmimdb", task="genre", photometric=True))


def test_photometric_run_reads_jittered_images_and_no_backbone_cache(synthrooms, tmp_path):
    """A cache holds one colouring of each image; with jitter stage 2 must read the images anew."""
    trainer = Trainer(_config(synthrooms, tmp_path / "run", ae_steps=1, steps=2, photometric=True))
    assert trainer.splits.train.dataset.colour_jitter is not None  # the training subset's loader
    assert trainer.splits.val.dataset.colour_jitter is None and trainer.splits.test.colour_jitter is None
    assert trainer.splits.description["augmentation"] == "crops, flips, colour jitter"
    trainer.run()
    assert trainer.cache == {}
    assert parse_args(["--dataset", "nyudv2", "--root", "r", "--out", "o", "--photometric"]).photometric


def test_the_command_lines_report_what_the_user_can_fix_in_one_line(tmp_path, capsys):
    # a wrong folder, checkpoint or model field: one line naming it and status 2, not a traceback
    from mango.bench.__main__ import main as bench_main
    from train.evaluate import main as evaluate_main
    from train.transfer import main as transfer_main

    missing = tmp_path / "nowhere"
    cases = [
        (train_main, ["--dataset", "nyudv2", "--root", str(missing), "--out", str(tmp_path / "run"), "--steps", "1"],
         f"python -m train: error: no nyudv2 folder at {missing} (--root)"),
        (train_main, ["--dataset", "mmimdb", "--root", str(missing), "--out", str(tmp_path / "run"),
                      "--set", "fusion=bogus"], "python -m train: error: the model config: MangoConfig: fusion must be"),
        (transfer_main, [str(missing), "--root", str(tmp_path)], "python -m train.transfer: error: no checkpoint folder"),
        (evaluate_main, [str(missing), "--dataset", "nyudv2", "--root", str(tmp_path)],
         "python -m train.evaluate: error: no checkpoint folder"),
        (bench_main, ["nosuch"], "python -m mango.bench: error: unknown benchmark 'nosuch'"),
    ]
    for main, argv, message in cases:
        try:
            status = main(argv)
        except SystemExit as stop:  # argparse's own errors
            status = stop.code
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert status == 2 and any(line.startswith(message) for line in lines) and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_per_class_settings_wait_for_the_data_s_classes(synthrooms, tmp_path):
    # the early check of the model config has no class names yet: 37 SUN RGB-D class weights are not refused
    from train.trainer import check_settings

    check_settings(_config(synthrooms, tmp_path / "run", dataset="sunrgbd", overrides={"class_weights": (1.0,) * 37}))
    with pytest.raises(SettingsError, match="the model config"):
        check_settings(_config(synthrooms, tmp_path / "run", overrides={"class_weights": (1.0,) * 37, "fusion": "bogus"}))


def test_a_result_prints_as_json_with_a_list_on_one_line():
    from train.cli import printable

    result = {"miou": 0.5, "per_class_iou": [0.1, None, 0.3], "classes_absent": ["lamp"], "nested": {"x": 1}}
    text = printable(result)
    assert json.loads(text) == result
    assert '  "per_class_iou": [0.1, null, 0.3],' in text.splitlines() and len(text.splitlines()) == len(result) + 2


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_ema_decay_of_one_is_refused(synthrooms, tmp_path):
    with pytest.raises(SettingsError, match="ema_decay"):
        check_settings(_config(synthrooms, tmp_path / "run", ema_decay=1.0))


def test_a_limit_of_one_sample_is_refused(synthrooms, tmp_path):
    with pytest.raises(SettingsError, match="limit must be at least 2"):
        check_settings(_config(synthrooms, tmp_path / "run", limit=1))


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def test_cli_flags_reach_the_train_config():
    """Each flag must land in its own TrainConfig field: a flag dropped, swapped or inverted here
    trains something else than the command line (and the checkpoint's settings) say."""
    base = ["--dataset", "nyudv2", "--root", "r", "--out", "o"]
    default = parse_args(base)
    assert default.bf16 and default.cache_backbones and default.mirror
    cfg = parse_args([*base, "--no-bf16", "--no-cache", "--no-mirror", "--lr", "0.002", "--ae-lr", "0.003",
                      "--weight-decay", "0.5", "--seed", "7", "--val-fraction", "0.3", "--warmup", "9",
                      "--balance-classes", "sqrt", "--text-projection", "pca"])
    assert (cfg.bf16, cfg.cache_backbones, cfg.mirror) == (False, False, False)
    assert (cfg.lr, cfg.ae_lr, cfg.weight_decay) == (0.002, 0.003, 0.5)
    assert (cfg.seed, cfg.val_fraction, cfg.warmup) == (7, 0.3, 9)
    assert (cfg.balance_classes, cfg.text_projection) == ("sqrt", "pca")


def test_cli_zero_stage_one_steps_are_kept(tiny_cli_args, tmp_path):
    """`--ae-steps 0` means no stage 1, with or without --encoders-from (the refusal says "or give 0")."""
    argv = tiny_cli_args(tmp_path / "run", 0, 1, 1)
    assert parse_args(argv).ae_steps == 0
    assert parse_args([*argv, "--encoders-from", "x/final"]).ae_steps == 0


def test_a_set_value_may_contain_an_equals_sign():
    """`--set key=value` splits at the first '=' only: the rest is the value."""
    from train.__main__ import _override

    assert _override("text_encoder=a=b") == ("text_encoder", "a=b")
    assert _override('partitions=["a=1"]') == ("partitions", ("a=1",))


def test_main_prints_the_run_s_result(monkeypatch, capsys):
    """`python -m train` ends by printing the test result (the numbers a user copies into a table)."""
    class Finished:
        def __init__(self, cfg):
            pass

        def run(self):
            return {"miou": 0.25, "per_class_iou": [0.5, None]}

    monkeypatch.setattr(train.__main__, "Trainer", Finished)
    assert train_main(["--dataset", "nyudv2", "--root", "r", "--out", "o"]) == 0
    assert json.loads(capsys.readouterr().out) == {"miou": 0.25, "per_class_iou": [0.5, None]}


@pytest.mark.parametrize("cache", [True, False])
def test_a_batch_larger_than_the_training_set_is_refused_before_any_work(tiny_cli_args, tmp_path, capsys, cache):
    """With stage 1 skipped, the cached stage 2 raised a traceback only after computing its caches (the
    uncached path gave one line): both now refuse it first, and write nothing."""
    run = tmp_path / "run"
    argv = [*tiny_cli_args(run, ae_steps=0, steps=1, eval_every=1), "--batch-size", "32"]
    status = train_main(argv if cache else [*argv, "--no-cache"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert "python -m train: error: batch_size 32 is larger than the 9 training samples" in err
    assert not run.exists()
