"""`python -m mango.bench flow`: a measuring process that fails must give an error row, not a hang."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
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


@pytest.mark.timeout(60)
def test_a_failing_measurement_is_an_error_row_and_the_others_are_kept(monkeypatch, tmp_path, capsys):
    # fork, not spawn: the child sees the fake measurement and starts in milliseconds
    monkeypatch.setattr(flow, "mp", types.SimpleNamespace(get_context=lambda method=None: mp.get_context("fork")))
    monkeypatch.setattr(flow, "_measure_size", _fake_measure)
    monkeypatch.setattr(flow, "triangular_vs_dense", lambda n, w: dict(n=n, width=w, triangular_ms=1.0,
                        dense_inverse_ms=2.0, speedup=2.0, triangular_error=0.0, dense_error=0.0))
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
