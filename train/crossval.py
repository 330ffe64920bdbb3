"""Out-of-fold scores for a training recipe, without reading the test split to compare recipes.

    python -m train.crossval --folds 5 [--only 0 1] [--fold-seed 1000] -- <python -m train arguments>

The recipe must be a final fit (`--fit-on train+val`: the last step ships, nothing is selected
and genre thresholds stay at 0.5). The samples it trains on (train + validation) are cut into K
folds; for each fold a model is trained with the same arguments on the other K - 1 and scores
the fold it never saw. The run folders are ``OUT/fold-K`` (each resumes like any run); the
held-out scores go to ``OUT/fold-K/held.json`` and, for genre, the held-out probabilities to
``held.npz``, so a finished fold is never trained again. ``OUT/crossval.json`` sums up: each
fold's held-out scores and its model's test scores (a second yardstick, read once per fold), and
for genre micro and macro F1 over all held-out predictions pooled. With 245 test films and ±0.03
of macro F1 between seeds there, docs/genre-experiments.md compares genre recipes by this first
and by full fits on test second. An OUT made with other arguments is refused, not mixed in.
When no fold trains a stage 1 (`--encoders-from`, or `--ae-steps 0`), the folds share one cache of
backbone outputs over every training sample, computed once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from mango import metrics
from mango.models import MangoModel

from .__main__ import parse_args
from .atomic import atomic_write_text
from .cli import reports_user_errors
from .data import Splits
from .evaluate import evaluate
from .features import BackboneCache, draw_like_caching
from .trainer import TrainConfig, Trainer, build_run_splits, describe_differences


def fold_indices(n: int, folds: int, fold: int, seed: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) sample indices of `fold`: a seeded permutation of range(n) dealt round-robin
    into `folds` parts, so the folds are disjoint, cover every sample and differ in size by one."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}), got {fold}")
    if n < folds:
        raise ValueError(f"{n} samples cannot make {folds} folds")
    order = np.random.default_rng(seed).permutation(n)
    held = np.sort(order[fold::folds])
    return np.setdiff1d(np.arange(n), held), held


def fold_splits(splits: Splits, folds: int, fold: int, seed: int = 1000) -> tuple[Splits, np.ndarray]:
    """`splits` with its training samples cut: train on all folds but `fold`, validate on `fold`
    (read as evaluation reads it). `splits.train` and `splits.train_eval` hold the same samples in
    the same order (augmented or not), which is what lets one index cut both."""
    if len(splits.train) != len(splits.train_eval):
        raise ValueError(f"train ({len(splits.train)}) and train_eval ({len(splits.train_eval)}) differ in length")
    kept, held = fold_indices(len(splits.train_eval), folds, fold, seed)
    description = {**splits.description, "train_samples": len(kept), "val_samples": len(held),
                   "validation": f"fold {fold} of {folds} (fold seed {seed}) of the training samples, held out"}
    cut = Splits(Subset(splits.train, kept.tolist()), Subset(splits.train_eval, held.tolist()), splits.test,
                 splits.class_names, description, Subset(splits.train_eval, kept.tolist()))
    return cut, held


def _scalars(scores: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items() if np.ndim(v) == 0 and not isinstance(v, str)}


def _share_backbone_cache(trainer: Trainer, splits: Splits, kept: np.ndarray, held: np.ndarray,
                          shared: dict[str, Any]) -> None:
    """Give the fold its rows of one backbone cache over every training sample, computed once.

    Only when no fold trains a stage 1 (`--encoders-from`, or no autoencoder steps): the folds then
    build the same backbones, which is checked weight by weight; otherwise each fold caches its own."""
    if trainer.state["stage"] != "task" or not (trainer.cfg.cache_backbones and trainer.model.cacheable_backbones):
        return
    weights = {k: v.detach().clone() for k, v in trainer.model.encoders.state_dict().items()}
    if "cache" in shared and (shared["weights"].keys() != weights.keys()
                              or not all(torch.equal(shared["weights"][k], v) for k, v in weights.items())):
        return
    if "cache" not in shared:
        with torch.random.fork_rng(devices=[]):  # the folds' random streams stay as if each cached its own
            shared["cache"] = BackboneCache(trainer.model, splits.train_eval, mirrored=trainer.cfg.mirror,
                                            progress=trainer.main, split="every fold's")
        shared["weights"] = weights
    train = shared["cache"].subset(kept)
    trainer.cache.update(train=train, val=shared["cache"].subset(held, mirrored=False))
    draw_like_caching(train.views + 1)  # the passes its own caching would make: train (and mirrored), val


def fold_recipe(cfg: TrainConfig, folds: int, seed: int) -> dict[str, Any]:
    """What makes a fold's scores comparable with the others': the training config and the cut."""
    return {"train_config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
            "folds": folds, "fold_seed": seed}


def check_recipe(path: Path, result: dict[str, Any], recipe: dict[str, Any]) -> None:
    """Refuse a finished fold (`path`, its held.json) made by another recipe, naming what differs."""
    saved = result.get("recipe") or {}
    if saved == recipe:
        return
    before, now = saved.get("train_config") or {}, recipe["train_config"]
    differences = {k: (before.get(k), now.get(k)) for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)}
    differences |= {k: (saved.get(k), recipe[k]) for k in ("folds", "fold_seed") if saved.get(k) != recipe[k]}
    raise ValueError(f"{path} was made by other arguments or folds ({describe_differences(differences) or 'no recipe recorded'}): "
                     "give this recipe its own --out (or remove that fold's folder to train it again)")


def run_fold(cfg: TrainConfig, splits: Splits, folds: int, fold: int, seed: int,
             shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume, or reuse) one fold's model; its held-out and test scores. ``shared``
    carries the backbone cache from fold to fold (see `_share_backbone_cache`)."""
    out = Path(cfg.out) / f"fold-{fold}"
    done = out / "held.json"
    recipe = fold_recipe(cfg, folds, seed)
    if done.is_file():
        result = json.loads(done.read_text())
        check_recipe(done, result, recipe)
        return result
    cut, held = fold_splits(splits, folds, fold, seed)
    trainer = Trainer(dataclasses.replace(cfg, out=str(out)), splits=cut)
    if shared is not None:
        _share_backbone_cache(trainer, splits, np.asarray(cut.train_eval.indices), held, shared)
    test = trainer.run()
    model = MangoModel.from_pretrained(out / "final")
    scores = evaluate(model, cut.val, keep_probabilities=True)
    result = {"fold": fold, "held_samples": len(held), "held": _scalars(scores),
              "test": _scalars(test or {}), "recipe": recipe}
    if "probabilities" in scores:  # genre: the held-out predictions, to pool over folds
        np.savez(out / "held.npz", probs=scores["probabilities"], targets=scores["targets"], index=held)
    atomic_write_text(done, json.dumps(result, indent=2))
    return result


