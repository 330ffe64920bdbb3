"""`python -m train.crossval`: K models of one final-fit recipe, each scored on the fold it never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest

import train.crossval as crossval
from mango import metrics
from train.crossval import fold_indices, fold_splits, summarise
from train.data import build_splits


def _ids(dataset) -> list[str]:
    return [dataset[i]["id"] for i in range(len(dataset))]


def test_folds_are_disjoint_cover_every_sample_and_are_fixed_by_their_seed():
    held = [fold_indices(23, 5, k)[1] for k in range(5)]
    assert sorted(np.concatenate(held).tolist()) == list(range(23))
    assert {len(h) for h in held} == {4, 5}
    for k in range(5):
        kept, h = fold_indices(23, 5, k)
        assert not set(kept) & set(h) and len(kept) + len(h) == 23
        np.testing.assert_array_equal(h, fold_indices(23, 5, k, seed=1000)[1])
    assert any(not np.array_equal(fold_indices(23, 5, k, seed=1)[1], held[k]) for k in range(5))
    for folds, fold, n in ((1, 0, 10), (5, 5, 10), (5, -1, 10), (5, 0, 4)):
        with pytest.raises(ValueError):
            fold_indices(n, folds, fold)


@pytest.mark.parametrize("layout", ["films", "carved"])
def test_a_fold_trains_on_the_other_folds_and_holds_its_own_out(layout, tiny_movies, synthrooms):
    if layout == "films":  # train + dev films, dev kept as its own split on disk
        splits = build_splits("mmimdb", tiny_movies, 32, fit_on="train+val")
    else:  # validation carved from train
        splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25, fit_on="train+val")
    every = _ids(splits.train_eval)
    seen_held = []
    for k in range(2):
        cut, held = fold_splits(splits, 2, k)
        train_ids, eval_ids, val_ids = _ids(cut.train), _ids(cut.train_eval), _ids(cut.val)
        assert train_ids == eval_ids, "augmented and evaluation copies of the same samples"
        assert val_ids == [every[i] for i in held]
        assert not set(train_ids) & set(val_ids) and sorted(train_ids + val_ids) == sorted(every)
        assert _ids(cut.test) == _ids(splits.test)
        assert cut.description["train_samples"] == len(train_ids) and "held out" in cut.description["validation"]
        seen_held += val_ids
    assert sorted(seen_held) == sorted(every)


def _genre_args(root, out) -> list[str]:
    args = ["--dataset", "mmimdb", "--root", str(root), "--out", str(out), "--image-size", "128", "--batch-size", "4",
            "--ae-steps", "0", "--steps", "1", "--eval-every", "1", "--num-workers", "0", "--device", "cpu",
            "--thresholds", "none", "--fit-on", "train+val"]
    for key, value in dict(patch_size=32, dim=16, num_blocks=1, head_width=16, decoder_width=32,
                           text_context_length=16).items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.mark.slow
def test_out_of_fold_genre_scores_pool_every_training_film_once(tiny_movies, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cv"
    assert crossval.main(["--folds", "2", "--", *_genre_args(tiny_movies, out)]) == 0
    summary = json.loads((out / "crossval.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [0, 1] and summary["folds_total"] == 2
    assert summary["held_pooled"]["samples"] == 10  # 8 train + 2 dev films, each predicted once
    index = np.concatenate([np.load(out / f"fold-{k}" / "held.npz")["index"] for k in range(2)])
    assert sorted(index.tolist()) == list(range(10))
    for fold in summary["folds"]:
        assert fold["held_samples"] == 5 and 0 <= fold["held"]["micro_f1"] <= 1 and "micro_f1" in fold["test"]
        assert (out / f"fold-{fold['fold']}" / "final" / "model.safetensors").is_file()
    assert set(summary["held_mean_over_folds"]) >= {"micro_f1", "macro_f1_present"}

    # a finished fold is read back, never trained again
    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(crossval, "Trainer", no_training)
    assert crossval.main(["--folds", "2", "--only", "1", "--", *_genre_args(tiny_movies, out)]) == 0
    assert json.loads((out / "crossval.json").read_text())["held_pooled"] == summary["held_pooled"]
    # another recipe in the same folder is refused, not mixed in
    with pytest.raises(ValueError, match="other arguments"):
        crossval.main(["--folds", "2", "--", *_genre_args(tiny_movies, out), "--set", "head_dropout=0.5"])


def test_a_recipe_that_selects_on_validation_is_refused(tiny_movies, tmp_path):
    args = _genre_args(tiny_movies, tmp_path / "cv")
    held_out = args[: args.index("--fit-on")]
    with pytest.raises(SystemExit):
        crossval.main(["--folds", "2", "--", *held_out])
    with pytest.raises(SystemExit):
        crossval.main(["--folds", "2", "--only", "2", "--", *args])
    assert not (tmp_path / "cv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("ae_steps, expected", [
    ("0", [("every fold's", 10)]),  # no stage 1: the same backbones in every fold, one cache
    ("1", [("train", 5), ("val", 5), ("train", 5), ("val", 5)]),  # each fold's own stage 1, own caches
])
def test_folds_share_one_backbone_cache_only_when_no_fold_trains_a_stage_1(ae_steps, expected, tiny_movies,
                                                                            tmp_path, monkeypatch):
    from train import features

    built = []
    init = features.BackboneCache.__init__

    def counting(self, model, dataset, *args, **kwargs):
        built.append((kwargs.get("split", ""), len(dataset)))
        init(self, model, dataset, *args, **kwargs)

    monkeypatch.setattr(features.BackboneCache, "__init__", counting)
    args = _genre_args(tiny_movies, tmp_path / "cv")
    args[args.index("--ae-steps") + 1] = ae_steps
    assert crossval.main(["--folds", "2", "--", *args]) == 0
    assert built == expected
    summary = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert summary["held_pooled"]["samples"] == 10
    if ae_steps == "0":  # the shared rows train each fold as its own cache would have
        monkeypatch.setattr(crossval, "_share_backbone_cache", lambda *args, **kwargs: None)
        args[args.index("--out") + 1] = str(tmp_path / "own")
        assert crossval.main(["--folds", "2", "--", *args]) == 0
        own = json.loads((tmp_path / "own" / "crossval.json").read_text())
        for shared_fold, own_fold in zip(summary["folds"], own["folds"]):
            assert shared_fold["held"] == own_fold["held"]


def test_the_summary_refuses_folds_made_by_another_recipe_or_fold_count(tiny_movies, tmp_path):
    """Each `--only` process checks the folds it trains; the summary reads every finished fold, so it
    checks them all: a fold from other arguments or another --folds is named, not averaged in."""
    out = tmp_path / "cv"
    args = _genre_args(tiny_movies, out)
    assert crossval.main(["--folds", "2", "--only", "0", "--", *args]) == 0
    more_steps = list(args)
    more_steps[more_steps.index("--steps") + 1] = "2"
    with pytest.raises(ValueError, match=r"fold-0/held.json was made by other arguments.*steps: 1 there, 2 now"):
        crossval.main(["--folds", "2", "--only", "1", "--", *more_steps])
    assert not (out / "crossval.json").exists() or \
        len(json.loads((out / "crossval.json").read_text())["folds"]) == 1, "no mixed summary written"
    (out / "fold-1" / "held.json").unlink()  # fold 1, trained by the other recipe, is dropped
    with pytest.raises(ValueError, match="folds: 2 there, 3 now"):
        crossval.main(["--folds", "3", "--only", "2", "--", *args])


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_summary_means_every_fold_and_pools_held_out_predictions_at_one_half(tmp_path):
    rng = np.random.default_rng(0)
    results, probs_all, targets_all = [], [], []
    for fold, (held, test) in enumerate([(0.2, 0.3), (0.4, 0.5), (0.9, 0.7)]):
        results.append({"fold": fold, "held": {"micro_f1": held}, "test": {"micro_f1": test}})
        (tmp_path / f"fold-{fold}").mkdir()
        probs = rng.uniform(0.3, 0.7, size=(6, 3))
        targets = rng.integers(0, 2, size=(6, 3))
        np.savez(tmp_path / f"fold-{fold}" / "held.npz", probs=probs, targets=targets, index=np.arange(6) + 6 * fold)
        probs_all.append(probs)
        targets_all.append(targets)
    summary = summarise(tmp_path, results)
    assert summary["held_mean_over_folds"]["micro_f1"] == pytest.approx(0.5)
    assert summary["test_mean_over_folds"]["micro_f1"] == pytest.approx(0.5)
    expected = metrics.multilabel_f1(np.concatenate(probs_all), np.concatenate(targets_all), threshold=0.5)
    assert summary["held_pooled"]["samples"] == 18
    assert summary["held_pooled"]["micro_f1"] == pytest.approx(expected["micro_f1"])
