"""`python -m mango.bench density` on tiny models: it runs for each task, agrees with the trainer's
evaluation, and its distances agree with a scipy / hand reference."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import cityblock

from mango.bench import density as bench
from mango.data.constants import SYNTHROOMS_CLASSES
from mango.data.synthrooms import write_dataset
from mango.models import MangoConfig, MangoModel

TINY_MODEL = dict(image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1, decoder_width=32,
                  num_blocks=1, head_width=32, text_width=32, text_layers=1, text_context_length=16)
TINY_RUN = bench.Options(temperatures=(0.7, 1.0), samples=6, fit_samples=8, feature_size=32, kid_subsets=3, batch_size=4)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synthrooms(tmp_path_factory) -> Path:
    """16 scenes at 32 px in both layouts: 8 train, 8 test."""
    out = tmp_path_factory.mktemp("synthrooms")
    write_dataset(out, 16, 32, seed=5, test_fraction=0.5, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def extractor():
    from mango.metrics import EfficientNetFeatureExtractor

    return EfficientNetFeatureExtractor(size=32)


def tiny_model(task: str, **metadata) -> MangoModel:
    torch.manual_seed(0)
    extra = {"class_names": SYNTHROOMS_CLASSES} if task == "segmentation" else {}
    return MangoModel(MangoConfig.preset("tiny", task, **TINY_MODEL, **extra, metadata=metadata)).eval()


def _films(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    plots = ["A storm at sea.", "Two friends open a bakery in a small town.", "A detective's last case."]
    return [{"a": torch.rand(3, 32, 32, generator=g), "b": plots[i % 3], "target": torch.zeros(23), "id": str(i)}
            for i in range(n)]


# ------------------------------------------------------------------------------------ distances
def _naive_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 x100 with k(a, b) = (a.b / D + 1)^3, written out pair by pair."""
    k = lambda a, b: (a @ b / x.shape[1] + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return 100 * (xx + yy - 2 * xy)


def _scipy_fd(x: np.ndarray, y: np.ndarray) -> float:
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real))


def test_distances_match_scipy_and_hand_references():
    rng = np.random.default_rng(0)
    images = {"rgb": rng.normal(size=(12, 10)), "depth": rng.normal(size=(12, 6))}
    fakes = {"rgb": rng.normal(size=(12, 10)) * 1.3 + 0.2, "depth": rng.normal(size=(12, 6)) - 0.4}
    real_set, fake_set = bench.FeatureSet(lambda x: x, ["rgb", "depth"]), bench.FeatureSet(lambda x: x, ["rgb", "depth"])
    for rows in (slice(0, 5), slice(5, None)):  # gathered batch by batch
        real_set.add({k: torch.from_numpy(v[rows]) for k, v in images.items()})
        fake_set.add({k: torch.from_numpy(v[rows]) for k, v in fakes.items()})
    real, fake = real_set.arrays(), fake_set.arrays()
    np.testing.assert_array_equal(real["joint"], np.concatenate([images["rgb"], images["depth"]], axis=1))
    found = bench.compare(real, fake, kid_subsets=1, seed=0, subset_size=12)  # one subset: every sample
    for column in ("rgb", "depth", "joint"):  # joint: 16 dimensions from 12 samples, the few-sample FD path
        assert found[column]["kid"] == pytest.approx(_naive_kid(real[column], fake[column]), rel=1e-9)
        assert found[column]["fd"] == pytest.approx(_scipy_fd(real[column], fake[column]), rel=1e-6)
    p, q = np.array([3, 1, 0, 6]), np.array([1, 1, 2, 0])
    assert bench.total_variation(p, q) == pytest.approx(cityblock(p / p.sum(), q / q.sum()) / 2)
    assert bench.total_variation(p, 2 * p) == 0


