"""The model card's "Trained on" line: a checkpoint fitted on train + validation says so, rather
than listing its validation samples as if they were held out."""

from __future__ import annotations

from mango.models.card import data_line as _data
from mango.models.card import dataset_name, metrics_line

HELD_OUT = dict(dataset="mmimdb", root="movies", image_size=256, train_samples=856, val_samples=122,
                test_samples=245, validation="dev split")


def test_held_out_validation_is_listed_beside_train_and_test():
    assert "856 train / 122 val / 245 test samples" in _data(HELD_OUT)


def test_validation_trained_on_is_counted_inside_train():
    line = _data(HELD_OUT | dict(train_samples=978, validation="dev split, trained on", fit_on="train+val"))
    assert "978 train (its 122 validation included) / 245 test samples" in line
    assert "/ 122 val /" not in line


def test_measurements_on_validation_inputs_say_when_they_were_trained_on():
    # the ICA share and the recommended temperature are measured on validation inputs, which a final fit
    # trained on: "validation" alone would read as held out
    from types import SimpleNamespace

    from app.texts import fusion_line, validation_inputs

    assert validation_inputs({"data": HELD_OUT}) == "validation inputs"
    assert validation_inputs({"data": HELD_OUT | dict(fit_on="train+val")}) == \
        "validation inputs (trained on too: a final fit)"
    assert validation_inputs({}) == validation_inputs(None) == "validation inputs"
    config = SimpleNamespace(has_flow=True, flow="ica", ica_form="gated", gate_range=(0.1, 0.5), ica_exclude_self=True,
                             value_affine=False, fusion="mango", metadata={"data": HELD_OUT | dict(fit_on="train+val")})
    line = fusion_line(config, {"off_diagonal_share": 0.2})
    assert "on 32 validation inputs (trained on too: a final fit) each ICA layer takes on average 20 %" in line
    assert "the first token, with none before it, keeps A_00 = 1" in line


def test_the_flow_s_validation_readout_is_not_listed_among_the_test_metrics():
    # the trainer measured the ICA share and the round trip on 32 validation inputs, and the first
    # checkpoints (the bundled ones too) kept both among their test metrics
    from mango.models.card import flow_readout, metrics_line

    legacy = {"test_metrics": {"miou": 0.7, "off_diagonal_share": 0.14, "roundtrip_error": 7e-5, "samples": 600}}
    assert metrics_line(legacy["test_metrics"]) == "miou 0.7"
    assert flow_readout(legacy) == {"off_diagonal_share": 0.14, "roundtrip_error": 7e-5}
    assert flow_readout(legacy | {"mixing": {"off_diagonal_share": 0.2, "share_b1_l1": 0.3}}) == \
        {"off_diagonal_share": 0.2, "roundtrip_error": 7e-5}  # the newer place wins
    assert flow_readout({}) == {}


def test_the_bundled_cards_give_the_share_as_a_validation_measurement(launched_app):
    from app.texts import model_card

    for runner in launched_app[0].mango_app.runners.values():
        card = model_card(runner.loaded)
        tested = next(line for line in card.split("  \n") if line.startswith("**Test metrics:**"))
        assert "off diagonal" not in tested and "roundtrip" not in tested
        assert "validation inputs" in card and "% of a token's content from other tokens" in card


def test_the_hub_card_gives_the_flow_s_validation_readout_beside_the_test_metrics(launched_app):
    from mango.models.card import model_card

    config = launched_app[0].mango_app.runners["segmentation"].config
    card = model_card(config)
    tested = next(line for line in card.splitlines() if line.startswith("- **Test metrics**"))
    readout = next(line for line in card.splitlines() if line.startswith("- **The flow on 32 validation inputs:**"))
    assert "off diagonal share" not in tested and "off diagonal share 0.144" in readout and "roundtrip error" in readout


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def test_metrics_line_keeps_up_to_eight_scalars_at_three_significant_digits():
    metrics = {"miou": 0.45678, "pixel_acc": 0.81234, "mean_acc": 0.5556, "fw_iou": 0.7, "bits_per_dim": -1.2345}
    assert metrics_line(metrics) == "miou 0.457 · pixel acc 0.812 · mean acc 0.556 · fw iou 0.7 · bits per dim -1.23"
    many = {f"m{k}": 0.5 for k in range(10)}
    assert metrics_line(many).count("·") == 7


def test_metrics_line_leaves_out_flags_and_lists():
    assert metrics_line({"miou": 0.5, "interrupted": True, "per_class_iou": [0.1, 0.9]}) == "miou 0.5"


def test_only_a_fit_on_train_and_val_counts_validation_inside_train():
    held_out = dict(dataset="mmimdb", root="movies", train_samples=856, val_samples=122, test_samples=245)
    assert "856 train / 122 val / 245 test samples" in _data(held_out | dict(fit_on="train"))


def test_an_older_checkpoint_s_data_folder_is_named_by_its_layout_not_its_path():
    named = dataset_name({"root": "/work/shared/data/movies", "dataset": "mmimdb"})
    assert named == "MM-IMDb" and "/" not in named
    assert dataset_name({"root": "SynthRooms (nyudv2 layout)"}) == "SynthRooms (nyudv2 layout)"  # a name, kept


def test_a_written_description_of_the_data_comes_before_its_generated_name():
    assert dataset_name({"description": "NYUDv2, 795 labelled frames", "name": "nyudv2 (NYUDv2 layout)"}) == \
        "NYUDv2, 795 labelled frames"


# -- found unguarded by a sixth mutation audit (each fails on its mutant) ----------------------------------


def test_only_a_fit_on_train_and_val_makes_validation_inputs_trained_on():
    """A run fitted on the training split alone (fit_on "train") still measured on held-out inputs."""
    from app.texts import validation_inputs

    assert validation_inputs({"data": HELD_OUT | dict(fit_on="train")}) == "validation inputs"


TRANSFER = {"data": "NYUDv2", "images": 3, "pixel_acc": 0.5714, "miou": 0.2158, "shared_classes": ["wall", "floor"]}


def test_the_score_on_real_photos_is_given_beside_the_test_split_s():
    from mango.models.card import transfer_line

    line = transfer_line({"transfer": TRANSFER, "test_metrics": {"miou": 0.694}})
    assert line == ("pixel accuracy 0.571 and mIoU 0.216 on 3 labelled NYUDv2 photos, over the 2 classes both label "
                    "sets have (mIoU 0.694 on its own test split)")
    assert transfer_line({"transfer": TRANSFER}).endswith("both label sets have")  # no test score to set it against
    assert transfer_line({}) == transfer_line({"transfer": "measured"}) == ""
    assert transfer_line({"transfer": {k: v for k, v in TRANSFER.items() if k != "miou"}}) == ""  # not a score to show

