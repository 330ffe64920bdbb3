"""Surviving a kill: a run killed in stage 2 and started again with the same --out ends as if never stopped.

"As if never stopped" means: every evaluation row is logged exactly once, the rows up to the last
saved state are kept as they were, `metrics.csv` says what `metrics.jsonl` says, the run ends at the
requested step count, and no half-written file or staging folder is left behind.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mango.models import MangoModel
from train.trainer import SettingsError, Trainer


def _jsonl_rows(run: Path) -> list[dict]:
    """The complete rows of metrics.jsonl (a line cut short by a kill has no newline yet)."""
    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").is_file() else ""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _csv_rows(run: Path) -> list[dict]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _state(run: Path) -> dict | None:
    try:
        return json.loads((run / "last" / "state.json").read_text())
    except (OSError, ValueError):  # not written yet, or being swapped in right now
        return None


def _expected_positions(ae_steps: int, steps: int, eval_every: int) -> list[tuple[str, int]]:
    def evals(total: int) -> list[int]:
        return [s for s in range(1, total + 1) if s % eval_every == 0 or s == total]

    return [("autoencoder", s) for s in evals(ae_steps)] + [("task", s) for s in evals(steps)]


def _position(row: dict) -> tuple[int, int]:
    return ({"autoencoder": 0, "task": 1}[row["stage"]], int(row["step"]))


def assert_run_as_if_never_stopped(run: Path, ae_steps: int, steps: int, eval_every: int) -> list[dict]:
    """The checks shared by the kill test and the crash-point tests; returns the jsonl rows."""
    rows = _jsonl_rows(run)
    assert [(r["stage"], r["step"]) for r in rows] == _expected_positions(ae_steps, steps, eval_every), \
        "every evaluation must be logged exactly once, in order"
    table = _csv_rows(run)
    assert len(table) == len(rows) and len({tuple(r.items()) for r in table}) == len(table), "duplicate CSV rows"
    for csv_row, row in zip(table, rows):  # the CSV is the jsonl's scalar columns, empty where a row lacks one
        for key, value in csv_row.items():
            if key not in row:
                assert value == ""
            elif isinstance(row[key], float):
                assert float(value) == pytest.approx(row[key], rel=1e-12)
            else:
                assert value == str(row[key])
    state = json.loads((run / "last" / "state.json").read_text())
    assert (state["stage"], state["step"]) == ("task", steps)
    leftovers = sorted(p.name for p in run.iterdir() if p.name.endswith((".tmp", ".old", ".part")))
    assert leftovers == [], f"staging files left behind: {leftovers}"
    final = MangoModel.from_pretrained(run / "final", expected_task="segmentation")
    meta = final.config.metadata
    assert meta["training"]["steps"] == steps
    # best/ and the bookkeeping about it agree with the logged validation scores
    task_rows = [r for r in rows if r["stage"] == "task"]
    best = max(task_rows, key=lambda r: (r["val_miou"], -r["step"]))
    assert meta["validation_metrics"]["step"] == best["step"]
    assert meta["validation_metrics"]["miou"] == pytest.approx(best["val_miou"])
    assert json.loads((run / "best" / "selection.json").read_text()) == meta["validation_metrics"]
    return rows


def _newest_saved_position(run: Path) -> tuple[int, int]:
    """Where the newest complete saved state stands: last/, or a complete last.tmp/ not yet swapped in."""
    for folder in ("last.tmp", "last"):
        state_file = run / folder / "state.json"
        if state_file.is_file():
            state = json.loads(state_file.read_text())
            return _position(state)
    return (-1, 0)


@pytest.mark.slow
def test_sigkill_in_stage_two_then_restart_with_the_same_out(tmp_path, tiny_cli_args, child_env):
    run = tmp_path / "run"
    ae_steps, steps, eval_every, kill_at = 2, 400, 25, 100
    command = [sys.executable, "-m", "train", *tiny_cli_args(run, ae_steps, steps, eval_every)]
    cwd = Path(__file__).resolve().parents[2]

    # Kill once stage 2 has passed `kill_at`, preferably in the narrowest window: a row is logged for
    # an evaluation whose state is not saved yet (a resume must then log that row once, not twice).
    child = subprocess.Popen(command, cwd=cwd, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while True:
            state = _state(run)
            if state and state["stage"] == "task" and state["step"] >= kill_at:
                rows = _jsonl_rows(run)
                if (rows and _position(rows[-1]) > (1, state["step"])) or state["step"] >= kill_at + 4 * eval_every:
                    break
            if child.poll() is not None:
                pytest.fail(f"training ended (rc {child.returncode}) before it could be killed:\n"
                            f"{child.stderr.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "training did not reach stage 2 in time"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    saved = _newest_saved_position(run)
    assert saved[0] == 1 and kill_at <= saved[1] < steps, f"not killed in the middle of stage 2: {saved}"
    rows_at_kill = [r for r in _jsonl_rows(run) if _position(r) <= saved]

    restarted = subprocess.run(command, cwd=cwd, env=child_env, capture_output=True, text=True, timeout=240)
    assert restarted.returncode == 0, restarted.stderr[-3000:]

    rows = assert_run_as_if_never_stopped(run, ae_steps, steps, eval_every)
    assert rows[: len(rows_at_kill)] == rows_at_kill, "rows from before the last saved state were changed"
    assert json.loads((run / "test_metrics.json").read_text())["samples"] == 4


@pytest.fixture
def crash_at(monkeypatch):
    """Make the n-th call of `owner.name` (counting only calls `when(*args)` accepts) raise `SimulatedKill`."""

    class SimulatedKill(BaseException):
        """A BaseException, so no `except Exception` in the trainer can swallow it, as none can a SIGKILL."""

    def arm(owner, name: str, n: int, when=lambda *args, **kwargs: True):
        real, calls = getattr(owner, name), []

        def wrapped(*args, **kwargs):
            if when(*args, **kwargs):
                calls.append(args)
                if len(calls) == n:
                    raise SimulatedKill(f"{name} call {n}")
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)
        return SimulatedKill

    return arm


def _named(name: str):
    return lambda path, *args, **kwargs: Path(path).name == name


# Where a kill can land in an evaluation, and which call to interrupt to land there. With
# ae_steps=2, steps=4, eval_every=2 the state is saved at autoencoder step 2 and task steps 2 and 4.
CRASH_POINTS = {
    "row logged, state not saved": ("Trainer._save_state", 3, None),
    "state staged, state.json not written": ("atomic_write_text", 3, "state.json"),
    "state committed, last/ swapped out, not yet in": ("os.replace", 3, "last.tmp"),
    "state committed, best/ not swapped in": ("replace_dir", 2, "best.tmp"),
}
# Validation mIoU at each evaluation, in order, over both runs: task step 2, step 4, step 4 again
# when the kill made the run redo it. Step 4 beats step 2 before the kill and loses to it after,
# so best/ shows whether a kill let a model from lost steps through.
VAL_MIOU = [0.5, 0.6, 0.4]


@pytest.fixture
def scripted_validation(monkeypatch):
    """Validation scores from VAL_MIOU (the real evaluation runs, only its mIoU is replaced)."""
    import train.trainer
    from torch.utils.data import Subset

    real, scores = train.trainer.evaluate, list(VAL_MIOU)

    def evaluate(model, dataset, *args, **kwargs):
        result = real(model, dataset, *args, **kwargs)
        # the validation set, carved from train (train/data.py), or its cached backbone outputs
        if isinstance(dataset, Subset) or getattr(dataset, "split", None) == "val":
            result["miou"] = scores.pop(0)
        return result

    monkeypatch.setattr(train.trainer, "evaluate", evaluate)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_kill_at_each_point_of_an_evaluation(point, tmp_path, tiny_train_config, scripted_validation, crash_at):
    import train.trainer

    name, n, file_name = CRASH_POINTS[point]
    owner = {"Trainer": train.trainer.Trainer, "os": os}.get(name.split(".")[0], train.trainer)
    killed = crash_at(owner, name.split(".")[-1], n, **({"when": _named(file_name)} if file_name else {}))
    run = tmp_path / "run"
    with pytest.raises(killed):
        Trainer(tiny_train_config(run, ae_steps=2, steps=4)).run()
    assert not (run / "final").exists(), "the simulated kill must land before the run finished"
    saved = _newest_saved_position(run)
    rows_at_kill = [r for r in _jsonl_rows(run) if _position(r) <= saved]

    Trainer(tiny_train_config(run, ae_steps=2, steps=4)).run()  # the same --out again (the n-th call has passed)
    rows = assert_run_as_if_never_stopped(run, ae_steps=2, steps=4, eval_every=2)
    assert rows[: len(rows_at_kill)] == rows_at_kill, "rows from before the last saved state were changed"
    expected_best = 4 if saved == (1, 4) else 2  # step 4's model counts only if its state was saved
    assert json.loads((run / "best" / "selection.json").read_text())["step"] == expected_best


# -- resuming with other settings; resuming exactly ----------------------------------------------


def test_resuming_with_settings_that_change_the_training_is_refused_before_anything_is_written(tmp_path,
                                                                                               tiny_train_config):
    run = tmp_path / "run"
    Trainer(tiny_train_config(run, ae_steps=2, steps=2)).run()
    saved = (run / "train_config.json").read_text()
    first = tiny_train_config(run, ae_steps=2, steps=2)
    for changes, named in [({"lr": 0.01}, "lr: 0.001 there, 0.01 now"), ({"seed": 1}, "seed: 0 there, 1 now"),
                           ({"overrides": {**first.overrides, "dim": 64}}, "overrides:"),
                           ({"ae_steps": 3, "warmup": 1}, "ae_steps: 2 there, 3 now; warmup: 50 there, 1 now")]:
        with pytest.raises(SettingsError, match=named):
            Trainer(dataclasses.replace(first, **changes))
        assert (run / "train_config.json").read_text() == saved
    with pytest.raises(SettingsError, match="trained 2 stage-2 steps already"):
        Trainer(dataclasses.replace(first, steps=1))

    # what does not change the training may differ, and more steps extend the run, which says so
    Trainer(dataclasses.replace(first, steps=4, num_workers=1)).run()
    assert json.loads((run / "train_config.json").read_text())["steps"] == 4
    training = MangoModel.from_pretrained(run / "final").config.metadata["training"]
    assert training["steps"] == 4 and training["extended_from_steps"] == [2]


class _Interrupted(BaseException):
    """Stands for a kill right after a checkpoint."""


@pytest.mark.parametrize("stage, cache", [("task", True), ("task", False), ("autoencoder", True)])
def test_an_interrupted_run_resumed_ends_with_the_weights_of_an_uninterrupted_one(stage, cache, tmp_path,
                                                                                  tiny_train_config, monkeypatch):
    """The batch order goes on where it stopped, and the random state is the saved one also after
    the backbone caches (whose loaders draw from it) are rebuilt."""
    def config(run):  # 9 training samples: 6 steps of 4 cross epochs, cached (mirrored, 18 rows) or not
        return dataclasses.replace(tiny_train_config(run, ae_steps=4, steps=6), cache_backbones=cache)

    whole = Trainer(config(tmp_path / "whole")).run()
    real = Trainer._evaluate_and_checkpoint

    def interrupted(self, at_stage, *args, **kwargs):
        real(self, at_stage, *args, **kwargs)
        if at_stage == stage and self.state["step"] == 2:
            raise _Interrupted

    monkeypatch.setattr(Trainer, "_evaluate_and_checkpoint", interrupted)
    with pytest.raises(_Interrupted):
        Trainer(config(tmp_path / "resumed")).run()
    monkeypatch.setattr(Trainer, "_evaluate_and_checkpoint", real)
    said = []
    monkeypatch.setattr("train.trainer.tqdm.write", said.append)
    resumed = Trainer(config(tmp_path / "resumed")).run()
    total = 6 if stage == "task" else 4
    assert said[:1] == [f"Resuming {tmp_path / 'resumed'} from {tmp_path / 'resumed' / 'last'} ({stage} stage at step "
                        f"2 of {total})"]

    a, b = (load_file(tmp_path / name / "last" / "model.safetensors") for name in ("whole", "resumed"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run trained on other batches or random draws"
    assert resumed == whole
    assert [r.get("train_loss") for r in _jsonl_rows(tmp_path / "whole")] == \
        [r.get("train_loss") for r in _jsonl_rows(tmp_path / "resumed")]
