"""Metrics against hand-computed cases and against scikit-learn / scipy where they overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score

from mango import metrics
from mango.metrics import (
    EfficientNetFeatureExtractor,
    InceptionFeatureExtractor,
    InceptionWeightsNotFound,
    confusion_matrix,
    fid_kid,
    frechet_distance,
    kernel_inception_distance,
    mae,
    mse,
    multilabel_f1,
    segmentation_scores,
)

# ----------------------------------------------------------------------------- segmentation


def test_confusion_matrix_hand_case():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])
    conf = confusion_matrix(pred, target, 3)
    # rows = ground truth, columns = prediction; the 255 pixel is ignored
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(confusion_matrix(torch.tensor(pred), torch.tensor(target), 3), conf)


def test_confusion_matrix_matches_sklearn_and_adds():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 6, (4, 20, 20))
    p = rng.integers(0, 6, (4, 20, 20))
    t[:, :2] = 255
    keep = t != 255
    ref = sk_confusion(t[keep], p[keep], labels=list(range(6)))
    np.testing.assert_array_equal(confusion_matrix(p, t, 6), ref)
    parts = sum(confusion_matrix(p[i], t[i], 6) for i in range(4))
    np.testing.assert_array_equal(parts, ref)


def test_confusion_matrix_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"target labels out of range 0\.\.2: \[7\]"):
        confusion_matrix(np.zeros(3, int), np.array([0, 7, 255]), 3)
    with pytest.raises(ValueError, match="pred labels out of range"):
        confusion_matrix(np.array([0, 3, 1]), np.zeros(3, int), 3)


def test_segmentation_scores_hand_case():
    # 4 classes: class 3 absent from GT and prediction -> excluded from every mean;
    conf = np.array([
        [3, 1, 0, 0],
        [0, 2, 2, 0],
        [0, 0, 0, 0],   # class 2 never in GT but predicted twice -> IoU 0 counts, no accuracy
        [0, 0, 0, 0],
    ])
    s = segmentation_scores(conf)
    assert s["pixel_acc"] == pytest.approx(5 / 8)
    np.testing.assert_allclose(s["acc"][:2], [3 / 4, 2 / 4])
    assert math.isnan(s["acc"][2]) and math.isnan(s["acc"][3])
    assert s["mean_acc"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    # IoU: class 0: 3 / (4 + 3 - 3) = 3/4; class 1: 2 / (4 + 3 - 2) = 2/5; class 2: 0 / (0 + 2 - 0) = 0
    np.testing.assert_allclose(s["iou"][:3], [3 / 4, 2 / 5, 0])
    assert math.isnan(s["iou"][3])
    assert s["miou"] == pytest.approx((3 / 4 + 2 / 5 + 0) / 3)


def test_segmentation_scores_perfect_and_jaccard():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 500)
    s = segmentation_scores(confusion_matrix(t, t, 5))
    assert s["pixel_acc"] == s["mean_acc"] == s["miou"] == 1.0
    from sklearn.metrics import jaccard_score

    p = np.where(rng.random(500) < 0.7, t, rng.integers(0, 5, 500))
    s = segmentation_scores(confusion_matrix(p, t, 5))
    np.testing.assert_allclose(s["iou"], jaccard_score(t, p, average=None, labels=list(range(5))))
    from sklearn.metrics import balanced_accuracy_score

    assert s["mean_acc"] == pytest.approx(balanced_accuracy_score(t, p))


# ----------------------------------------------------------------------------- multi-label F1


def test_multilabel_f1_hand_case():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    p = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.7], [0.6, 0.1, 0.2]])
    # pred: [[1,0,0],[0,1,1],[1,0,0]]: class 0 TP 2; class 1 TP 1; class 2 FN 1, FP 1
    r = multilabel_f1(p, y)
    assert r["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    np.testing.assert_allclose(r["f1"], [1, 1, 0])
    assert r["macro_f1"] == pytest.approx(2 / 3)


def test_multilabel_f1_matches_sklearn():
    rng = np.random.default_rng(2)
    y = (rng.random((64, 23)) < 0.15).astype(int)
    y[:, 5] = 0  # a class with no positives at all ...
    probs = rng.random((64, 23))
    probs[:, 5] = 0.1  # ... and never predicted: 0/0 -> 0, as sklearn with zero_division=0
    pred = (probs > 0.5).astype(int)
    r = multilabel_f1(torch.tensor(probs), torch.tensor(y))
    assert r["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert r["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    np.testing.assert_allclose(r["f1"], f1_score(y, pred, average=None, zero_division=0))
    hard = multilabel_f1(pred.astype(bool), y)  # hard predictions are taken as they are
    assert hard["macro_f1"] == pytest.approx(r["macro_f1"])
    assert multilabel_f1(probs, y, threshold=0.3)["micro_f1"] == pytest.approx(
        f1_score(y, probs > 0.3, average="micro", zero_division=0))


def test_mae_mse():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 1.0])
    assert mae(a, b) == pytest.approx((0.5 + 0 + 3) / 3)
    assert mse(torch.tensor(a), torch.tensor(b)) == pytest.approx((0.25 + 0 + 9) / 3)
    assert mae(a, b, mask=np.array([True, True, False])) == pytest.approx(0.25)
    for score in (mae, mse):  # a mean over nothing would be NaN, silently
        with pytest.raises(ValueError, match="selects no elements"):
            score(a, b, mask=np.zeros(3, bool))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tensors_are_read(dtype):
    """Outputs under autocast come as bf16/fp16 tensors; numpy has no bfloat16."""
    probs, y = torch.tensor([[0.75, 0.25], [0.5, 1.0]]), np.array([[1, 0], [0, 1]])
    half, full = multilabel_f1(probs.to(dtype), y), multilabel_f1(probs, y)
    assert (half["micro_f1"], half["macro_f1"]) == (full["micro_f1"], full["macro_f1"])
    assert mae(probs.to(dtype), probs) == 0.0


# ----------------------------------------------------------------------------- FID / KID


def _fid_reference(f1, f2):
    """The classic pytorch-fid / TTUR computation with scipy.linalg.sqrtm."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(3)
    f1 = rng.normal(size=(200, 16))
    f2 = rng.normal(size=(150, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    assert frechet_distance(f1, f2) == pytest.approx(_fid_reference(f1, f2), rel=1e-6)
    assert frechet_distance(f1, f1) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_with_fewer_samples_than_dimensions_matches_scipy_sqrtm():
    """Below D samples the covariances are singular; the sample-space SVD gives the same number."""
    rng = np.random.default_rng(6)
    f1 = rng.normal(size=(20, 32))
    f2 = rng.normal(size=(25, 32)) @ rng.normal(size=(32, 32)) * 0.5 + 0.2
    stats = metrics.frechet_distance_from_stats(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert frechet_distance(f1, f2) == pytest.approx(_fid_reference(f1, f2), rel=1e-6)
    assert frechet_distance(f1, f2) == pytest.approx(stats, rel=1e-8)
    assert frechet_distance(f1, f1) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_gaussians_closed_form():
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 for the sample statistics
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, (500, 1)), rng.normal(2, 3, (400, 1))
    expect = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expect, rel=1e-9)


def test_kid_hand_and_properties():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 1
    # one subset holding all samples = the unbiased MMD^2 with k = (x.y/4 + 1)^3
    k = lambda a, b: (a @ b.T / 4 + 1) ** 3
    m = 30
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    assert kernel_inception_distance(x, y, num_subsets=3, subset_size=30) == pytest.approx(100 * mmd)
    same = kernel_inception_distance(x, rng.normal(size=(30, 4)), num_subsets=20, subset_size=20)
    assert abs(same) < kernel_inception_distance(x, y, num_subsets=20, subset_size=20)
    mean, std = kernel_inception_distance(x, y, num_subsets=10, subset_size=10, return_std=True)
    assert std > 0


def test_kid_from_whole_kernels_equals_kid_per_subset(monkeypatch):
    """Small sets compute every kernel value once and index the subsets into them: same numbers."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(35, 6)) + 0.3
    fast = kernel_inception_distance(x, y, num_subsets=25, subset_size=15, seed=2, return_std=True)
    monkeypatch.setattr(metrics, "_KID_FULL_KERNEL_MAX", 0)
    slow = kernel_inception_distance(x, y, num_subsets=25, subset_size=15, seed=2, return_std=True)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


class RandomProjection(torch.nn.Module):
    """A small, fixed random feature extractor: average-pool then project (tests only)."""

    def __init__(self, dim=8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(3 * 4 * 4, dim, generator=g)

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1) @ self.w


def test_fid_kid_with_pluggable_extractor():
    g = torch.Generator().manual_seed(1)
    real = torch.rand(40, 3, 16, 16, generator=g)
    fake = (torch.rand(40, 3, 16, 16, generator=g) * 0.5 + 0.4).clamp(0, 1)
    ext = RandomProjection()
    r = fid_kid(real, fake, ext, batch_size=16, kid_subsets=10, kid_subset_size=20)
    fr, ff = ext(real).numpy().astype(np.float64), ext(fake).numpy().astype(np.float64)
    assert r["fid"] == pytest.approx(_fid_reference(fr, ff), rel=1e-4)
    assert r["kid"] > 0 and r["n_real"] == r["n_fake"] == 40
    same = fid_kid(real, real, ext, kid_subsets=5, kid_subset_size=20)
    assert same["fid"] == pytest.approx(0, abs=1e-4) and r["fid"] > 1
    batches = [real[:25], real[25:]]  # an iterable of batches works too
    assert fid_kid(batches, fake, ext, kid_subsets=10, kid_subset_size=20)["fid"] == pytest.approx(r["fid"], rel=1e-5)


def test_inception_weights_absent_message(tmp_path, monkeypatch):
    monkeypatch.delenv("MANGO_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(InceptionWeightsNotFound, match=r"pt_inception-2015-12-05-6726825d\.pth.*MANGO_INCEPTION_WEIGHTS"):
        InceptionFeatureExtractor()
    monkeypatch.setenv("MANGO_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        InceptionFeatureExtractor()


@pytest.mark.slow
def test_inception_extractor_loads_pytorch_fid_layout(tmp_path, monkeypatch):
    """A randomly initialised FID-InceptionV3 state dict (1008 classes) loads and gives 2048-d features.

    (Checked once by hand against pytorch-fid 0.3.0's InceptionV3 with the same state dict: identical.)"""
    from mango.metrics import _fid_inception_v3

    torch.manual_seed(0)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_fid_inception_v3().state_dict(), path)
    monkeypatch.setenv("MANGO_INCEPTION_WEIGHTS", str(path))
    ext = InceptionFeatureExtractor()
    assert ext.kind == "pytorch-fid"
    x = torch.rand(2, 3, 64, 64)
    f = ext(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    ext.train()  # e.g. as part of a module put in training mode: BatchNorm must keep its statistics
    assert not ext.net.training
    torch.testing.assert_close(ext(x), f)


# ----------------------------------------------------------------------------- EfficientNet-Lite0 features


@pytest.fixture(scope="module")
def efficientnet():
    return EfficientNetFeatureExtractor(size=64)


def test_efficientnet_features_pooled_and_input_conventions(efficientnet):
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(2, 1, 64, 64, generator=g)
    features = efficientnet(grey)
    assert features.shape == (2, 1280) and torch.isfinite(features).all() and (features >= 0).all()  # ReLU6, pooled
    torch.testing.assert_close(features, efficientnet(grey.expand(-1, 3, -1, -1)))  # one channel = replicated
    torch.testing.assert_close(efficientnet(grey * 3 - 1), efficientnet((grey * 3 - 1).clamp(0, 1)))  # clipped, as shown
    big = torch.rand(2, 3, 96, 96, generator=g)
    resized = torch.nn.functional.interpolate(big, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(efficientnet(big), efficientnet(resized))
    efficientnet.train()
    torch.testing.assert_close(efficientnet(grey), features)  # BatchNorm stays in eval mode
    assert not any(p.requires_grad for p in efficientnet.parameters())


def test_efficientnet_features_tell_apart_what_kid_should(efficientnet):
    """Smooth gradients and noise differ in EfficientNet space far more than two draws of one kind."""
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64)
    smooth = [(ramp * torch.rand(1, 3, 1, 1, generator=g)).expand(1, 3, 64, 64) for _ in range(24)]
    smooth_a, smooth_b = torch.cat(smooth[:12]), torch.cat(smooth[12:])
    noise = torch.rand(12, 3, 64, 64, generator=g)
    fa, fb, fn = (efficientnet(x).double().numpy() for x in (smooth_a, smooth_b, noise))
    same = kernel_inception_distance(fa, fb, num_subsets=5, subset_size=12)
    apart = kernel_inception_distance(fa, fn, num_subsets=5, subset_size=12)
    assert apart > 10 * abs(same)


def test_macro_f1_present_averages_only_classes_with_a_positive_target():
    y = np.array([[1, 0, 0], [0, 1, 0]])
    p = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)  # class 2: predicted, never a target (F1 0)
    r = metrics.multilabel_f1(p, y)
    assert r["macro_f1_present"] == pytest.approx(1.0)
    assert r["macro_f1"] == pytest.approx(2 / 3)


def test_probability_at_the_threshold_is_negative():
    assert metrics.multilabel_f1(np.array([[0.5]]), np.array([[1]]))["micro_f1"] == 0.0
