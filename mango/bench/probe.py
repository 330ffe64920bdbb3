"""Linear probes on a genre checkpoint: how much of the genre signal survives each step from the
frozen backbones to the head's input.

    python -m mango.bench probe CHECKPOINT --root ../shared/data/movies [--C 1.0] [--bootstrap 2000]
        [--fit-on train+val]

One logistic regression per genre (scikit-learn, balanced class weights, threshold 0.5), fitted on
the training split (or on train + dev, as the probe that set the genre targets was) and scored on
the test split (micro and macro F1 over the genres present), on mean-pooled tokens at three depths:

- ``backbone``: the encoders' backbone outputs (a text modality pooled over its word pieces), each
  modality L2-normalised: the issue-10 probe that set the genre targets;
- ``features``: F, after the per-token projections to D (what the flow reads);
- ``latent``: Z, after the flow (what the head reads).

Each depth for both modalities together and for each alone, so a drop between two depths says
which step loses the genre information (for example a projection that is too narrow).
``--bootstrap N`` also scores the checkpoint's own head against the backbone probe on the same
test films, resampled together, since 245 films make either score alone noisy.
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
from mango.atomic import atomic_write_text
from mango.bench import refuse_below
from mango.data import DataError
from mango.models import CheckpointError, MangoModel
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


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float = 1.0,
              standardise: bool = True) -> np.ndarray:
    """One balanced logistic regression per genre on train: (N test, genres) probabilities. A genre
    with a single label value in train is predicted constant (its prior)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    per_genre = OneVsRestClassifier(make_pipeline(StandardScaler(), regression) if standardise else regression)
    with warnings.catch_warnings():  # a genre absent from the training films is predicted absent, and says so
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        return per_genre.fit(x_train, y_train).predict_proba(x_test)


def _f1(probs: np.ndarray, targets: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    scores = metrics.multilabel_f1(probs, targets, threshold=threshold)
    return {"micro_f1": float(scores["micro_f1"]), "macro_f1": float(scores["macro_f1_present"])}


def fit_and_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  c: float = 1.0, standardise: bool = True) -> dict[str, float]:
    """`fit_probe`, then micro and macro F1 (genres present) at 0.5 on test."""
    return _f1(fit_probe(x_train, y_train, x_test, c, standardise), y_test, 0.5)


Pooled = tuple[dict[tuple[str, str], np.ndarray], np.ndarray, dict[tuple[str, str], np.ndarray], np.ndarray]


def pooled_splits(model: MangoModel, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                  batch_size: int = 32) -> Pooled:
    """`pooled_tokens` of train and test, computed once for `probe` and `head_versus_probe`."""
    return (*pooled_tokens(model, train, batch_size), *pooled_tokens(model, test, batch_size))


