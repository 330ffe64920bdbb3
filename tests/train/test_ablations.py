"""`python -m train.ablations` reuses a finished run only when it was made with the same settings."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from train.ablations import PRIOR_VARIANT, _label, _merge, run_ablations, summarise

from .conftest import TINY_MODEL


def _ablate(synthrooms, out, steps, overrides=None, report_only=False):
    return run_ablations("segmentation", str(synthrooms / "nyudv2"), out, seeds=[0], variants=["Concatenation"],
                         steps=steps, ae_steps=1, batch_size=4, image_size=32, eval_every=1, num_workers=0,
                         overrides={**TINY_MODEL, **(overrides or {})}, report_only=report_only,
                         train_options=dict(preset="tiny", device="cpu", val_fraction=0.25))


def test_a_finished_run_made_with_other_settings_is_refused_not_reported(synthrooms, tmp_path):
    out = tmp_path / "abl"
    runs, _ = _ablate(synthrooms, out, steps=1)
    run = out / "segmentation" / "seed0" / "concatenation"
    assert (run / "test_metrics.json").is_file()
    assert json.loads((run / "train_config.json").read_text())["steps"] == 1
    again, _ = _ablate(synthrooms, out, steps=1, report_only=True)  # the same settings: read back
    assert again.equals(runs)
    for kwargs, named in [({"steps": 2}, "steps: 1 there, 2 now"),
                          ({"steps": 1, "overrides": {"head_width": 16}}, "overrides:"),
                          ({"steps": 2, "report_only": True}, "steps: 1 there, 2 now")]:
        with pytest.raises(ValueError, match=f"{run} was trained with other settings.*{named}"):
            _ablate(synthrooms, out, **kwargs)


def test_the_report_goes_under_out_unless_the_bundled_folder_is_named(synthrooms, tmp_path, monkeypatch):
    # the README's command, run with fewer steps to try it, once replaced the bundled, measured tables
    # that the app shows and a publish ships; they are written only when --report names them
    import train.ablations as ablations

    runs, curves = _ablate(synthrooms, tmp_path / "abl", steps=1)
    monkeypatch.setattr(ablations, "run_ablations", lambda *args, **kwargs: (runs, curves))
    monkeypatch.chdir(tmp_path)  # a bundled folder here would be written by the old default
    args = ["--task", "segmentation", "--root", "unused", "--out", "abl", "--seeds", "0", "--variants", "Concatenation"]
    assert ablations.main(args) == 0
    assert (tmp_path / "abl" / "report" / "results.csv").is_file() and not (tmp_path / "assets").exists()
    assert ablations.main([*args, "--report", "assets/ablations"]) == 0
    assert (tmp_path / "assets" / "ablations" / "results.csv").is_file()


def test_a_limited_run_reads_the_first_samples_and_never_writes_the_named_report(synthrooms, tmp_path, capsys):
    import train.ablations as ablations

    out = tmp_path / "abl"
    run_ablations("segmentation", str(synthrooms / "nyudv2"), out, seeds=[0], variants=["Concatenation"], steps=1,
                  ae_steps=1, batch_size=2, image_size=32, eval_every=1, num_workers=0, overrides=TINY_MODEL,
                  train_options=dict(preset="tiny", device="cpu", val_fraction=0.25, limit=3))
    run = out / "segmentation" / "seed0" / "concatenation"
    assert json.loads((run / "test_metrics.json").read_text())["samples"] == 3  # of the 4 test scenes
    args = ["--task", "segmentation", "--root", str(synthrooms / "nyudv2"), "--out", str(out), "--limit", "3"]
    with pytest.raises(SystemExit) as refused:
        ablations.main([*args, "--report", str(tmp_path / "assets" / "ablations")])
    assert refused.value.code == 2 and "--limit 3 makes a smoke run" in capsys.readouterr().err
    assert not (tmp_path / "assets").exists()


def test_the_ica_share_of_a_flow_variant_reaches_the_table(synthrooms, tmp_path):
    # the share is a validation readout: it moved from test_metrics.json to the checkpoint's metadata
    runs, _ = run_ablations("segmentation", str(synthrooms / "nyudv2"), tmp_path / "abl", seeds=[0],
                            variants=["MANGO MMCA only"], steps=1, ae_steps=1, batch_size=4, image_size=32,
                            eval_every=1, num_workers=0, overrides=TINY_MODEL,
                            train_options=dict(preset="tiny", device="cpu", val_fraction=0.25))
    run = tmp_path / "abl" / "segmentation" / "seed0" / "mango_mmca_only"
    assert "off_diagonal_share" not in json.loads((run / "test_metrics.json").read_text())
    shares = runs[runs["variant"].str.startswith("MANGO")]["off_diagonal_share"]
    assert len(shares) and shares.between(0, 1).all()


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def _runs():
    rows = []
    for seed, (a, b) in enumerate([(0.40, 0.30), (0.50, 0.36), (0.60, 0.33)]):
        rows += [dict(task="segmentation", variant="MANGO (default ICA)", seed=seed, metric="miou", value=a),
                 dict(task="segmentation", variant="Concatenation", seed=seed, metric="miou", value=b)]
    rows.insert(0, dict(task="segmentation", variant=PRIOR_VARIANT, seed=0, metric="miou", value=0.05))
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sample_std_over_seeds_with_the_prior_last():
    table = summarise(_runs())
    assert list(table["variant"]) == ["MANGO (default ICA)", "Concatenation", PRIOR_VARIANT]
    mango = table.set_index("variant").loc["MANGO (default ICA)"]
    assert mango["mean"] == pytest.approx(0.5) and mango["n_seeds"] == 3
    assert mango["std"] == pytest.approx(0.1)  # ddof=1: sqrt(((-0.1)^2 + 0 + 0.1^2) / 2)
    assert table.set_index("variant").loc[PRIOR_VARIANT, "std"] == 0.0


def test_single_modality_variants_name_their_modality():
    assert _label("Modality A only", ("RGB", "depth")) == "RGB only"
    assert _label("Modality B only", ("poster", "plot")) == "plot only"


def test_merge_replaces_the_task_s_rows_and_keeps_the_others(tmp_path):
    path = tmp_path / "results.csv"
    pd.DataFrame([dict(task="genre", variant="x", value=1.0), dict(task="segmentation", variant="x", value=2.0)]).to_csv(path, index=False)
    merged = _merge(path, pd.DataFrame([dict(task="segmentation", variant="x", value=3.0)]), "segmentation")
    assert sorted(zip(merged["task"], merged["value"])) == [("genre", 1.0), ("segmentation", 3.0)]
