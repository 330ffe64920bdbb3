"""`python -m mango.bench flow`: a measuring process that fails must give an error row, not a hang."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import types

import pytest

from mango.bench import flow


def _fake_measure(name: str, form: str, batch: int, repeats: int, device: str, queue) -> None:
    """Stands in for the real measurement (in a forked child): one form works, one raises, one dies."""
    if form == "gated":
        raise RuntimeError("min(): Expected reduction dim to be specified")
    if form == "diag_bias":
        os._exit(3)  # killed: nothing on the queue, no exception to report
    queue.put(dict(size=name, form=form, **flow.SIZES[name], batch=batch, params_m=1.0, forward_ms_per_sample=1.0,
                   inverse_ms_per_sample=1.0, peak_rss_increase_mb=1.0, cuda_peak_mb=None, roundtrip_error_fp32=1e-6,
                   min_attention_diagonal=None))


@pytest.fixture
def fake_measurements(monkeypatch):
    """Children that report `_fake_measure`'s rows. Fork, not spawn: the child sees the fake measurement
    and starts in milliseconds."""
    monkeypatch.setattr(flow, "mp", types.SimpleNamespace(get_context=lambda method=None: mp.get_context("fork")))
    monkeypatch.setattr(flow, "_measure_size", _fake_measure)
    monkeypatch.setattr(flow, "triangular_vs_dense", lambda n, w: dict(n=n, width=w, triangular_ms=1.0,
                        dense_inverse_ms=2.0, speedup=2.0, triangular_error=0.0, dense_error=0.0))


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("fake_measurements")
def test_a_failing_measurement_is_an_error_row_and_the_others_are_kept(tmp_path, capsys):
    out = tmp_path / "flow.json"
    code = flow.main(["--sizes", "demo", "--forms", "identity_plus", "gated", "diag_bias", "--repeats", "1",
                      "--device", "cpu", "--out", str(out)])
    assert code == 1
    rows = {r["form"]: r for r in json.loads(out.read_text())["flow"]}
    assert rows["identity_plus"]["forward_ms_per_sample"] == 1.0  # measured before the failures, still written
    assert "RuntimeError: min()" in rows["gated"]["error"]
    assert "exit code 3" in rows["diag_bias"]["error"]
    assert "ERROR" in capsys.readouterr().out


@pytest.mark.timeout(60)  # before the check, --batch 0 ran a child that died, and the parent waited forever
@pytest.mark.parametrize("option", ["--batch", "--repeats"])
def test_batch_and_repeats_below_one_are_refused(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        flow.main(["--sizes", "demo", "--forms", "gated", option, "0", "--out", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    assert f"{option} must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_best_time_warms_up_first_and_keeps_the_fastest_call():
    """The first call of a fresh flow is slow (allocation, lazy set-up): it must not be timed."""
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.3 if len(calls) == 1 else 0.0)

    assert flow._best_time(fn, repeats=1) < 0.15 and len(calls) == 2


def test_a_measurement_reports_per_sample_times_and_the_memory_it_added(monkeypatch):
    """The columns say ms per sample: the batch's best time over the batch, forward and inverse apart."""
    times = iter([0.04, 0.1])  # forward, then inverse
    monkeypatch.setattr(flow, "_best_time", lambda fn, repeats: (fn(), next(times))[1])
    rss = iter([100.0, 130.0])
    monkeypatch.setattr(flow, "_peak_rss_mb", lambda: next(rss))
    monkeypatch.setitem(flow.SIZES, "tiny", dict(tokens_per_modality=8, dim=16, num_blocks=1))
    rows = []
    flow._measure_size("tiny", "identity_plus", 4, 1, "cpu", types.SimpleNamespace(put=rows.append))
    (row,) = rows
    assert row["forward_ms_per_sample"] == pytest.approx(10.0)
    assert row["inverse_ms_per_sample"] == pytest.approx(25.0)
    assert row["peak_rss_increase_mb"] == pytest.approx(30.0) and row["roundtrip_error_fp32"] < 1e-3


def test_the_solve_comparison_reports_how_many_times_faster_the_triangular_solve_is(monkeypatch):
    """speedup > 1 must mean the triangular solve is faster than the dense inverse."""
    times = iter([0.002, 0.010])  # triangular, then dense
    monkeypatch.setattr(flow, "_best_time", lambda fn, repeats: next(times))
    s = flow.triangular_vs_dense(16, 8, batch=2, repeats=1)
    assert s["triangular_ms"] == pytest.approx(2.0) and s["dense_inverse_ms"] == pytest.approx(10.0)
    assert s["speedup"] == pytest.approx(5.0)
    assert s["triangular_error"] < 1e-3 and s["dense_error"] < 1e-2


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("fake_measurements")
def test_the_table_shows_the_flow_s_token_count_dim_and_depth(tmp_path, capsys):
    """'tokens' is N, both modalities together (2 x 64 at the demo size), as in the paper's tables."""
    assert flow.main(["--sizes", "demo", "--forms", "identity_plus", "--repeats", "1", "--device", "cpu",
                      "--out", str(tmp_path / "flow.json")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("demo   identity_plus"))
    assert line.split()[2:5] == ["128", "128", "2"]
