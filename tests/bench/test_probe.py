"""`python -m mango.bench probe` on a tiny genre model with a known answer: the genre is in the
poster (bright or dark), never in the plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mango.bench import probe
from mango.models import MangoConfig, MangoModel

TINY = dict(image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1, decoder_width=32,
            num_blocks=1, head_width=32, text_width=32, text_layers=1, text_context_length=16)
PLOTS = ["A storm at sea.", "Two friends open a bakery in a small town.", "A detective's last case."]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def films(n: int, seed: int) -> list[dict]:
    """Genre 0 for a bright poster, genre 1 for a dark one; the plot cycles independently of both."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        bright = i % 2 == 0
        poster = (0.75 if bright else 0.25) + 0.1 * torch.rand(3, 32, 32, generator=g)
        target = torch.zeros(23)
        target[0 if bright else 1] = 1.0
        out.append({"a": poster, "b": PLOTS[i % 3], "target": target, "id": str(i)})
    return out


def test_probe_finds_the_genre_in_the_modality_that_carries_it():
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY)).eval()
    result = probe.probe(model, films(24, seed=1), films(12, seed=2), batch_size=8)
    assert set(result) == set(probe.LEVELS)
    for level in probe.LEVELS:
        assert set(result[level]) == {"both", "poster", "plot"}
        assert result[level]["poster"]["macro_f1"] == 1.0 and result[level]["both"]["macro_f1"] == 1.0
    # the plot alone carries nothing until the flow mixes the poster into its half of Z
    assert result["backbone"]["plot"]["macro_f1"] < 0.8 and result["features"]["plot"]["macro_f1"] < 0.8
    assert result["features"]["poster"]["width"] == 32 and result["features"]["both"]["width"] == 64
    table = probe.format_table(result)
    assert table.count("\n") == 1 + len(probe.LEVELS) and "| latent |" in table


def test_probe_needs_a_genre_model_with_a_flow():
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY, fusion="concat"))
    with pytest.raises(ValueError, match="genre checkpoint with a flow"):
        probe.pooled_tokens(model, films(2, seed=0))


def test_a_paired_bootstrap_of_a_model_against_itself_is_exactly_zero_and_seeded():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(40, 5, generator=g).numpy()
    targets = (torch.rand(40, 5, generator=g) > 0.6).int().numpy()
    same = probe.paired_bootstrap(probs, 0.5, probs, 0.5, targets, resamples=50)
    for k in ("micro_f1", "macro_f1"):
        assert same[k]["difference"] == 0.0 and same[k]["interval_95"] == [0.0, 0.0] and same[k]["a_at_least_b"] == 1.0
        low, high = same[k]["a_interval_95"]
        assert same[k]["a_interval_95"] == same[k]["b_interval_95"] and low < same["a"][k] < high
    # a model that always says "no genre" is behind one that reads the answers, in every resample
    perfect, silent = targets.astype(float), torch.zeros(40, 5).numpy()
    behind = probe.paired_bootstrap(silent, 0.5, perfect, 0.5, targets, resamples=50, seed=1)
    assert behind["a"]["micro_f1"] == 0.0 and behind["b"]["micro_f1"] == 1.0
    assert behind["macro_f1"]["interval_95"][1] < 0 and behind["macro_f1"]["a_at_least_b"] == 0.0
    assert probe.paired_bootstrap(silent, 0.5, perfect, 0.5, targets, resamples=50, seed=1) == behind
    with pytest.raises(ValueError, match="same films"):
        probe.paired_bootstrap(probs[:10], 0.5, probs, 0.5, targets)


def test_head_versus_probe_on_a_tiny_model_with_a_known_answer():
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY)).eval()
    test = films(12, seed=2)
    result = probe.head_versus_probe(model, films(24, seed=1), test, resamples=30, batch_size=8)
    # the probe reads the poster's brightness perfectly; the untrained head does not
    assert result["b"]["macro_f1"] == 1.0 and result["a"]["macro_f1"] < 1.0
    assert result["macro_f1"]["difference"] < 0 and result["macro_f1"]["interval_95"][1] <= 0
    head = probe.head_probabilities(model, test, batch_size=5)
    assert head.shape == (12, 23) and ((head > 0) & (head < 1)).all()
    text = probe.format_bootstrap(result)
    assert "30 paired resamples" in text and "macro_f1" in text


