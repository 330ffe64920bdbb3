"""The model card's "Trained on" line: a checkpoint fitted on train + validation says so, rather
than listing its validation samples as if they were held out."""

from __future__ import annotations

from app.texts import _data

HELD_OUT = dict(dataset="mmimdb", root="movies", image_size=256, train_samples=856, val_samples=122,
                test_samples=245, validation="dev split")


def test_held_out_validation_is_listed_beside_train_and_test():
    assert "856 train / 122 val / 245 test samples" in _data(HELD_OUT)


def test_validation_trained_on_is_counted_inside_train():
    line = _data(HELD_OUT | dict(train_samples=978, validation="dev split, trained on", fit_on="train+val"))
    assert "978 train (its 122 validation included) / 245 test samples" in line
    assert "/ 122 val /" not in line
