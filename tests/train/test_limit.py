"""`--limit N`: a quick run of the whole training path on the first N samples of each split. The
run's checkpoint says so, since its scores mean nothing."""

from __future__ import annotations

import dataclasses

import pytest

from mango.models.card import data_line
from train.__main__ import parse_args
from train.data import build_splits
from train.trainer import SettingsError, TrainConfig, Trainer

from .conftest import TINY


def _ids(dataset) -> list[str]:
    return [dataset[i]["id"] for i in range(len(dataset))]


def test_each_split_of_a_film_set_keeps_its_first_films(tiny_movies):
    whole = build_splits("mmimdb", tiny_movies, 32)
    limited = build_splits("mmimdb", tiny_movies, 32, limit=3)
    assert _ids(limited.train) == _ids(whole.train)[:3] and _ids(limited.train_eval) == _ids(limited.train)
    assert _ids(limited.val) == _ids(whole.val)[:2]  # a split shorter than the limit is read whole
    assert _ids(limited.test) == _ids(whole.test)[:3]
    assert limited.class_names == whole.class_names  # the model still answers every genre
    assert limited.description["limit"] == 3 and limited.description["train_samples"] == 3
    line = data_line(limited.description)
    assert "only the first 3 of each split (a smoke run)" in line
    assert "limit" not in whole.description and "smoke run" not in data_line(whole.description)


def test_a_carved_validation_set_comes_from_the_limited_train_split(synthrooms):
    limited = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25, limit=8)
    assert (len(limited.train), len(limited.val), len(limited.test)) == (6, 2, 4)
    assert not set(_ids(limited.train)) & set(_ids(limited.val))
    fitted = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25, limit=8, fit_on="train+val")
    assert len(fitted.train) == len(fitted.train_eval) == 8


def test_the_command_line_passes_the_limit_and_refuses_one_below_two(synthrooms, tmp_path):
    argv = ["--dataset", "nyudv2", "--root", str(synthrooms / "nyudv2"), "--out", str(tmp_path / "run")]
    assert parse_args(argv + ["--limit", "5"]).limit == 5
    assert parse_args(argv).limit is None
    with pytest.raises(SystemExit):
        parse_args(argv + ["--limit", "1"])
    config = TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(tmp_path / "r"), ae_steps=1,
                         steps=1, **TINY)
    with pytest.raises(SettingsError, match="limit must be at least 2"):
        Trainer(dataclasses.replace(config, limit=0))