def test_the_probe_fits_on_train_or_on_train_and_dev(tiny_movies, tmp_path):
    """`--fit-on train+val` is the protocol of the probe that set the genre targets (train + dev)."""
    checkpoint = tmp_path / "genre"
    MangoModel(MangoConfig.preset("tiny", task="genre", **TINY)).save_pretrained(checkpoint)
    fitted = {}
    for fit_on in ("train", "train+val"):
        out = tmp_path / f"{fit_on}.json"
        assert probe.main([str(checkpoint), "--root", str(tiny_movies), "--fit-on", fit_on, "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["fit_on"] == fit_on and set(report["probes"]) == set(probe.LEVELS)
        fitted[fit_on] = report["fit_samples"]
    assert fitted == {"train": 8, "train+val": 10}


@pytest.fixture(scope="module")
def genre_checkpoint(tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("ckpt") / "genre"
    MangoModel(MangoConfig.preset("tiny", task="genre", **TINY)).save_pretrained(checkpoint)
    return checkpoint


def test_a_negative_bootstrap_is_refused_before_any_work(genre_checkpoint, tiny_movies, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probe, "pooled_splits", lambda *a, **k: pytest.fail("probed before checking --bootstrap"))
    with pytest.raises(SystemExit) as exit_info:
        probe.main([str(genre_checkpoint), "--root", str(tiny_movies), "--bootstrap", "-1"])
    assert exit_info.value.code == 2 and "--bootstrap must be 0" in capsys.readouterr().err


def test_the_probe_table_is_written_before_the_bootstrap(genre_checkpoint, tiny_movies, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe, "head_versus_probe", interrupted)
    out = tmp_path / "probe.json"
    with pytest.raises(KeyboardInterrupt):
        probe.main([str(genre_checkpoint), "--root", str(tiny_movies), "--bootstrap", "5", "--out", str(out)])
    report = json.loads(out.read_text())
    assert set(report["probes"]) == set(probe.LEVELS) and "head_versus_probe" not in report
    monkeypatch.undo()  # the real bootstrap: the report is written again, with it
    assert probe.main([str(genre_checkpoint), "--root", str(tiny_movies), "--bootstrap", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["head_versus_probe"]["resamples"] == 5


def test_bad_checkpoints_and_roots_are_usage_errors(genre_checkpoint, tiny_movies, tmp_path, capsys):
    segmentation = tmp_path / "segmentation"
    MangoModel(MangoConfig.preset("tiny", task="segmentation", **TINY)).save_pretrained(segmentation)
    other_genres = tmp_path / "two-genres"
    MangoModel(MangoConfig.preset("tiny", task="genre", class_names=("Drama", "Comedy"), **TINY)).save_pretrained(
        other_genres)
    cases = [
        ([str(segmentation), "--root", str(tiny_movies)], "expected 'genre'"),
        ([str(other_genres), "--root", str(tiny_movies)], "2 genres (Drama, Comedy, ...) are not the data's 23"),
        ([str(tmp_path / "missing"), "--root", str(tiny_movies)], "missing"),
        ([str(genre_checkpoint), "--root", str(tmp_path / "no-films")], "no-films"),
        # refused before any token is pooled, not by scikit-learn afterwards
        ([str(genre_checkpoint), "--root", str(tiny_movies), "--C", "0"], "--C must be a positive number, got 0"),
        ([str(genre_checkpoint), "--root", str(tiny_movies), "--C", "nan"], "--C must be a positive number, got nan"),
        ([str(genre_checkpoint), "--root", str(tiny_movies), "--batch-size", "0"], "--batch-size must be at least 1"),
        ([str(genre_checkpoint), "--root", str(tiny_movies), "--threads", "0"], "--threads must be at least 1"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            probe.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "usage:" in err and message in err, err


def test_pooled_backbone_rows_are_unit_vectors_per_film_and_latent_is_z_not_f():
    """The backbone probe reads each film's L2-normalised pooled output; 'latent' must be the flow's
    output Z, or the table could not show what the flow loses."""
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY)).eval()
    pooled, targets = probe.pooled_tokens(model, films(6, seed=3), batch_size=4)
    assert targets.shape == (6, 23)
    for name in ("poster", "plot"):
        np.testing.assert_allclose(np.linalg.norm(pooled["backbone", name], axis=1), 1.0, rtol=1e-5)
        assert not np.allclose(pooled["latent", name], pooled["features", name], atol=1e-4)


def test_each_side_of_the_bootstrap_is_resampled_at_its_own_thresholds():
    """The head's tuned thresholds are not the probe's 0.5: each side's resamples use its own."""
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(30, 4, generator=g) > 0.5).int().numpy()
    probs = 0.1 + 0.7 * targets  # 0.8 where the genre is, 0.1 where it is not
    result = probe.paired_bootstrap(probs, 0.9, probs, 0.5, targets, resamples=20)  # A predicts nothing, B all
    for k in ("micro_f1", "macro_f1"):
        assert result["a"][k] == 0.0 and result["b"][k] == 1.0
        assert result[k]["a_interval_95"] == [0.0, 0.0] and result[k]["b_interval_95"] == [1.0, 1.0]
        assert result[k]["interval_95"] == [-1.0, -1.0] and result[k]["a_at_least_b"] == 0.0
    assert np.isfinite(result["micro_f1"]["difference"])


def test_the_probes_use_the_regularisation_asked_for(genre_checkpoint, tiny_movies, tmp_path, monkeypatch):
    """--C 0.25 must reach every regression, not only the report's header."""
    fitted = []
    real = probe.fit_and_score
    monkeypatch.setattr(probe, "fit_and_score", lambda *args, **kwargs: fitted.append(args[4]) or real(*args, **kwargs))
    out = tmp_path / "probe.json"
    assert probe.main([str(genre_checkpoint), "--root", str(tiny_movies), "--C", "0.25", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["C"] == 0.25
    assert len(fitted) == 3 * len(probe.LEVELS) and set(fitted) == {0.25}


def test_the_table_prints_micro_then_macro_as_its_header_says():
    """Each cell is 'micro / macro (width)', the order the header names."""
    table = probe.format_table({"backbone": {"both": {"micro_f1": 0.61, "macro_f1": 0.42, "width": 64}}})
    assert table.splitlines()[0] == "| depth | both (micro / macro F1) |"
    assert table.splitlines()[2] == "| backbone | 0.610 / 0.420 (64 d) |"