# ------------------------------------------------------------------------------------ end to end
def test_benchmark_runs_on_a_tiny_segmentation_checkpoint(tmp_path, synthrooms, capsys):
    from train.data import build_splits
    from train.evaluate import evaluate

    model = tiny_model("segmentation", data={"dataset": "nyudv2", "image_size": 32}, training={"val_fraction": 0.25})
    model.save_pretrained(tmp_path / "ckpt")
    before = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    out = tmp_path / "density.json"
    argv = [str(tmp_path / "ckpt"), "--root", str(synthrooms / "nyudv2"), "--temperatures", "0.7", "1.0",
            "--samples", "6", "--fit-samples", "8", "--feature-size", "32", "--kid-subsets", "3", "--batch-size", "4",
            "--out", str(out), "--write-config"]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "channel Gaussian" in printed and "Recommended temperature" in printed and "class TV" in printed
    result = json.loads(out.read_text())
    assert result["main_column"] == "joint" and result["image_columns"] == ["rgb", "depth"]
    assert set(result["samples"]) == {"reconstruction", "flow 0.7", "gaussian 0.7", "flow 1", "gaussian 1"}
    for row in result["samples"].values():
        assert set(row["distances"]) == {"rgb", "depth", "joint"} and 0 <= row["class_tv"] <= 1
        assert all(np.isfinite([d["kid"], d["kid_std"], d["fd"]]).all() for d in row["distances"].values())
    assert result["recommended_temperature"] in (0.7, 1.0)
    # the flow's test bits/dim are the trainer's evaluation of the same split, percentiles included
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    assert result["reference_images"] == 6 and result["fit_samples"] == min(8, len(splits.train_eval)) == 6
    assert result["selection_images"] == len(splits.val) == 2
    evaluated = evaluate(MangoModel.from_pretrained(tmp_path / "ckpt").eval(), splits.test, batch_size=4)
    flow = result["density_bits_per_dim"]["flow"]
    assert result["test_samples"] == len(splits.test) == evaluated["samples"]
    assert flow["mean"] == pytest.approx(evaluated["bits_per_dim"], abs=1e-5)
    for q in (5, 50, 95):
        assert flow[f"p{q}"] == pytest.approx(evaluated[f"bits_per_dim_p{q}"], abs=1e-5)
    assert evaluated["bits_per_dim_p5"] <= evaluated["bits_per_dim_p50"] <= evaluated["bits_per_dim_p95"]
    # --write-config left the recommendation where the app reads it
    after = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    sampling = after["metadata"].pop("sampling")
    assert sampling["temperature"] == result["recommended_temperature"] and "mango.bench density" in sampling["command"]
    assert "validation images" in sampling["selected_by"]
    assert after == before  # nothing else in the file changed
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]


def test_benchmark_on_a_tiny_translation_model_adds_the_head_column(synthrooms, extractor):
    model = tiny_model("translation", training={"val_fraction": 0.25})
    splits = bench.checkpoint_splits(model, synthrooms / "taskonomy", dataset="taskonomy")
    result = bench.measure(model, splits, TINY_RUN, extractor=extractor)
    assert result["image_columns"] == ["reshading", "edge_texture", "rgb (head)"]
    for row in result["samples"].values():
        assert set(row["distances"]) == {"reshading", "edge_texture", "rgb (head)", "joint"} and "class_tv" not in row
    assert len(result["verdicts"]) == 2 and "Target:" in bench.format_report(result)
    # each model at its own best temperature, chosen against validation images, read on the test images
    bb, verdicts, main = result["best_against_best"], result["verdicts"], result["main_column"]

    def chosen(source: str) -> float:
        rows = [r for r in result["samples"].values() if r.get("source") == source]
        return min(rows, key=lambda r: r["validation_distances"][main]["kid"])["temperature"]

    assert bb["flow_temperature"] == result["recommended_temperature"] == chosen("flow")
    assert bb["gaussian_temperature"] == chosen("gaussian")
    at = {v["temperature"]: v for v in verdicts}
    assert bb["kid_flow"] == at[bb["flow_temperature"]]["kid_flow"]
    assert bb["kid_gaussian"] == at[bb["gaussian_temperature"]]["kid_gaussian"]
    gap = bb["kid_gaussian"] - bb["kid_reconstruction"]
    if gap > 0:
        assert bb["gap_closed"] == pytest.approx((bb["kid_gaussian"] - bb["kid_flow"]) / gap)
    assert bb["target_met"] == (bb["kid_flow"] - bb["kid_reconstruction"] < bb["kid_gaussian"] - bb["kid_flow"])
    assert "each at its best" in bench.format_report(result)


def test_benchmark_on_a_tiny_genre_model_compares_posters_only(extractor):
    model = tiny_model("genre")
    result = bench.measure(model, SimpleNamespace(train_eval=_films(8, 0), val=_films(3, 1), test=_films(5, 2)),
                           TINY_RUN, extractor=extractor)
    assert result["main_column"] == "poster" and result["reference_images"] == 5
    assert all(set(row["distances"]) == {"poster"} for row in result["samples"].values())
    d = result["density_bits_per_dim"]
    assert d["diagonal"]["degenerate_dims"] > 0  # text pad positions are exactly zero in every film
    assert np.isfinite([d[k]["mean"] for k in ("flow", "diagonal", "channel")]).all()


class _Counted(torch.utils.data.Dataset):
    """A split that counts which of its items were read."""

    def __init__(self, items: list[dict]):
        self.items, self.read = items, set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        self.read.add(i)
        return self.items[i]


