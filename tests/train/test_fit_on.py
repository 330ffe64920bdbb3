"""`--fit-on train+val`: a final fit on train + validation at a step count chosen beforehand (the
protocol of the MM-IMDb probe the genre targets come from). The validation samples are trained on,
so nothing is selected on them: the last step ships, and genre thresholds are not tuned."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from mango.models import MangoModel
from train import trainer as trainer_module
from train.__main__ import parse_args
from train.data import build_splits
from train.trainer import Trainer


def _ids(dataset) -> list[str]:
    return [dataset[i]["id"] for i in range(len(dataset))]


def test_train_plus_val_trains_on_the_dev_films_and_keeps_test_apart(tiny_movies):
    held = build_splits("mmimdb", tiny_movies, 32)
    fitted = build_splits("mmimdb", tiny_movies, 32, fit_on="train+val")
    assert len(held.train) == 8 and len(fitted.train) == 10 and len(fitted.train_eval) == 10
    assert sorted(_ids(fitted.train)) == sorted(_ids(held.train) + _ids(held.val))
    assert sorted(_ids(fitted.train_eval)) == sorted(_ids(fitted.train))
    assert not set(_ids(fitted.train)) & set(_ids(fitted.test)), "the test films must stay out of training"
    assert _ids(fitted.val) == _ids(held.val), "validation is still read (for the log), just not held out"
    assert fitted.description["fit_on"] == "train+val" and "trained on" in fitted.description["validation"]
    assert fitted.description["train_samples"] == 10
    # the dev films are augmented like the training ones (random crops and flips)
    dev_in_train = fitted.train.datasets[1]
    assert dev_in_train.train and not fitted.val.train


def test_train_plus_val_on_a_carved_validation_set_uses_all_of_train(synthrooms):
    held = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    fitted = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25, fit_on="train+val")
    assert (len(held.train), len(held.val)) == (9, 3)
    assert len(fitted.train) == len(fitted.train_eval) == 12 and len(fitted.val) == 3
    with pytest.raises(ValueError, match="fit_on"):
        build_splits("nyudv2", synthrooms / "nyudv2", 32, fit_on="everything")


def test_the_last_step_ships_whatever_validation_says(tiny_train_config, tmp_path, monkeypatch):
    """Validation scores that fall step after step: a held-out run keeps step 1, a train+val run step 3."""
    real_evaluate = trainer_module.evaluate
    calls = []

    def falling(*args, **kwargs):  # steps 1, 2, 3 on validation, then the test split once
        calls.append(None)
        return {**real_evaluate(*args, **kwargs), "miou": [0.9, 0.5, 0.1, 0.0][(len(calls) - 1) % 4]}

    monkeypatch.setattr(trainer_module, "evaluate", falling)
    chosen = {}
    for fit_on in ("train", "train+val"):
        cfg = tiny_train_config(tmp_path / fit_on, ae_steps=1, steps=3, eval_every=1)
        cfg.fit_on = fit_on
        Trainer(cfg).run()
        chosen[fit_on] = json.loads((tmp_path / fit_on / "best" / "selection.json").read_text())["step"]
    assert chosen == {"train": 1, "train+val": 3}
    run = tmp_path / "train+val"
    last, final = MangoModel.from_pretrained(run / "last"), MangoModel.from_pretrained(run / "final")
    assert all(torch.equal(a, b) for a, b in zip(last.state_dict().values(), final.state_dict().values())), \
        "final/ must be the last step's weights"
    assert final.config.metadata["data"]["fit_on"] == "train+val"
    assert final.config.metadata["training"]["fit_on"] == "train+val"


def test_genre_thresholds_cannot_be_tuned_on_films_it_trained_on(tiny_movies, tmp_path, capsys):
    argv = ["--dataset", "mmimdb", "--root", str(tiny_movies), "--out", str(tmp_path / "g"), "--fit-on", "train+val"]
    with pytest.raises(SystemExit):  # the command line refuses it
        parse_args(argv + ["--thresholds", "per_class"])
    assert "thresholds cannot be tuned" in capsys.readouterr().err
    with pytest.raises(ValueError, match="thresholds"):  # and so does a Trainer given the config
        Trainer(dataclasses.replace(parse_args(argv + ["--thresholds", "none"]), thresholds="per_class"))
    assert parse_args(argv + ["--thresholds", "none"]).fit_on == "train+val"
    assert parse_args(argv[:6]).fit_on == "train"


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def test_train_plus_val_scores_the_dev_films_unaugmented(tiny_movies):
    """train_eval is the training set as evaluation reads it: with train+val its dev films must not be
    randomly cropped or flipped either, or the training score changes from one evaluation to the next."""
    fitted = build_splits("mmimdb", tiny_movies, 32, fit_on="train+val")
    assert [part.train for part in fitted.train_eval.datasets] == [False, False]
    assert [part.train for part in fitted.train.datasets] == [True, True]
    assert not fitted.test.train


def test_a_carved_validation_set_is_the_rounded_fraction_of_train(synthrooms):
    """12 training scenes at 30%: 3.6 rounds to 4 validation scenes (a floor would give 3)."""
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.3)
    assert (len(splits.train), len(splits.val)) == (8, 4)
    assert splits.description["val_samples"] == 4
