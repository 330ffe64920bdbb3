"""The app's settings from the environment: counts of threads, queue lanes and sessions kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.resources import env_count

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw, expected", [(None, 7), ("", 7), ("  ", 7), ("1", 1), (" 12 ", 12)])
def test_a_count_from_the_environment_or_its_default(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("MANGO_TEST_COUNT", raising=False)
    else:
        monkeypatch.setenv("MANGO_TEST_COUNT", raw)
    assert env_count("MANGO_TEST_COUNT", 7) == expected


@pytest.mark.parametrize("raw", ["abc", "0", "-2", "1.5", "2e3"])
def test_a_count_that_cannot_be_one_names_its_variable(monkeypatch, raw):
    monkeypatch.setenv("MANGO_TEST_COUNT", raw)
    with pytest.raises(ValueError, match=rf"^MANGO_TEST_COUNT must be a whole number of at least 1; got '{raw}'$"):
        env_count("MANGO_TEST_COUNT", 7)


@pytest.mark.slow
def test_the_app_stops_at_start_on_a_bad_setting_and_names_it():
    env = dict(os.environ, MANGO_STATE_SESSIONS="many")
    done = subprocess.run([sys.executable, "-c", "import app.ui"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "ValueError: MANGO_STATE_SESSIONS must be a whole number of at least 1; got 'many'")
