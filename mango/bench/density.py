"""Is the flow a density worth sampling from? Its bits/dim against two Gaussians, and how close its
decoded samples come to real images (issue 14).

    python -m mango.bench density CHECKPOINT --root DATA [--temperatures 0.3 0.5 0.7 0.9 1.0]
        [--samples 256] [--fit-samples 1000] [--test-samples N] [--feature-size 128] [--write-config]

1. Density. The encoder features F of `--fit-samples` training images (the training split of the
   checkpoint's run, validation included for a `--fit-on train+val` run, read without augmentation) fit a diagonal Gaussian and a Gaussian with a full
   channel covariance (`mango.density`). All three models score the features of the test split in
   bits/dim, -log p(F) / (N D ln 2), exactly as `MangoModel.forward_features`.
2. Samples. `--samples` random test images are the reference. Three kinds of feature sets are
   decoded by the checkpoint's decoders and compared with them:
   - reconstructions, decode(F) of those test images: the floor the decoders allow;
   - flow samples, F = G^-1(Z), Z ~ N(0, tau^2 I), per temperature tau;
   - channel-Gaussian samples, mean + tau * L eps (the better-sampling baseline: it keeps the channel
     correlations), decoded by the same decoders, per temperature.
   Distances: KID x100 (unbiased MMD^2 with the cubic kernel, averaged over `--kid-subsets` random
   halves; the number to trust below a few thousand images) and the Frechet distance (FD: biased
   upwards at a few hundred images; compare rows, not with published FIDs), in the 1280-d pooled
   features of ImageNet EfficientNet-Lite0 (`mango.metrics.EfficientNetFeatureExtractor`, images
   clipped to [0, 1], one channel replicated, resized to `--feature-size`).
   Columns: each decoded image modality against the real test images of the same modality;
   "joint" (two image modalities) against the concatenated features of both, so a pair whose
   halves look real apart but do not belong together counts as far; for translation, also the
   head's predicted target against the real test targets. Genre: the poster only (text has no
   decoder). Segmentation: also the total variation distance between the class shares the head
   predicts on the samples and the ground-truth class shares of the test split (the
   reconstruction row: the head's predictions on the real test images).
   The main column is "joint" when there are two image modalities, else the one image modality.
   The issue's target, stated per temperature: flow samples closer to the reconstructions than to
   the Gaussian's samples on that column, KID_flow - KID_recon < KID_gauss - KID_flow ("gap
   closed" > 50 %).
3. Temperatures are chosen without the test split: the same samples are also compared with
   `--samples` validation images, and the recommended temperature is the one whose flow samples
   have the lowest KID against those on the main column (likewise the Gaussian's own best, for
   "each at its best"); the test split's distances are then read at the chosen temperatures. (A
   `--fit-on train+val` run trained on its validation images: the choice still reads no test
   image.) `--write-config` stores it in the checkpoint's `config.json`
   (metadata.sampling.temperature), where the app reads its default.

Everything runs without gradients, on `--device` (default CPU; use one thread on a shared machine:
OMP_NUM_THREADS=1). Results go to `bench_results/density-<checkpoint>.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from mango import metrics
from mango.atomic import atomic_write_text
from mango.bench import refuse_below
from mango.density import ChannelGaussian, DiagonalGaussian, fit_baselines

TEMPERATURES = (0.3, 0.5, 0.7, 0.9, 1.0)
Log = Callable[[str], None]


@dataclass
class Options:
    """What the benchmark measures and on how many samples (the command line's options)."""

    temperatures: tuple[float, ...] = TEMPERATURES
    samples: int = 256  # generated per (source, temperature); also the number of reference test images
    fit_samples: int = 1000  # training images the Gaussians are fitted on
    test_samples: int | None = None  # test images scored in bits/dim (None: the whole split)
    feature_size: int | None = 128  # EfficientNet input side (None: images as they come)
    kid_subsets: int = 50
    batch_size: int = 32
    seed: int = 0
    jitter: float = 1e-6
    num_workers: int = 0
    percentiles: tuple[float, ...] = field(default=(5.0, 50.0, 95.0))


# ------------------------------------------------------------------------------------ data
def checkpoint_splits(model: Any, root: str | Path, dataset: str | None = None) -> Any:
    """The checkpoint's train/val/test splits, rebuilt from its recorded data description and run
    settings (dataset, image size, Taskonomy domains, validation fraction and seed)."""
    from train.data import build_splits

    config = model.config
    data = config.metadata.get("data") or {}
    training = config.metadata.get("training") or {}
    dataset = dataset or data.get("dataset") or training.get("dataset")
    if not dataset:
        raise ValueError("the checkpoint does not record its dataset: pass --dataset")
    inputs = tuple(data.get("inputs") or (config.a.name, config.b.name))
    target = data.get("target") or (config.target.name if config.target is not None else "rgb")
    return build_splits(dataset, root, config.image_size, inputs=inputs, target=target,
                        val_fraction=float(training.get("val_fraction", 0.1)), seed=int(training.get("seed", 0)),
                        test_split=data.get("test_split", "test"),
                        fit_on=data.get("fit_on") or training.get("fit_on") or "train")


def _subset_order(n: int, count: int | None, seed: int) -> list[int]:
    """`count` indices of 0..n-1 in a seeded random order (all n when count is None)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return order if count is None else order[: min(count, n)]


def _batches(dataset: Any, indices: list[int], batch_size: int, num_workers: int) -> Iterator[dict[str, Any]]:
    from torch.utils.data import DataLoader, Subset

    yield from DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=num_workers)


@torch.no_grad()
def encode_features(model: Any, dataset: Any, indices: list[int], batch_size: int = 32,
                    num_workers: int = 0) -> torch.Tensor:
    """Encoder features (len(indices), N, D) of dataset items, float32 on the CPU."""
    return torch.cat([model.encode(batch["a"], batch["b"]).float().cpu()
                      for batch in _batches(dataset, indices, batch_size, num_workers)])


# ------------------------------------------------------------------------------------ image sets
def image_columns(model: Any) -> list[str]:
    """The decoded image modalities (by name), in a then b order."""
    return [model.config.modality(k).name for k in model.plan.modalities if not model.config.modality(k).is_text]


def _target_column(model: Any) -> str | None:
    if model.config.task != "translation" or model.config.target is None:
        return None
    return f"{model.config.target.name} (head)"


def main_column(model: Any) -> str:
    images = image_columns(model)
    return "joint" if len(images) > 1 else images[0]


class FeatureSet:
    """EfficientNet features of one set of images, per column, gathered batch by batch."""

    def __init__(self, extractor: Callable[[torch.Tensor], torch.Tensor], columns: list[str]):
        self.extractor, self.columns = extractor, columns
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}

    def add(self, images: dict[str, torch.Tensor]) -> None:
        for column in self.columns:
            if column in images:
                self.parts[column].append(np.asarray(self.extractor(images[column]).cpu(), dtype=np.float64))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {c: np.concatenate(p) for c, p in self.parts.items() if p}
        singles = [c for c in out if not c.endswith("(head)")]
        if len(singles) > 1:
            out["joint"] = np.concatenate([out[c] for c in singles], axis=1)
        return out


def class_counts(logits: torch.Tensor, num_classes: int) -> np.ndarray:
    """Pixels per predicted class of segmentation logits (B, C, H, W)."""
    return np.bincount(logits.argmax(1).flatten().cpu().numpy(), minlength=num_classes)[:num_classes]


def label_counts(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Pixels per ground-truth class (255 = ignore left out)."""
    flat = labels.flatten().cpu().numpy().astype(np.int64)
    return np.bincount(flat[(flat >= 0) & (flat < num_classes)], minlength=num_classes)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """1/2 sum |p - q| of two histograms, each normalised to sum 1."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def compare(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray], kid_subsets: int,
            seed: int, subset_size: int | None = None) -> dict[str, dict[str, float]]:
    """KID x100 (mean and std over `kid_subsets` random subsets, by default halves of the smaller
    set) and FD per column present in both sets."""
    out = {}
    for column, real in reference.items():
        if column not in generated:
            continue
        fake = generated[column]
        size = subset_size or max(2, min(len(real), len(fake)) // 2)
        kid, kid_std = metrics.kernel_inception_distance(real, fake, num_subsets=kid_subsets, subset_size=size,
                                                         seed=seed, return_std=True)
        out[column] = {"kid": kid, "kid_std": kid_std, "fd": metrics.frechet_distance(real, fake)}
    return out


# ------------------------------------------------------------------------------------ measuring
@torch.no_grad()
def score_test_split(model: Any, dataset: Any, order: list[int], reference_count: int, sets: dict[str, FeatureSet],
                     options: Options, log: Log) -> dict[str, Any]:
    """One pass over the test images in `order`: features and flow bits/dim of all, class counts;
    the first `reference_count` also give the reference set and the reconstructions."""
    task, target_column = model.config.task, _target_column(model)
    features, bits, seen = [], [], 0
    gt_counts = pred_counts = None
    names = {k: model.config.modality(k).name for k in ("a", "b")}
    for batch in _batches(dataset, order, options.batch_size, options.num_workers):
        f = model.encode(batch["a"], batch["b"]).float()
        out = model.forward_features(f)
        features.append(f.cpu())
        if out.bits_per_dim is not None:
            bits.append(out.bits_per_dim.double().cpu())
        if task == "segmentation":
            c = model.config.num_classes
            g, p = label_counts(batch["target"], c), class_counts(out.output, c)
            gt_counts = g if gt_counts is None else gt_counts + g
            pred_counts = p if pred_counts is None else pred_counts + p
        keep = min(len(f), reference_count - seen)
        if keep > 0:
            real = {names[k]: batch[k][:keep] for k in ("a", "b") if isinstance(batch[k], torch.Tensor)}
            decoded = {name: pixels[:keep] for name, pixels in model.decode(f[:keep]).items()}
            if target_column is not None:
                real[target_column] = batch["target"][:keep]
                decoded[target_column] = out.output[:keep]
            sets["reference"].add(real)
            sets["reconstruction"].add(decoded)
        seen += len(f)
    return {"features": torch.cat(features), "bits": torch.cat(bits) if bits else None,
            "gt_counts": gt_counts, "pred_counts": pred_counts}


@torch.no_grad()
def real_images(model: Any, dataset: Any, order: list[int], options: Options, features: FeatureSet) -> None:
    """Add the EfficientNet features of the real images of `order` (and, for translation, of their
    targets) to `features`: a reference set."""
    names, target_column = {k: model.config.modality(k).name for k in ("a", "b")}, _target_column(model)
    for batch in _batches(dataset, order, options.batch_size, options.num_workers):
        real = {names[k]: batch[k] for k in ("a", "b") if isinstance(batch[k], torch.Tensor)}
        if target_column is not None:
            real[target_column] = batch["target"]
        features.add(real)


@torch.no_grad()
def sample_set(model: Any, source: str, baseline: ChannelGaussian | DiagonalGaussian, n: int, temperature: float,
               seed: int, options: Options, features: FeatureSet) -> dict[str, Any]:
    """Draw n features from the flow or the baseline at `temperature`, decode them (and run the
    head), add their EfficientNet features; returns their flow bits/dim and class counts."""
    generator = torch.Generator().manual_seed(seed)
    target_column = _target_column(model)
    bits, counts = [], None
    for start in range(0, n, options.batch_size):
        size = min(options.batch_size, n - start)
        if source == "flow":
            f = model.sample(size, temperature=temperature, generator=generator)["features"]
        else:
            f = baseline.sample(size, temperature=temperature, generator=generator).to(model.device)
        out = model.forward_features(f)
        images = model.decode(f)
        if target_column is not None:
            images[target_column] = out.output
        features.add(images)
        bits.append(out.bits_per_dim.double().cpu())
        if model.config.task == "segmentation":
            c = class_counts(out.output, model.config.num_classes)
            counts = c if counts is None else counts + c
    return {"bits": torch.cat(bits), "counts": counts}


def _summary(values: torch.Tensor, percentiles: Iterable[float]) -> dict[str, float]:
    v = values.double().numpy()
    return {"mean": float(v.mean()), **{f"p{p:g}": float(np.percentile(v, p)) for p in percentiles}}


def _gap_verdict(flow_kid: float, gauss_kid: float, recon_kid: float) -> dict[str, Any]:
    """The target's reading of three KIDs: the share of the Gaussian-to-reconstruction gap the flow
    closes, and whether its samples are closer to the reconstructions than to the Gaussian's."""
    gap = gauss_kid - recon_kid
    return {"kid_flow": flow_kid, "kid_gaussian": gauss_kid, "kid_reconstruction": recon_kid,
            "gap_closed": (gauss_kid - flow_kid) / gap if gap > 0 else None,
            "target_met": (flow_kid - recon_kid) < (gauss_kid - flow_kid)}


def measure(model: Any, splits: Any, options: Options | None = None, extractor: Callable | None = None,
            log: Log = lambda message: None) -> dict[str, Any]:
    """Both parts of the benchmark on a loaded model and its splits; returns the JSON-ready result.
    `extractor` maps images (B, C, H, W) in [0, 1] to features (default: EfficientNet-Lite0)."""
    options = options or Options()
    if model.flow is None:
        raise ValueError("the density benchmark needs a model with a flow")
    model.eval()
    started = time.perf_counter()
    if extractor is None:
        extractor = metrics.EfficientNetFeatureExtractor(options.feature_size, device=model.device)
    columns = image_columns(model) + ([_target_column(model)] if _target_column(model) else [])
    main = main_column(model)

    fit_order = _subset_order(len(splits.train_eval), options.fit_samples, options.seed)
    log(f"encoding {len(fit_order)} training images to fit the Gaussians")
    fit_features = encode_features(model, splits.train_eval, fit_order, options.batch_size, options.num_workers)
    baselines = fit_baselines(fit_features, options.jitter)

    test_order = _subset_order(len(splits.test), options.test_samples, options.seed + 1)
    log(f"scoring {len(test_order)} test images; the first {min(options.samples, len(test_order))} are the reference")
    reference_count = min(options.samples, len(test_order))
    sets = {"reference": FeatureSet(extractor, columns), "reconstruction": FeatureSet(extractor, columns)}
    test = score_test_split(model, splits.test, test_order, reference_count, sets, options, log)

    density = {"flow": _summary(test["bits"], options.percentiles)}
    for key, baseline in baselines.items():
        density[key] = {**_summary(baseline.bits_per_dim(test["features"]), options.percentiles),
                        "degenerate_dims": baseline.degenerate_dims, "jitter": baseline.jitter}
        density[key]["train_mean"] = float(baseline.bits_per_dim(fit_features).mean())

    reference = sets["reference"].arrays()
    val_order = _subset_order(len(splits.val), options.samples, options.seed + 2)
    if len(val_order) < 2:
        raise ValueError(f"the validation split has {len(splits.val)} image(s); choosing a temperature needs at "
                         "least 2 (KID compares sets of two or more)")
    log(f"reading {len(val_order)} validation images: the reference the temperatures are chosen against")
    selection_set = FeatureSet(extractor, columns)
    real_images(model, splits.val, val_order, options, selection_set)
    selection_reference = selection_set.arrays()
    rows: dict[str, dict[str, Any]] = {"reconstruction": {
        "flow_bits_per_dim": density["flow"],  # the real test features' own
        "distances": compare(reference, sets["reconstruction"].arrays(), options.kid_subsets, options.seed)}}
    if test["pred_counts"] is not None:
        rows["reconstruction"]["class_tv"] = total_variation(test["pred_counts"], test["gt_counts"])
    for temperature in options.temperatures:
        for source in ("flow", "gaussian"):
            log(f"sampling {options.samples} from the {source} at temperature {temperature:g}")
            found = FeatureSet(extractor, columns)
            drawn = sample_set(model, source, baselines["channel"], options.samples, temperature,
                               options.seed + (0 if source == "flow" else 1), options, found)
            generated = found.arrays()
            row: dict[str, Any] = {"source": source, "temperature": temperature,
                                   "flow_bits_per_dim": _summary(drawn["bits"], options.percentiles),
                                   "distances": compare(reference, generated, options.kid_subsets, options.seed),
                                   "validation_distances": compare(selection_reference, generated, options.kid_subsets,
                                                                   options.seed)}
            if drawn["counts"] is not None:
                row["class_tv"] = total_variation(drawn["counts"], test["gt_counts"])
            rows[f"{source} {temperature:g}"] = row

    verdicts = []
    recon_kid = rows["reconstruction"]["distances"][main]["kid"]
    for temperature in options.temperatures:
        flow_kid = rows[f"flow {temperature:g}"]["distances"][main]["kid"]
        gauss_kid = rows[f"gaussian {temperature:g}"]["distances"][main]["kid"]
        verdicts.append({"temperature": temperature, "flow_beats_gaussian": flow_kid < gauss_kid,
                         **_gap_verdict(flow_kid, gauss_kid, recon_kid)})

    def chosen(source: str) -> list[dict[str, Any]]:
        """That source's rows, best first by KID against the validation images (never the test split)."""
        return sorted((rows[f"{source} {t:g}"] for t in options.temperatures),
                      key=lambda r: r["validation_distances"][main]["kid"])

    flow_ranked, gauss_ranked = chosen("flow"), chosen("gaussian")
    best = next(v for v in verdicts if v["temperature"] == flow_ranked[0]["temperature"])
    # the stricter reading: each model at the temperature that suits it best (the Gaussian's samples
    # improve with temperature far more than the flow's do, so a same-temperature gap flatters the flow)
    gauss_best = next(v for v in verdicts if v["temperature"] == gauss_ranked[0]["temperature"])
    best_against_best = {"flow_temperature": best["temperature"], "gaussian_temperature": gauss_best["temperature"],
                         **_gap_verdict(best["kid_flow"], gauss_best["kid_gaussian"], recon_kid)}
    selection = [r["validation_distances"][main] for r in flow_ranked[:2]]
    noise = max(d["kid_std"] for d in selection)
    margin = selection[1]["kid"] - selection[0]["kid"] if len(selection) > 1 else None
    return {
        "task": model.config.task,
        "modalities": [model.config.a.name, model.config.b.name],
        "image_columns": columns,
        "main_column": main,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
        "feature_extractor": {"name": "EfficientNet-Lite0 (ImageNet), global average pool, 1280-d",
                              "input_size": options.feature_size,
                              "weights": getattr(extractor, "weights_fingerprint", None)},
        "fit_samples": len(fit_order),
        "test_samples": len(test_order),
        "reference_images": reference_count,
        "selection_images": len(val_order),
        "selection_split": "validation",
        "density_bits_per_dim": density,
        "flow_beats_both": all(density["flow"]["mean"] < density[k]["mean"] for k in baselines),
        "samples": rows,
        "verdicts": verdicts,
        "best_against_best": best_against_best,
        "recommended_temperature": best["temperature"],
        "recommended_validation_kid": selection[0]["kid"],
        # against the validation images, the runner-up's KID minus the best one's; within the subsets'
        # spread, no temperature is clearly better
        "recommendation_margin": margin,
        "recommendation_within_noise": margin is not None and margin < noise,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


# ------------------------------------------------------------------------------------ report
def _cell(d: dict[str, float] | None) -> str:
    if d is None:
        return f"{'-':>24}"
    return f"{d['kid']:>7.2f} ±{d['kid_std']:<5.2f}{d['fd']:>10.1f}"


def format_report(result: dict[str, Any]) -> str:
    """The printed table: density, then per row of samples KID x100 (± std) and FD per column."""
    d = result["density_bits_per_dim"]
    lines = [f"Density of the encoder features: bits/dim on {result['test_samples']} test images "
             f"(Gaussians fitted on {result['fit_samples']} training images; lower is better)"]
    lines.append(f"  {'model':<20}{'mean':>9}{'p5':>9}{'p50':>9}{'p95':>9}")
    labels = {"flow": "flow", "diagonal": "diagonal Gaussian", "channel": "channel Gaussian"}
    for key, label in labels.items():
        row = d[key]
        lines.append(f"  {label:<20}{row['mean']:>9.3f}{row['p5']:>9.3f}{row['p50']:>9.3f}{row['p95']:>9.3f}")
    for key in ("diagonal", "channel"):
        if d[key]["degenerate_dims"]:
            lines.append(f"  note: {d[key]['degenerate_dims']} dimensions of the {labels[key]} never vary in training; "
                         f"its density there is set by the variance floor (jitter {d[key]['jitter']:g}), not the data")
    lines.append("  the flow " + ("beats both Gaussians." if result["flow_beats_both"] else
                                  "does NOT beat both Gaussians: fix the density first (issue 14)."))
    columns = list(result["samples"]["reconstruction"]["distances"])
    tv = "class_tv" in result["samples"]["reconstruction"]
    lines.append("")
    lines.append(f"Sample quality against {result['reference_images']} real test images: KID x100 ± std and FD, "
                 f"EfficientNet-Lite0 features at {result['feature_extractor']['input_size']} px "
                 f"(main column: {result['main_column']})")
    lines.append(f"  {'features':<16}{'bits/dim':>9}" + "".join(f"{c:>24}" for c in columns)
                 + (f"{'class TV':>10}" if tv else ""))
    for name, row in result["samples"].items():
        cells = "".join(_cell(row["distances"].get(c)) for c in columns)
        lines.append(f"  {name:<16}{row['flow_bits_per_dim']['p50']:>9.3f}{cells}"
                     + (f"{row['class_tv']:>10.3f}" if tv else ""))
    lines.append("  bits/dim: the flow's median on those features (real: the test split). class TV: total variation "
                 "between predicted and ground-truth class shares." if tv else
                 "  bits/dim: the flow's median on those features (real: the test split).")
    lines.append("")
    lines.append(f"Target: flow samples closer to the reconstructions than to the Gaussian's samples "
                 f"(KID x100 on {result['main_column']}):")
    for v in result["verdicts"]:
        gap = "n/a" if v["gap_closed"] is None else f"{100 * v['gap_closed']:.0f} %"
        lines.append(f"  tau {v['temperature']:<4g}: flow {v['kid_flow']:.2f}, Gaussian {v['kid_gaussian']:.2f}, "
                     f"reconstructions {v['kid_reconstruction']:.2f}; gap closed {gap}: "
                     + ("target met" if v["target_met"] else
                        "flow beats the Gaussian, target not met" if v["flow_beats_gaussian"] else
                        "flow WORSE than the Gaussian"))
    bb = result.get("best_against_best")
    if bb is not None:
        gap = "n/a" if bb["gap_closed"] is None else f"{100 * bb['gap_closed']:.0f} %"
        lines.append(f"  each at its best: flow {bb['kid_flow']:.2f} (tau {bb['flow_temperature']:g}), Gaussian "
                     f"{bb['kid_gaussian']:.2f} (tau {bb['gaussian_temperature']:g}), each tau chosen on validation "
                     f"images; gap closed {gap}: "
                     + ("target met" if bb["target_met"] else "target not met"))
    lines.append(f"Recommended temperature: {result['recommended_temperature']:g} (lowest flow KID on "
                 f"{result['main_column']} against {result['selection_images']} validation images, not the test "
                 "images above; --write-config stores it for the app)"
                 + ("; the runner-up is within the KID's spread: no temperature is clearly better"
                    if result["recommendation_within_noise"] else ""))
    return "\n".join(lines)


def write_sampling_metadata(checkpoint: str | Path, result: dict[str, Any], command: str) -> Path:
    """Store the recommended temperature in a local checkpoint's config.json (metadata.sampling)."""
    from mango.models.checkpoint import write_metadata_entry

    best = next(v for v in result["verdicts"] if v["temperature"] == result["recommended_temperature"])
    return write_metadata_entry(checkpoint, "sampling", {
        "temperature": result["recommended_temperature"],
        "selected_by": (f"lowest KID x100 of flow samples against {result['selection_images']} validation images "
                        f"({result['main_column']}, EfficientNet-Lite0 features)"),
        "kid_flow_validation": result["recommended_validation_kid"],
        # on the test images, at that temperature
        "kid_flow": best["kid_flow"], "kid_gaussian": best["kid_gaussian"],
        "kid_reconstruction": best["kid_reconstruction"], "command": command,
    })


def result_name(checkpoint: str | Path) -> str:
    """A checkpoint's name in a result file: its folder's name, with its run's for a run's
    `final`/`best`/`last` (runs/a/final and runs/b/final must not overwrite each other)."""
    parts = [p for p in Path(str(checkpoint)).parts if p not in ("", ".", "..", "/")]
    if len(parts) >= 2 and parts[-1] in ("final", "best", "last"):
        return f"{parts[-2]}-{parts[-1]}"
    return parts[-1] if parts else "checkpoint"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mango.bench density", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    parser.add_argument("--root", required=True, help="the data set's root, in the layout the checkpoint trained on")
    parser.add_argument("--dataset", default=None, help="nyudv2/sunrgbd/taskonomy/mmimdb (default: the checkpoint's)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES))
    parser.add_argument("--samples", type=int, default=Options.samples,
                        help="samples per source and temperature, reference test images, and validation images "
                             "the temperatures are chosen against")
    parser.add_argument("--fit-samples", type=int, default=Options.fit_samples, help="training images for the Gaussians")
    parser.add_argument("--test-samples", type=int, default=None, help="test images for bits/dim (default: all)")
    parser.add_argument("--feature-size", type=int, default=Options.feature_size,
                        help="EfficientNet input side in pixels (0: images as they come)")
    parser.add_argument("--kid-subsets", type=int, default=Options.kid_subsets)
    parser.add_argument("--batch-size", type=int, default=Options.batch_size)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench_results/density-NAME.json)")
    parser.add_argument("--write-config", action="store_true",
                        help="store the recommended temperature in the checkpoint's config.json for the app")
    args = parser.parse_args(argv)
    refuse_below(parser, 2, ("--samples", args.samples), ("--fit-samples", args.fit_samples))  # KID: two a set
    refuse_below(parser, 1, ("--test-samples", args.test_samples), ("--kid-subsets", args.kid_subsets),
                 ("--batch-size", args.batch_size), ("--threads", args.threads))
    if args.write_config and not (Path(args.checkpoint) / "config.json").is_file():
        parser.error(f"--write-config needs a local checkpoint folder; {args.checkpoint} has no config.json")
    torch.set_num_threads(args.threads)

    from mango.data import DataError
    from mango.models import MangoModel
    from mango.models.errors import CheckpointError

    try:
        model = MangoModel.from_pretrained(args.checkpoint, device=args.device).eval()
        splits = checkpoint_splits(model, args.root, args.dataset)
    except (CheckpointError, DataError, ValueError) as e:
        parser.error(str(e))
    options = Options(temperatures=tuple(args.temperatures), samples=args.samples, fit_samples=args.fit_samples,
                      test_samples=args.test_samples, feature_size=args.feature_size or None,
                      kid_subsets=args.kid_subsets, batch_size=args.batch_size, seed=args.seed)
    result = measure(model, splits, options, log=lambda m: print(m, file=sys.stderr, flush=True))
    result["checkpoint"] = str(args.checkpoint)
    result["data"] = splits.description
    print(format_report(result))
    out = args.out or Path("bench_results") / f"density-{result_name(args.checkpoint)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2, default=_jsonable) + "\n")
    print(f"wrote {out}")
    if args.write_config:
        command = "python -m mango.bench density " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"wrote the recommended temperature to {write_sampling_metadata(args.checkpoint, result, command)}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
