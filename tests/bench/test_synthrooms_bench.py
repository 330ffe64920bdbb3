"""`python -m mango.bench synthrooms`: scenes per minute of the timed scenes, after a warm-up scene."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import mango.data.synthrooms as synthrooms
from mango.bench import synthrooms as bench


def test_the_rate_is_scenes_per_minute_of_the_timed_scenes_only(monkeypatch, capsys):
    """The first scene pays for imports and caches; timing it would understate the generator's rate."""
    clock = SimpleNamespace(now=0.0)
    rendered = []

    def render_scene(seed, size):
        clock.now += 30.0 if not rendered else 0.5  # the warm-up scene is slow
        rendered.append((seed, size))

    monkeypatch.setattr(synthrooms, "render_scene", render_scene)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    assert bench.main(["--n", "4", "--size", "32", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert len(rendered) == 5 and {size for _, size in rendered} == {32}
    assert "     120 scenes/minute" in out and "500.0 ms/scene, 32x32" in out  # 4 scenes in 2 s


@pytest.mark.parametrize("argv", [["--n", "0"], ["--size", "0"], ["--workers", "1", "0"]])
def test_a_count_below_one_is_a_usage_error_before_any_scene_is_rendered(argv, monkeypatch, capsys):
    """--n 0 used to render the warm-up scene, then divide by zero."""
    monkeypatch.setattr(synthrooms, "render_scene", None)  # nothing may be rendered
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2 and f"{argv[0]} must be at least 1, got 0" in capsys.readouterr().err