def summarise(out: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per fold, the mean over folds, and for genre the pooled held-out F1."""
    summary: dict[str, Any] = {"folds": results}
    for part in ("held", "test"):
        keys = set.intersection(*(set(r[part]) for r in results)) if results else set()
        summary[f"{part}_mean_over_folds"] = {k: float(np.mean([r[part][k] for r in results])) for k in sorted(keys)}
    pooled = [out / f"fold-{r['fold']}" / "held.npz" for r in results]
    if pooled and all(p.is_file() for p in pooled):
        parts = [np.load(p) for p in pooled]
        scores = metrics.multilabel_f1(np.concatenate([p["probs"] for p in parts]),
                                       np.concatenate([p["targets"] for p in parts]).astype(int), threshold=0.5)
        summary["held_pooled"] = {"samples": int(sum(len(p["index"]) for p in parts)),
                                  "micro_f1": scores["micro_f1"], "macro_f1_present": scores["macro_f1_present"]}
    return summary


@reports_user_errors("python -m train.crossval")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.crossval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", type=int, nargs="+", default=None, metavar="FOLD",
                   help="train only these folds (e.g. to run folds in parallel processes); the summary covers the folds done")
    p.add_argument("--fold-seed", type=int, default=1000, help="seed of the fold assignment (not of the training)")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the `python -m train` arguments")
    a = p.parse_args(argv)
    train_args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    cfg = parse_args(train_args)
    if cfg.fit_on != "train+val":
        p.error("the recipe must be a final fit (--fit-on train+val): a run that selects its step on "
                "validation would select on the held-out fold")
    folds = a.only if a.only is not None else list(range(a.folds))
    for fold in folds:
        if not 0 <= fold < a.folds:
            p.error(f"--only {fold}: folds are 0 .. {a.folds - 1}")
    splits = build_run_splits(cfg)
    out = Path(cfg.out)
    shared: dict[str, Any] = {}
    for fold in folds:
        result = run_fold(cfg, splits, a.folds, fold, a.fold_seed, shared)
        print(f"fold {fold}: held-out {json.dumps(result['held'])}", flush=True)
    finished = []  # every fold done so far, also those of other processes (--only): made by this recipe?
    for path in sorted(out.glob("fold-*/held.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
        result = json.loads(path.read_text())
        check_recipe(path, result, fold_recipe(cfg, a.folds, a.fold_seed))
        finished.append(result)
    summary = {"folds_total": a.folds, "fold_seed": a.fold_seed, "train_args": train_args, **summarise(out, finished)}
    atomic_write_text(out / "crossval.json", json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "folds"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
