"""`--flow-lr-scale`: in stage 2 the flow learns at lr x scale while the head and projections learn at lr."""

from __future__ import annotations

import pytest
import torch

from mango.models import MangoModel
from train.__main__ import parse_args
from train.trainer import Trainer


def test_the_flow_gets_its_own_learning_rate(tiny_train_config, tmp_path):
    cfg = tiny_train_config(tmp_path / "run", ae_steps=0, steps=1)
    cfg.lr, cfg.flow_lr_scale = 2e-3, 0.25
    trainer = Trainer(cfg)
    opt, _ = trainer._optimizer("task")  # initial_lr: the scheduler scales "lr" by its warm-up
    flow = {id(p) for p in trainer.model.flow.parameters()}
    lr_of = {id(p): group["initial_lr"] for group in opt.param_groups for p in group["params"]}
    assert len(lr_of) == sum(len(g["params"]) for g in opt.param_groups), "a parameter in two groups"
    assert set(lr_of) == {id(p) for p in trainer._parameters("task")}, "the groups must hold every trained parameter"
    assert flow and flow <= set(lr_of)
    assert all(lr_of[i] == pytest.approx(5e-4) for i in flow)
    assert all(lr == pytest.approx(2e-3) for i, lr in lr_of.items() if i not in flow)

    cfg.flow_lr_scale = 1.0  # the default keeps the single group that runs saved before it can resume
    assert len(Trainer(cfg)._optimizer("task")[0].param_groups) == 1


def test_a_flow_at_scale_zero_stays_where_stage_two_found_it(tiny_train_config, tmp_path, monkeypatch):
    cfg = tiny_train_config(tmp_path / "run", ae_steps=1, steps=3, eval_every=3)
    cfg.flow_lr_scale = 0.0
    at_start: dict[str, dict[str, torch.Tensor]] = {}
    make_optimizer = Trainer._optimizer

    def spy(self, stage):
        if stage == "task":
            at_start["flow"] = {k: v.detach().clone() for k, v in self.model.flow.state_dict().items()}
            at_start["head"] = {k: v.detach().clone() for k, v in self.model.heads.state_dict().items()}
        return make_optimizer(self, stage)

    monkeypatch.setattr(Trainer, "_optimizer", spy)
    Trainer(cfg).run()
    trained = MangoModel.from_pretrained(tmp_path / "run" / "last")
    flow, head = trained.flow.state_dict(), trained.heads.state_dict()
    assert all(torch.equal(flow[k], v) for k, v in at_start["flow"].items()), "a flow at lr 0 must not move"
    assert any(not torch.equal(head[k], v) for k, v in at_start["head"].items()), "the head must still learn"


def test_flow_lr_scale_from_the_command_line_and_out_of_range(tiny_train_config, tmp_path):
    args = ["--dataset", "mmimdb", "--root", "r", "--out", "o"]
    assert parse_args(args + ["--flow-lr-scale", "0.1"]).flow_lr_scale == 0.1
    assert parse_args(args).flow_lr_scale == 1.0
    cfg = tiny_train_config(tmp_path / "bad", ae_steps=0, steps=1)
    cfg.flow_lr_scale = -1.0
    with pytest.raises(ValueError, match="flow_lr_scale"):
        Trainer(cfg)