def test_the_temperature_is_chosen_without_the_test_images(extractor):
    """Temperatures were chosen by KID against the test images; now against validation images, and
    the same test images, swapped for others, change the reported distances but not the choice."""
    g = torch.Generator().manual_seed(1)

    def films(n: int, shift: float = 0.0) -> list[dict]:
        return [{"a": (torch.rand(3, 32, 32, generator=g) + shift).clamp(0, 1), "b": "A storm at sea.",
                 "target": torch.zeros(23), "id": str(i)} for i in range(n)]

    model = tiny_model("genre")
    train, val = films(8), _Counted(films(6))
    first = bench.measure(model, SimpleNamespace(train_eval=train, val=val, test=films(6)), TINY_RUN, extractor=extractor)
    assert val.read == set(range(6)) and first["selection_images"] == 6
    other = bench.measure(model, SimpleNamespace(train_eval=train, val=val, test=films(6, shift=0.4)), TINY_RUN,
                          extractor=extractor)
    assert other["samples"]["flow 0.7"]["distances"] != first["samples"]["flow 0.7"]["distances"]
    assert other["recommended_temperature"] == first["recommended_temperature"]
    assert other["best_against_best"]["gaussian_temperature"] == first["best_against_best"]["gaussian_temperature"]
    assert other["recommended_validation_kid"] == first["recommended_validation_kid"]


def test_a_train_plus_val_checkpoint_fits_its_gaussians_on_what_the_flow_was_fitted_on(synthrooms):
    model = tiny_model("segmentation", data={"dataset": "nyudv2", "fit_on": "train+val"}, training={"val_fraction": 0.25})
    splits = bench.checkpoint_splits(model, synthrooms / "nyudv2")
    assert len(splits.train_eval) == 8 and splits.description["fit_on"] == "train+val"
    held_out = bench.checkpoint_splits(tiny_model("segmentation", data={"dataset": "nyudv2"}, training={"val_fraction": 0.25}),
                                       synthrooms / "nyudv2")
    assert len(held_out.train_eval) == 6


@pytest.mark.parametrize("option, value", [("--samples", "1"), ("--fit-samples", "0"), ("--test-samples", "-5"),
                                           ("--kid-subsets", "0"), ("--batch-size", "0")])
def test_counts_that_cannot_work_are_refused_up_front(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "missing"), "--root", str(tmp_path), option, value])
    assert f"{option} must be at least" in capsys.readouterr().err


def test_a_missing_checkpoint_or_data_is_a_message(tmp_path, synthrooms, capsys):
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "missing"), "--root", str(synthrooms / "nyudv2")])
    assert "Traceback" not in capsys.readouterr().err
    tiny_model("segmentation", data={"dataset": "nyudv2"}).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "ckpt"), "--root", str(tmp_path / "nowhere")])
    assert "nowhere" in capsys.readouterr().err


def test_result_files_of_two_runs_do_not_overwrite_each_other():
    assert bench.result_name("runs/a/final") == "a-final" != bench.result_name("runs/b/final")
    assert bench.result_name("assets/checkpoints/segmentation") == "segmentation"
    assert bench.result_name("owner/repo") == "repo"


def test_the_gaussians_training_density_is_read_on_their_training_features_and_printed_in_order(extractor):
    """train_mean (against the test mean: is a Gaussian overfitted?) must be read on the features it
    was fitted on; the printed percentiles must sit under their headers."""
    model = tiny_model("genre")
    splits = SimpleNamespace(train_eval=_films(8, 1), val=_films(3, 2), test=_films(5, 3))
    result = bench.measure(model, splits, TINY_RUN, extractor=extractor)
    fit = bench.encode_features(model, splits.train_eval, bench._subset_order(8, TINY_RUN.fit_samples, TINY_RUN.seed))
    for key, baseline in bench.fit_baselines(fit, TINY_RUN.jitter).items():
        expected = float(baseline.bits_per_dim(fit).mean())
        assert result["density_bits_per_dim"][key]["train_mean"] == pytest.approx(expected, rel=1e-6)
    lines = bench.format_report(result).splitlines()
    assert lines[1].split() == ["model", "mean", "p5", "p50", "p95"]
    for label, key in (("flow", "flow"), ("diagonal Gaussian", "diagonal"), ("channel Gaussian", "channel")):
        printed = next(line for line in lines if line.startswith(f"  {label}  "))
        d = result["density_bits_per_dim"][key]
        assert [float(v) for v in printed[22:].split()] == pytest.approx([d["mean"], d["p5"], d["p50"], d["p95"]],
                                                                          abs=1e-3)


def test_every_class_tv_is_against_the_ground_truth_shares_of_the_test_split(synthrooms, extractor, monkeypatch):
    """Samples' predicted class shares are compared with the test labels' shares, as the
    reconstruction row is; against the head's own predictions they would only measure drift."""
    model = tiny_model("segmentation", data={"dataset": "nyudv2"}, training={"val_fraction": 0.25})
    splits = bench.checkpoint_splits(model, synthrooms / "nyudv2")
    compared = []
    real = bench.total_variation
    monkeypatch.setattr(bench, "total_variation", lambda p, q: compared.append(np.asarray(q)) or real(p, q))
    bench.measure(model, splits, TINY_RUN, extractor=extractor)
    truth = sum(bench.label_counts(splits.test[i]["target"], model.config.num_classes) for i in range(len(splits.test)))
    assert len(compared) == 1 + 2 * len(TINY_RUN.temperatures)
    for q in compared:
        np.testing.assert_array_equal(q, truth)


