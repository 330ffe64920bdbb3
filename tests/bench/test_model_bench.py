"""`python -m mango.bench model`: a measurement's numbers (warm latency, inference parameters), what
the parent passes to each measuring child and reads back from it, and the table's columns. A fake
model and clock stand in for the real ones: the arithmetic is checked, not the machine."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mango.bench import model as bench
from mango.models import MangoConfig


class FakeModel(torch.nn.Module):
    """Stands in for MangoModel: each forward advances the fake clock by the next of ``durations``."""

    clock = SimpleNamespace(now=0.0)
    durations: list[float] = []

    def __init__(self, config):
        super().__init__()
        self.config, self.calls, self.layer = config, 0, torch.nn.Linear(2, 2)

    def num_parameters(self, part=None) -> int:
        return {None: 10_000_000, "encoders": 6_000_000, "flow": 2_000_000, "heads": 500_000,
                "decoders": 1_500_000}[part]

    def forward(self, a, b):
        self.clock.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        return SimpleNamespace(output=self.layer(torch.zeros(1, 2)))


def test_a_measurement_times_warm_forwards_and_leaves_the_decoders_out_of_inference(monkeypatch):
    """The first forwards (FLOP count, warm-up) are slow; the latency is the median of the later ones."""
    import mango.models

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(FakeModel, "clock", clock)
    monkeypatch.setattr(FakeModel, "durations", [5.0, 3.0, 0.010, 0.020, 0.001])  # FLOPs, warm-up, 3 timed
    monkeypatch.setattr(mango.models, "MangoModel", FakeModel)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    monkeypatch.setattr(bench, "_forward_peak_memory", lambda *args: {})
    row = bench.measure("segmentation", "tiny", reps=3, gpu=False)
    assert row["cpu_latency_ms"] == pytest.approx(10.0) and row["cpu_latency_min_ms"] == pytest.approx(1.0)
    assert row["params_m"] == 10.0 and row["params_inference_m"] == pytest.approx(8.5)
    assert row["params_by_part_m"] == {"encoders": 6.0, "flow": 2.0, "heads": 0.5, "decoders": 1.5}
    assert row["tokens"] == 2 * MangoConfig.preset("tiny", "segmentation").tokens_per_modality


def test_each_child_gets_the_options_and_its_last_output_line_is_the_result(monkeypatch, tmp_path):
    """A child measures with the asked threads and reps, may print warnings before its JSON line,
    and a child that fails is an error row (exit 1), with the other rows still written."""
    commands = []

    def run(cmd, capture_output, text):
        commands.append(cmd)
        task, preset = cmd[cmd.index("--one") + 1: cmd.index("--one") + 3]
        if task == "genre":
            return SimpleNamespace(returncode=1, stdout="", stderr="Traceback ...\nRuntimeError: out of memory\n")
        row = {"task": task, "preset": preset, "params_m": 3.0}
        return SimpleNamespace(returncode=0, stdout="UserWarning: TypedStorage is deprecated\n" + json.dumps(row) + "\n",
                               stderr="")

    monkeypatch.setattr(bench, "subprocess", SimpleNamespace(run=run))
    out = tmp_path / "model.json"
    assert bench.main(["--presets", "demo", "--tasks", "segmentation", "genre", "--reps", "7", "--threads", "2",
                       "--no-gpu", "--out", str(out)]) == 1
    assert len(commands) == 2
    for cmd in commands:
        assert cmd[cmd.index("--reps") + 1] == "7" and cmd[cmd.index("--threads") + 1] == "2" and "--no-gpu" in cmd
    rows = json.loads(out.read_text())["results"]
    assert rows[0] == {"task": "segmentation", "preset": "demo", "params_m": 3.0}
    assert rows[1]["task"] == "genre" and rows[1]["error"] == "RuntimeError: out of memory"


def test_the_table_puts_each_number_under_its_header(capsys):
    """The median ('CPU ms') and the least disturbed run ('min ms') must not trade places."""
    row = {"task": "segmentation", "preset": "demo", "tokens": 128, "dim": 128, "blocks": 2, "params_m": 10.0,
           "params_inference_m": 8.5, "gflops": 1.25, "cpu_latency_ms": 40.0, "cpu_latency_min_ms": 30.0,
           "cpu_peak_mb": 200.0, "cpu_peak_activation_mb": 50.0}
    bench._print_table([row])
    header, line = capsys.readouterr().out.splitlines()[:2]

    def under(label: str) -> str:  # every numeric column is right-aligned: the value ends where its header ends
        return line[: header.index(label) + len(label)].split()[-1]

    assert under("CPU ms") == "40.0" and under("min ms") == "30.0"
    assert under("params M") == "10.0" and under("infer M") == "8.5" and under("GFLOPs") == "1.25"
    assert under("peak MB") == "200" and under("act MB") == "50"


@pytest.mark.parametrize("argv, message", [
    (["--reps", "0"], "--reps must be at least 1, got 0"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--presets", "huge"], "invalid choice: 'huge'"),
])
def test_a_count_or_preset_that_cannot_work_is_refused_before_any_model_is_built(argv, message, monkeypatch, capsys):
    """Each measurement builds its model (minutes for the paper preset) before it times anything: a bad
    option must be a usage error at once, not an ERROR in every row at the end."""
    monkeypatch.setattr(bench, "subprocess", None)  # no child may start
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv + ["--no-gpu"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
