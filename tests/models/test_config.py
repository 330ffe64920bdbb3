"""MangoConfig: presets, validation, JSON round trip and versioning."""

from __future__ import annotations

import json

import pytest

from mango.models import FORMAT_VERSION, ConfigError, ConfigVersionError, MangoConfig, ModalityConfig
from mango.models.config import MMIMDB_GENRES, NYUDV2_CLASSES, gray

TASKS = ("segmentation", "translation", "genre")


@pytest.mark.parametrize("task", TASKS)
def test_presets_have_the_documented_sizes(task: str) -> None:
    demo = MangoConfig.preset("demo", task)
    paper = MangoConfig.preset("paper", task)
    tiny = MangoConfig.preset("tiny", task)
    # genre posters: EfficientNet's stride-32 map of a 256 px poster, 8x8 tokens like the other tasks
    size = (256, 32) if task == "genre" else (128, 16)
    assert (demo.image_size, demo.patch_size, demo.grid, demo.tokens_per_modality) == (*size, (8, 8), 64)
    assert (paper.image_size, paper.patch_size, paper.num_blocks, paper.tokens_per_modality) == (256, 16, 12, 256)
    assert (tiny.image_size, tiny.patch_size, tiny.num_blocks, tiny.tokens_per_modality) == (32, 8, 1, 16)
    assert demo.metadata["preset"] == "demo" and demo.task == paper.task == task
    # demo: pretrained encoders that install offline; paper and tiny: trained from scratch
    assert {demo.a.encoder, demo.b.encoder} <= {"efficientnet_lite0", "minilm_l6"}
    assert {paper.a.encoder, paper.b.encoder, tiny.a.encoder, tiny.b.encoder} <= {"vit", "clip"}
    assert demo.dim == (128 if task == "genre" else 96)  # below EfficientNet's 112 channels: full-rank features
    # ICA: a gate floor for the shallow demo flow only (it would not invert at the paper's depth)
    assert (demo.gate_range, demo.value_affine) == ((0.25, 0.5), True)
    assert paper.gate_range == MangoConfig().gate_range == (0.0, 0.5) and MangoConfig().value_affine
    assert not paper.value_affine  # the published architecture, at its parameter count


def test_task_defaults() -> None:
    seg = MangoConfig.preset("demo", "segmentation")
    assert (seg.a.name, seg.a.channels, seg.b.name, seg.b.channels) == ("rgb", 3, "depth", 1)
    assert seg.class_names == NYUDV2_CLASSES and seg.num_classes == 40
    tr = MangoConfig.preset("demo", "translation")
    assert (tr.a.name, tr.b.name, tr.target.name, tr.target.channels) == ("reshading", "edge_texture", "rgb", 3)
    genre = MangoConfig.preset("demo", "genre")
    assert genre.b.is_text and genre.num_classes == 23 and genre.class_names == MMIMDB_GENRES


def test_overrides_and_json_round_trip() -> None:
    config = MangoConfig.preset(
        "demo", "segmentation", b=ModalityConfig("normal", channels=3), partitions=("mmca", "imca"),
        class_names=("floor", "wall", "thing"), metadata={"data": "synthrooms", "miou": 0.5},
    )
    text = config.to_json()
    data = json.loads(text)
    assert data["format_version"] == FORMAT_VERSION and data["b"]["name"] == "normal"
    again = MangoConfig.from_json(text)
    assert again == config and again.num_classes == 3 and again.partitions == ("mmca", "imca")