def test_class_shares_leave_the_ignore_label_out():
    """NYUDv2's unlabelled pixels are 255: they are no class, and a 256-bin histogram would not
    even compare with the head's."""
    labels = torch.tensor([[0, 1, 255], [1, 255, 2]])
    np.testing.assert_array_equal(bench.label_counts(labels, 3), [1, 2, 1])
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2, 0, 0] = logits[0, 1, 1, :] = 1.0
    np.testing.assert_array_equal(bench.class_counts(logits, 3), [1, 2, 1])


def test_the_joint_column_joins_the_decoded_modalities_not_the_head_s_target():
    """For translation, 'joint' is the two input modalities decoded together; the head's predicted
    target has its own column."""
    found = bench.FeatureSet(lambda x: x, ["reshading", "edge_texture", "rgb (head)"])
    found.add({"reshading": torch.ones(3, 4), "edge_texture": torch.zeros(3, 2), "rgb (head)": torch.full((3, 5), 2.0)})
    arrays = found.arrays()
    assert set(arrays) == {"reshading", "edge_texture", "rgb (head)", "joint"}
    np.testing.assert_array_equal(arrays["joint"], np.concatenate([arrays["reshading"], arrays["edge_texture"]], axis=1))


def test_write_config_stores_the_kids_of_the_recommended_temperature(tmp_path):
    """The app shows these KIDs beside its default temperature: they must be that temperature's."""
    (tmp_path / "config.json").write_text(json.dumps({"task": "genre", "metadata": {"preset": "tiny"}}))
    result = {"recommended_temperature": 0.7, "selection_images": 6, "main_column": "poster",
              "recommended_validation_kid": 1.5,
              "verdicts": [{"temperature": 0.5, "kid_flow": 9.0, "kid_gaussian": 8.0, "kid_reconstruction": 1.0},
                           {"temperature": 0.7, "kid_flow": 3.0, "kid_gaussian": 4.0, "kid_reconstruction": 1.0}]}
    bench.write_sampling_metadata(tmp_path, result, "python -m mango.bench density ckpt")
    config = json.loads((tmp_path / "config.json").read_text())
    sampling = config["metadata"]["sampling"]
    assert sampling["temperature"] == 0.7 and sampling["kid_flow_validation"] == 1.5
    assert (sampling["kid_flow"], sampling["kid_gaussian"], sampling["kid_reconstruction"]) == (3.0, 4.0, 1.0)
    assert config["metadata"]["preset"] == "tiny" and config["task"] == "genre"


def test_the_command_line_s_numbers_reach_the_benchmark(tmp_path, synthrooms, monkeypatch):
    """Each option is passed on: --seed picks the subsets and the samples, so reruns can be varied."""
    tiny_model("segmentation", data={"dataset": "nyudv2"}, training={"val_fraction": 0.25}).save_pretrained(tmp_path / "c")

    class Stop(Exception):
        pass

    seen = {}

    def measure(model, splits, options, log):
        seen["options"] = options
        raise Stop

    monkeypatch.setattr(bench, "measure", measure)
    with pytest.raises(Stop):
        bench.main([str(tmp_path / "c"), "--root", str(synthrooms / "nyudv2"), "--temperatures", "0.4", "--samples", "5",
                    "--fit-samples", "7", "--test-samples", "3", "--feature-size", "0", "--kid-subsets", "2",
                    "--batch-size", "3", "--seed", "11"])
    assert seen["options"] == bench.Options(temperatures=(0.4,), samples=5, fit_samples=7, test_samples=3,
                                            feature_size=None, kid_subsets=2, batch_size=3, seed=11)


def test_the_splits_are_rebuilt_with_the_run_s_seed(synthrooms):
    """The validation images are carved from train by the run's seed: with another seed the
    temperature would be chosen on images the flow was trained on."""
    from train.data import build_splits

    def val_indices(seed: int) -> list[int]:
        model = tiny_model("segmentation", data={"dataset": "nyudv2"}, training={"val_fraction": 0.25, "seed": seed})
        return sorted(bench.checkpoint_splits(model, synthrooms / "nyudv2").val.indices)

    expected = build_splits("nyudv2", synthrooms / "nyudv2", 32, inputs=("rgb", "depth"), val_fraction=0.25, seed=3)
    assert val_indices(3) == sorted(expected.val.indices) != val_indices(0)
