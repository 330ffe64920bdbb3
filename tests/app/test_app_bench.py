"""The app benchmark's inputs: every mode times what a user gets by default, on a layer that exists."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import bench as bench_app
from app import ranges
from app.bench import LAYER, bench_inputs, time_cases
from app.checkpoints import TASK_SPECS, load_task_model
from app.handlers import Runner


def test_bench_inputs_use_the_sliders_default_and_two_scenes() -> None:
    steps, first, second, film = bench_inputs()
    assert steps == int(ranges.IG_STEPS.default)
    assert first.name != second.name
    assert first.file("rgb") != second.file("rgb")
    assert film.plot.strip()


@pytest.mark.parametrize("slot", list(TASK_SPECS))
def test_bench_layer_is_one_the_app_offers(slot: str) -> None:
    loaded = load_task_model(TASK_SPECS[slot])
    assert loaded.source == "bundled"
    assert LAYER in Runner(loaded).layer_choices


def test_time_cases_needs_at_least_one_repeat(capsys) -> None:
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        time_cases([("noop", lambda: None)], repeats=0, warmup=0)
    with pytest.raises(SystemExit) as exit_info:
        bench_app.main(["--repeats", "0", "--no-startup"])
    assert exit_info.value.code == 2 and "--repeats must be at least 1" in capsys.readouterr().err
    for options, message in ((["--warmup", "-1"], "--warmup must be 0 or more"),
                             (["--threads", "0"], "--threads must be at least 1")):  # 0 was ignored without a word
        with pytest.raises(SystemExit) as exit_info:
            bench_app.main([*options, "--no-startup"])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert time_cases([("noop", lambda: None)], repeats=1, warmup=0)[0]["repeats"] == 1


def test_options_the_load_scenario_would_ignore_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench_app.main(["--load", "--threads", "4", "--repeats", "5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--repeats, --threads do(es) not apply to --load" in err


def test_failed_requests_are_counted_not_timed() -> None:
    # a request refused at once would otherwise pull the load scenario's p95 under its 2 s target
    times = [3.0, 3.2, None, None, None, 3.1]
    stats = bench_app._succeeded(times)
    assert stats["n"] == 3 and stats["failed"] == 3
    assert stats["p50_s"] == pytest.approx(3.1) and stats["p95_s"] > 3.0
    assert bench_app._succeeded([None, None]) == {"n": 0, "failed": 2}


def test_time_cases_warms_up_untimed_and_judges_the_budget_on_p95(monkeypatch):
    """A handler's slow first calls are warm-up, not timed; two slow calls in twenty are what p95
    sees, so the handler is over its 1 s budget although its median is fast."""
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(bench_app, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    durations = iter([5.0, 5.0] + [0.1] * 18 + [3.0, 3.0])

    def handler() -> None:
        clock.now += next(durations)

    (row,) = time_cases([("segment + attention", handler)], repeats=20, warmup=2)
    assert next(durations, None) is None  # two warm-up calls and twenty timed ones
    assert row["p50_s"] == pytest.approx(0.1) and row["p95_s"] == pytest.approx(3.0) and row["max_s"] == 3.0
    assert row["budget_s"] == 1.0 and row["within_budget"] is False


def test_visitors_apply_to_the_load_scenario_only(capsys) -> None:
    for options, message in ((["--visitors", "5", "--no-startup"], "--visitors applies to --load only"),
                             (["--load", "--visitors", "-1"], "--visitors must be at least 0")):
        with pytest.raises(SystemExit) as exit_info:
            bench_app.main(options)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_visitors_growth_is_split_where_gradio_s_session_cap_is_reached(monkeypatch) -> None:
    import app.ui

    monkeypatch.setattr(app.ui, "STATE_SESSIONS", 6)
    sessions = [2]  # the load phase's own clients

    class Visitor:
        def __init__(self) -> None:
            sessions[0] += 1

        def close(self) -> None:
            pass

    # 3 MB per session kept, none once gradio forgets one for each new one
    monkeypatch.setattr(bench_app, "_memory_mb", lambda pid: {"VmRSS": 1000.0 + 3 * min(sessions[0], 6)})
    asked = []
    found = bench_app._visitors(16, Visitor, [("/segment", ())], 0, lambda c, name, args: asked.append(name), 2)
    assert len(asked) == 16 and found["state_sessions"] == 6
    assert found["growth_mb_per_visitor_below_cap"] == 3.0 and found["growth_mb_per_visitor_beyond_cap"] == 0.0
    assert [visitors for visitors, _ in found["memory_mb"]] == [0, 2, 4, 6, 8, 10, 12, 14, 16]
