"""Linear probes on a genre checkpoint: how much of the genre signal survives each step from the
frozen backbones to the head's input.

    python -m mango.bench probe CHECKPOINT --root ../shared/data/movies [--C 1.0]

One logistic regression per genre (scikit-learn, balanced class weights, threshold 0.5), fitted on
the training split only and scored on the test split (micro and macro F1 over the genres present),
on mean-pooled tokens at three depths:

- ``backbone``: the encoders' backbone outputs (a text modality pooled over its word pieces), each
  modality L2-normalised: the issue-10 probe that set the genre targets;
- ``features``: F, after the per-token projections to D (what the flow reads);
- ``latent``: Z, after the flow (what the head reads).

Each depth for both modalities together and for each alone, so a drop between two depths says
which step loses the genre information (for example a projection that is too narrow).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mango import metrics
from mango.models import MangoModel
from mango.models.fusion import split_tokens
from mango.models.heads import mean_over_positions

LEVELS = ("backbone", "features", "latent")


@torch.no_grad()
def pooled_tokens(model: MangoModel, dataset: Sequence[dict[str, Any]], batch_size: int = 32
                  ) -> tuple[dict[tuple[str, str], np.ndarray], np.ndarray]:
    """{(level, modality name): (N, width)} mean-pooled tokens, and the (N, classes) 0/1 targets."""
    if model.config.task != "genre" or model.flow is None:
        raise ValueError("the probe reads a genre checkpoint with a flow (F and Z)")
    model.eval()
    rows: dict[tuple[str, str], list[torch.Tensor]] = defaultdict(list)
    targets = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        outputs = model.backbone_outputs(batch["a"], batch["b"])
        features, pad = model.features_from_backbone(outputs)
        z = model.forward_features(features, pad).z
        f_parts = split_tokens(features, model.plan.modalities, model.tokens_per_modality)
        z_parts = split_tokens(z, model.plan.modalities, model.tokens_per_modality)
        for key in model.plan.modalities:
            name = model.config.modality(key).name
            out = outputs[key]
            if isinstance(out, tuple):  # text: (token states (B, L, W), ids); pool the word pieces
                states, ids = out
                pooled = mean_over_positions(states, model.encoders[key].pad_mask(ids)[:, : states.shape[1]])
            else:  # image: (B, T, C) feature-map tokens
                pooled = out.mean(1)
            rows["backbone", name].append(F.normalize(pooled.float(), dim=-1))
            rows["features", name].append(f_parts[key].float().mean(1))
            rows["latent", name].append(z_parts[key].float().mean(1))
        targets.append(torch.as_tensor(batch["target"]))
    return {k: torch.cat(v).cpu().numpy() for k, v in rows.items()}, torch.cat(targets).numpy().astype(int)


def fit_and_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  c: float = 1.0, standardise: bool = True) -> dict[str, float]:
    """One balanced logistic regression per genre on train, F1 at 0.5 on test. A genre with a single
    label value in train is predicted constant (its prior)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    per_genre = OneVsRestClassifier(make_pipeline(StandardScaler(), regression) if standardise else regression)
    with warnings.catch_warnings():  # a genre absent from the training films is predicted absent, and says so
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        probs = per_genre.fit(x_train, y_train).predict_proba(x_test)
    scores = metrics.multilabel_f1(probs, y_test, threshold=0.5)
    return {"micro_f1": float(scores["micro_f1"]), "macro_f1": float(scores["macro_f1_present"])}


def probe(model: MangoModel, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]], c: float = 1.0,
          batch_size: int = 32) -> dict[str, dict[str, dict[str, float]]]:
    """{level: {"both" | modality name: {"micro_f1", "macro_f1", "width"}}} on the test split."""
    tr, y_tr = pooled_tokens(model, train, batch_size)
    te, y_te = pooled_tokens(model, test, batch_size)
    names = [model.config.modality(k).name for k in model.plan.modalities]
    result: dict[str, dict[str, dict[str, float]]] = {}
    for level in LEVELS:
        sets = {"both": names, **{n: [n] for n in names}}
        result[level] = {}
        for label, parts in sets.items():
            x_tr = np.concatenate([tr[level, n] for n in parts], axis=1)
            x_te = np.concatenate([te[level, n] for n in parts], axis=1)
            # the backbone rows are already L2-normalised per modality, as in the probe
            scores = fit_and_score(x_tr, y_tr, x_te, y_te, c, standardise=level != "backbone")
            result[level][label] = {**scores, "width": int(x_tr.shape[1])}
    return result


def format_table(result: dict[str, dict[str, dict[str, float]]]) -> str:
    labels = list(next(iter(result.values())))
    lines = ["| depth | " + " | ".join(f"{n} (micro / macro F1)" for n in labels) + " |",
             "| --- |" + " --- |" * len(labels)]
    for level, row in result.items():
        cells = [f"{row[n]['micro_f1']:.3f} / {row[n]['macro_f1']:.3f} ({row[n]['width']} d)" for n in labels]
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mango.bench probe", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="genre checkpoint folder or Hub repo id")
    parser.add_argument("--root", required=True, help="the MM-IMDb-layout root (e.g. ../shared/data/movies)")
    parser.add_argument("--C", type=float, default=1.0, dest="c", help="inverse L2 strength of each regression")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from train.data import build_splits  # the training package's loaders: the splits it trained on

    model = MangoModel.from_pretrained(args.checkpoint)
    splits = build_splits("mmimdb", args.root, model.config.image_size, test_split="test")
    train = splits.train_eval if splits.train_eval is not None else splits.train  # read without augmentation
    result = probe(model, train, splits.test, args.c, args.batch_size)
    print(f"linear probes, fitted on {len(train)} training films, F1 on {len(splits.test)} test films "
          f"(C = {args.c:g}):\n")
    print(format_table(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"checkpoint": args.checkpoint, "C": args.c, "probes": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
