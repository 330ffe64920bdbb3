"""`python -m mango.bench NAME ...`: the dispatcher hands the rest of the command line to the
benchmark and keeps its exit status; asking for help is the usage on stdout, not an error."""

from __future__ import annotations

import sys
import types

import pytest

from mango.bench import __main__ as dispatch


def test_the_benchmark_gets_the_rest_of_the_command_line_and_its_status_comes_through(monkeypatch):
    """`flow` exits 1 when a form failed; a dispatcher that returned 0 would hide it from scripts and CI."""
    seen = []
    fake = types.ModuleType("mango.bench.flow")
    fake.main = lambda argv: seen.append(argv) or 1
    monkeypatch.setitem(sys.modules, "mango.bench.flow", fake)
    assert dispatch.main(["flow", "--sizes", "demo"]) == 1
    assert seen == [["--sizes", "demo"]]
    fake.main = lambda argv: None  # a benchmark that returns nothing succeeded
    assert dispatch.main(["flow"]) == 0


@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"]])
def test_help_lists_every_benchmark_on_stdout_and_succeeds(argv, capsys):
    """`-h` is a request for the usage, not an unknown benchmark called '-h'."""
    assert dispatch.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "usage: python -m mango.bench NAME" in captured.out
    assert all(f"  {name} " in captured.out for name in dispatch.BENCHMARKS)


def test_the_app_s_benchmark_is_named_where_it_lives(capsys):
    """It moved to `app/` (mango knows nothing of the app): the old command says where, and help lists it."""
    assert dispatch.main(["app", "--load"]) == 2
    assert "the app benchmark is `python -m app.bench`" in capsys.readouterr().err
    assert dispatch.main(["--help"]) == 0 and "python -m app.bench" in capsys.readouterr().out