def test_newer_format_version_is_refused_by_name() -> None:
    data = MangoConfig.preset("demo", "genre").to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ConfigVersionError, match=f"format_version {FORMAT_VERSION + 1}"):
        MangoConfig.from_dict(data)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"surprise": 1}, "surprise"),
        ({"format_version": None}, "format_version"),
        ({"fusion": "sum"}, "fusion"),
        ({"partitions": ["mmca", "xyz"]}, "partitions"),
        ({"patch_size": 24}, "patch_size"),
        ({"num_classes": 7}, "num_classes"),
    ],
)
def test_bad_configs_name_the_field(change: dict, match: str) -> None:
    data = MangoConfig.preset("demo", "segmentation").to_dict()
    data.update(change)
    with pytest.raises(ConfigError, match=match):
        MangoConfig.from_dict(data)


def test_text_length_is_checked_only_where_there_is_text() -> None:
    data = MangoConfig.preset("demo", "genre").to_dict()
    data["text_context_length"] = 65
    with pytest.raises(ConfigError, match="text_context_length"):
        MangoConfig.from_dict(data)
    # a task without text never reads the text settings, so they cannot make it invalid
    assert MangoConfig.preset("demo", "segmentation", text_context_length=65).tokens_per_modality == 64


def test_fusion_coupling_means_the_coupling_flow() -> None:
    assert MangoConfig.preset("demo", "segmentation", fusion="coupling").flow == "coupling"
    assert not MangoConfig.preset("demo", "segmentation", fusion="late").has_flow


def test_pretrained_encoder_name_must_match_the_architecture() -> None:
    with pytest.raises(ConfigError, match="vit_base_patch16_224.mae"):
        MangoConfig.preset("demo", "segmentation", encoder_pretrained="vit_base_patch16_224.mae")
    MangoConfig.preset(
        "paper", "segmentation", encoder_pretrained="vit_base_patch16_224.mae",
        encoder_width=768, encoder_depth=12, encoder_heads=12,
    )


def test_text_only_in_genre() -> None:
    with pytest.raises(ConfigError, match="text"):
        MangoConfig.preset("demo", "segmentation", b=ModalityConfig("plot", kind="text"))


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_default_normalisation_of_image_modalities() -> None:
    assert gray("depth").mean == (0.5,) and gray("depth").std == (0.25,)
    normal = ModalityConfig("normal", "image", 3)
    assert normal.mean == (0.5, 0.5, 0.5) and normal.std == (0.25, 0.25, 0.25)
    assert ModalityConfig("rgb", "image", 3).mean == (0.485, 0.456, 0.406)


def test_an_odd_token_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be even"):
        MangoConfig.preset("tiny", "segmentation", image_size=24, patch_size=8)  # 3x3 = 9 tokens
    assert MangoConfig.preset("tiny", "segmentation", image_size=32, patch_size=8).tokens_per_modality == 16


def test_num_classes_must_match_the_class_names() -> None:
    for n in (2, 5):
        with pytest.raises(ConfigError, match="class_names"):
            MangoConfig.preset("tiny", "segmentation", num_classes=n, class_names=("a", "b", "c"))


def test_decision_thresholds_of_zero_or_one_are_refused() -> None:
    names = ("x", "y")
    for bad in ((0.0, 0.5), (0.5, 1.0)):
        with pytest.raises(ConfigError, match="decision_thresholds"):
            MangoConfig.preset("tiny", "genre", class_names=names, decision_thresholds=bad)


def test_a_format_1_config_reads_with_the_first_release_defaults() -> None:
    data = MangoConfig.preset("tiny", "segmentation").to_dict()
    for key in ("ica_form", "decoder", "whitening"):
        del data[key]
    data["format_version"] = 1
    config = MangoConfig.from_dict(data)
    assert (config.ica_form, config.decoder, config.whitening, config.format_version) == ("diag_bias", "mae", False, 2)


def test_single_modality_baselines_use_their_own_modality() -> None:
    assert MangoConfig.preset("tiny", "segmentation", fusion="single_a").used_modalities == ("a",)
    assert MangoConfig.preset("tiny", "segmentation", fusion="single_b").used_modalities == ("b",)
    assert MangoConfig.preset("tiny", "segmentation", fusion="late").used_modalities == ("a", "b")
