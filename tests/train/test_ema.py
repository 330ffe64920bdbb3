"""Stage 2's moving average of the weights (`--ema-decay`): it is what validation scores, what
best/ keeps and what a resumed run continues from; the trained weights stay in last/ for resuming."""

from __future__ import annotations

import json

import pytest
import torch

from mango.models import MangoModel
from train.__main__ import parse_args
from train.trainer import Trainer


def _floats(model: MangoModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().float() for k, v in model.state_dict().items() if v.is_floating_point()}


def _record_trained_weights(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """The trained (not averaged) weights at every evaluation, in order."""
    seen: list[dict[str, torch.Tensor]] = []
    save_state = Trainer._save_state

    def spy(self, opt, sched, *rest):
        if self.state["stage"] == "task":
            seen.append(_floats(self.model))
        save_state(self, opt, sched, *rest)

    monkeypatch.setattr(Trainer, "_save_state", spy)
    return seen


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_moving_average_is_scored_kept_and_shipped(tiny_train_config, tmp_path, monkeypatch):
    run = tmp_path / "ema"
    trained = _record_trained_weights(monkeypatch)
    cfg = tiny_train_config(run, ae_steps=1, steps=3, eval_every=1)
    cfg.ema_decay = 0.5
    Trainer(cfg).run()
    assert len(trained) == 3

    # with warm-up, step 1 copies the weights and step s > 1 averages at min(1 - 1/s, 0.5) = 0.5
    expected = [trained[0]]
    for weights in trained[1:]:
        expected.append({k: 0.5 * expected[-1][k] + 0.5 * weights[k] for k in weights})
    averaged = _floats(MangoModel.from_pretrained(run / "last" / "ema"))
    assert _close(averaged, expected[-1]), "last/ema/ must hold the moving average of the trained weights"
    assert _close(_floats(MangoModel.from_pretrained(run / "last")), trained[-1]), "last/ keeps the trained weights"
    assert not _close(averaged, trained[-1]), "the average must differ from the last weights, or the test shows nothing"

    chosen = json.loads((run / "best" / "selection.json").read_text())["step"]
    assert _close(_floats(MangoModel.from_pretrained(run / "best")), expected[chosen - 1]), \
        "best/ must keep the average at the step validation chose"
    assert _close(_floats(MangoModel.from_pretrained(run / "final")), expected[chosen - 1])


def test_a_resumed_run_continues_the_saved_average(tiny_train_config, tmp_path, monkeypatch):
    run = tmp_path / "ema"
    cfg = tiny_train_config(run, ae_steps=1, steps=2, eval_every=1)
    cfg.ema_decay = 0.9
    Trainer(cfg).run()
    saved = _floats(MangoModel.from_pretrained(run / "last" / "ema"))
    assert not _close(saved, _floats(MangoModel.from_pretrained(run / "last")))

    started: list[dict[str, torch.Tensor]] = []
    start_ema = Trainer._start_ema

    def spy(self, resuming):
        start_ema(self, resuming)
        started.append(_floats(self.ema.module))

    monkeypatch.setattr(Trainer, "_start_ema", spy)
    more = tiny_train_config(run, ae_steps=1, steps=3, eval_every=1)
    more.ema_decay = 0.9
    Trainer(more).run()
    assert len(started) == 1 and _close(started[0], saved), "a resumed run must start from its saved average"


def test_ema_decay_from_the_command_line_and_out_of_range(tiny_train_config, tmp_path):
    assert parse_args(["--dataset", "mmimdb", "--root", "r", "--out", "o", "--ema-decay", "0.98"]).ema_decay == 0.98
    assert parse_args(["--dataset", "mmimdb", "--root", "r", "--out", "o"]).ema_decay == 0.0
    cfg = tiny_train_config(tmp_path / "bad", ae_steps=0, steps=1)
    cfg.ema_decay = 1.0
    with pytest.raises(ValueError, match="ema_decay"):
        Trainer(cfg).run()
