"""The run folder's crash-safe files: atomic replacement, staged folders, the metrics log."""

from __future__ import annotations

import csv
import json
import os

import pytest

import train.atomic
from train.atomic import atomic_write_text, replace_dir, settle_staged_dir, staging_dir
from train.metrics_log import MetricsLog


def _csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_atomic_write_replaces_whole_and_leaves_nothing_beside(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_replace_dir_and_settling_an_interrupted_swap(tmp_path):
    target = tmp_path / "last"
    for text in ("one", "two"):
        staged = staging_dir(target)
        staged.mkdir()
        (staged / "f").write_text(text)
        replace_dir(staged, target)
    assert (target / "f").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]

    # killed between the two renames: the old folder moved aside, the complete new one not yet in
    staged = staging_dir(target)
    staged.mkdir()
    (staged / "f").write_text("three")
    target.rename(tmp_path / "last.old")
    settle_staged_dir(target, keep=lambda folder: True)
    assert (target / "f").read_text() == "three" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]

    # an incomplete staged folder is dropped, the current one kept
    staging_dir(target).mkdir()
    settle_staged_dir(target, keep=lambda folder: False)
    assert (target / "f").read_text() == "three" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_metrics_log_appends_grows_columns_and_rolls_back(tmp_path):
    log = MetricsLog(tmp_path)
    log.append({"stage": "autoencoder", "step": 2, "train_loss": 1.5})
    log.append({"stage": "task", "step": 2, "train_loss": 1.0, "val_miou": 0.25, "val_per_class": [0.1, 0.4]})
    log.append({"stage": "task", "step": 4, "train_loss": 0.5, "val_miou": 0.5})
    table = _csv(log.csv)
    assert list(table[0]) == ["stage", "step", "train_loss", "val_miou"], "lists stay out of the CSV"
    assert [(r["stage"], r["step"], r["val_miou"]) for r in table] == [
        ("autoencoder", "2", ""), ("task", "2", "0.25"), ("task", "4", "0.5")]
    assert log.rows()[1]["val_per_class"] == [0.1, 0.4]

    with log.jsonl.open("a") as f:  # a kill in the middle of writing a row
        f.write('{"stage": "task", "st')
    assert len(log.rows()) == 3, "a cut-off line is not a row"
    dropped = log.roll_back(keep=lambda row: (row["stage"], row["step"]) <= ("task", 2))
    assert dropped == 1
    assert [(r["stage"], r["step"]) for r in log.rows()] == [("autoencoder", 2), ("task", 2)]
    assert log.jsonl.read_text().endswith("}\n")
    assert [(r["stage"], r["step"]) for r in _csv(log.csv)] == [("autoencoder", "2"), ("task", "2")]

    log = MetricsLog(tmp_path)  # a restarted run appends under the header already there
    log.append({"stage": "task", "step": 4, "train_loss": 0.4, "val_miou": 0.6})
    assert [r["val_miou"] for r in _csv(log.csv)] == ["", "0.25", "0.6"]
    assert [json.loads(line)["step"] for line in log.jsonl.read_text().splitlines()] == [2, 2, 4]

    assert log.roll_back(keep=lambda row: False) == 3
    assert not log.jsonl.exists() and not log.csv.exists()


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def test_a_cut_off_last_line_is_dropped_even_when_every_row_is_kept(tmp_path):
    log = MetricsLog(tmp_path)
    log.append({"stage": "task", "step": 2, "train_loss": 1.0})
    with log.jsonl.open("a") as f:  # killed while writing the next row
        f.write('{"stage": "task", "st')
    assert log.roll_back(keep=lambda row: True) == 0
    assert log.jsonl.read_text().endswith("}\n")
    log.append({"stage": "task", "step": 4, "train_loss": 0.5})  # the resumed run's next row
    assert [r["step"] for r in log.rows()] == [2, 4]
    assert [json.loads(line)["step"] for line in log.jsonl.read_text().splitlines()] == [2, 4]


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def _folder(path, text: str):
    """A folder holding one file, f, with ``text``."""
    path.mkdir()
    (path / "f").write_text(text)
    return path


def test_a_kill_between_the_two_renames_keeps_the_old_folder_until_the_new_one_is_kept(tmp_path, monkeypatch):
    """replace_dir moves the current folder aside (never deletes it) before the new one is in, and a
    restart that does not keep the staged folder puts the old one back: the run folder never loses
    its last good checkpoint."""
    target = _folder(tmp_path / "last", "old")
    staged = _folder(staging_dir(target), "new")
    real_replace, calls = os.replace, []

    def killed_at_the_second(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(train.atomic.os, "replace", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(staged, target)
    monkeypatch.setattr(train.atomic.os, "replace", real_replace)
    assert not target.exists() and (tmp_path / "last.old" / "f").read_text() == "old"

    settle_staged_dir(target, keep=lambda folder: False)  # the staged folder is not wanted: the old one comes back
    assert (target / "f").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_replace_dir_clears_a_stale_old_folder(tmp_path):
    """A NAME.old left by an earlier interrupted swap must not block the next one."""
    target = _folder(tmp_path / "best", "current")
    _folder(tmp_path / "best.old", "stale")
    staged = _folder(staging_dir(target), "new")
    replace_dir(staged, target)
    assert (target / "f").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["best"]