def probe(model: MangoModel, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]], c: float = 1.0,
          batch_size: int = 32, pooled: Pooled | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{level: {"both" | modality name: {"micro_f1", "macro_f1", "width"}}} on the test split."""
    tr, y_tr, te, y_te = pooled if pooled is not None else pooled_splits(model, train, test, batch_size)
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


@torch.no_grad()
def head_probabilities(model: MangoModel, dataset: Sequence[dict[str, Any]], batch_size: int = 32) -> np.ndarray:
    """The checkpoint's own genre probabilities (N, genres), in the dataset's order."""
    model.eval()
    probs = [torch.sigmoid(model(batch["a"], batch["b"]).output.float()).cpu()
             for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)]
    return torch.cat(probs).numpy()


def paired_bootstrap(probs_a: np.ndarray, threshold_a: float | np.ndarray, probs_b: np.ndarray,
                     threshold_b: float | np.ndarray, targets: np.ndarray, resamples: int = 2000,
                     seed: int = 0) -> dict[str, Any]:
    """A's F1 minus B's on the same films, resampled with replacement: each metric's difference on
    the whole set, its 95 % interval, and the share of resamples where A is at least as good.
    Pairing keeps the films both get right or wrong from widening the interval."""
    if not (len(probs_a) == len(probs_b) == len(targets)):
        raise ValueError(f"{len(probs_a)}, {len(probs_b)} and {len(targets)} films: both must score the same films")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    keys = ("micro_f1", "macro_f1")
    draws = {(side, k): [] for side in "ab" for k in keys}
    for _ in range(resamples):
        i = rng.integers(0, len(targets), len(targets))
        for side, scores in (("a", _f1(probs_a[i], targets[i], threshold_a)), ("b", _f1(probs_b[i], targets[i], threshold_b))):
            for k in keys:
                draws[side, k].append(scores[k])
    a, b = _f1(probs_a, targets, threshold_a), _f1(probs_b, targets, threshold_b)

    def interval(values) -> list[float]:
        return [float(v) for v in np.percentile(values, [2.5, 97.5])]

    result: dict[str, Any] = {"resamples": resamples, "a": a, "b": b}
    for k in keys:
        diffs = np.asarray(draws["a", k]) - np.asarray(draws["b", k])
        result[k] = {"difference": a[k] - b[k], "interval_95": interval(diffs),
                     "a_at_least_b": float(np.mean(diffs >= 0)),
                     "a_interval_95": interval(draws["a", k]), "b_interval_95": interval(draws["b", k])}
    return result


def head_versus_probe(model: MangoModel, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                      c: float = 1.0, resamples: int = 2000, batch_size: int = 32, seed: int = 0,
                      pooled: Pooled | None = None) -> dict[str, Any]:
    """The checkpoint's head (at its stored thresholds) against the backbone probe of both
    modalities (the issue-10 target), paired over the test films."""
    tr, y_tr, te, y_te = pooled if pooled is not None else pooled_splits(model, train, test, batch_size)
    names = [model.config.modality(k).name for k in model.plan.modalities]
    probe_probs = fit_probe(np.concatenate([tr["backbone", n] for n in names], axis=1), y_tr,
                            np.concatenate([te["backbone", n] for n in names], axis=1), c, standardise=False)
    head = head_probabilities(model, test, batch_size)
    return paired_bootstrap(head, np.asarray(model.config.thresholds()), probe_probs, 0.5, y_te, resamples, seed)


def format_bootstrap(result: dict[str, Any]) -> str:
    lines = [f"the checkpoint's head minus the backbone probe, same test films ({result['resamples']} paired resamples):"]
    for k in ("micro_f1", "macro_f1"):
        r = result[k]
        lo, hi = r["interval_95"]
        (a_lo, a_hi), (b_lo, b_hi) = r["a_interval_95"], r["b_interval_95"]
        lines.append(f"  {k}: {result['a'][k]:.3f} [{a_lo:.3f}, {a_hi:.3f}] - {result['b'][k]:.3f} [{b_lo:.3f}, "
                     f"{b_hi:.3f}] = {r['difference']:+.3f}, 95 % interval [{lo:+.3f}, {hi:+.3f}], "
                     f"head at least as good in {100 * r['a_at_least_b']:.0f} % of resamples")
    return "\n".join(lines)


def format_table(result: dict[str, dict[str, dict[str, float]]]) -> str:
    labels = list(next(iter(result.values())))
    lines = ["| depth | " + " | ".join(f"{n} (micro / macro F1)" for n in labels) + " |",
             "| --- |" + " --- |" * len(labels)]
    for level, row in result.items():
        cells = [f"{row[n]['micro_f1']:.3f} / {row[n]['macro_f1']:.3f} ({row[n]['width']} d)" for n in labels]
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from train.data import FIT_ON, build_splits  # the training package's loaders: the splits it trained on

    parser = argparse.ArgumentParser(prog="python -m mango.bench probe", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="genre checkpoint folder or Hub repo id")
    parser.add_argument("--root", required=True, help="the MM-IMDb-layout root (e.g. ../shared/data/movies)")
    parser.add_argument("--C", type=float, default=1.0, dest="c", help="inverse L2 strength of each regression")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="also compare the checkpoint's head with the backbone probe on the same test "
                             "films: a paired bootstrap over N resamples (e.g. 2000; 0: off)")
    parser.add_argument("--fit-on", default="train", choices=FIT_ON,
                        help="fit the probes on the training films, or on training + dev films (the protocol "
                             "of the probe that set the genre targets)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    # refused now, not after minutes of pooling and probes (scikit-learn would refuse --C 0 only then)
    if not args.c > 0:  # nan too
        parser.error(f"--C must be a positive number, got {args.c:g}")
    refuse_below(parser, 1, ("--batch-size", args.batch_size), ("--threads", args.threads))
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be 0 (off) or a number of resamples, got {args.bootstrap}")
    torch.set_num_threads(args.threads)
    try:  # a checkpoint of another task would fail only after the films are read
        model = MangoModel.from_pretrained(args.checkpoint, expected_task="genre")
        splits = build_splits("mmimdb", args.root, model.config.image_size, test_split="test", fit_on=args.fit_on)
    except (CheckpointError, DataError) as err:
        parser.error(str(err))
    genres, data_genres = tuple(model.config.class_names), tuple(splits.class_names)
    if genres != data_genres:  # the head's column k would be scored against another genre's labels
        parser.error(f"the checkpoint's {len(genres)} genres ({', '.join(genres[:3])}, ...) are not the data's "
                     f"{len(data_genres)} ({', '.join(data_genres[:3])}, ...)")
    train = splits.train_eval if splits.train_eval is not None else splits.train  # read without augmentation
    pooled = pooled_splits(model, train, splits.test, args.batch_size)
    result = probe(model, train, splits.test, args.c, args.batch_size, pooled=pooled)
    print(f"linear probes, fitted on {len(train)} films ({args.fit_on}), F1 on {len(splits.test)} test films "
          f"(C = {args.c:g}):\n")
    print(format_table(result))
    report: dict[str, Any] = {"checkpoint": args.checkpoint, "C": args.c, "fit_on": args.fit_on,
                              "fit_samples": len(train), "probes": result}
    _write_report(report, args.out)  # the probe table is kept if the bootstrap fails or is interrupted
    if args.bootstrap:
        report["head_versus_probe"] = head_versus_probe(model, train, splits.test, args.c, args.bootstrap,
                                                        args.batch_size, pooled=pooled)
        print("\n" + format_bootstrap(report["head_versus_probe"]))
        _write_report(report, args.out)
    return 0


def _write_report(report: dict[str, Any], out: Path | None) -> None:
    """The report as JSON at ``out`` (if given), through a temporary file: never half written."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
