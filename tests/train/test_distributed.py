"""Distributed training under test: `torchrun --nproc_per_node 2` on CPU (gloo), at a tiny size.

Each rank reports what it holds and what it wrote (tests/train/ddp_worker.py), so the checks do
not rest on rank 0's files alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed

from mango.models import MangoModel

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend")
def test_two_ranks_on_cpu_stay_identical_and_only_rank_zero_writes(tmp_path, tiny_cli_args, child_env):
    run, reports = tmp_path / "run", tmp_path / "reports"
    reports.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(reports), *tiny_cli_args(run, ae_steps=2, steps=4, eval_every=2)]
    done = subprocess.run(command, cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    rank0, rank1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world"] == rank1["world"] == 2
    # the ranks were seeded differently, so they started apart; DDP made them one model
    assert rank0["before"] != rank1["before"], "the check could not tell the ranks apart"
    assert rank0["after"] == rank1["after"], "the ranks' parameters differ after training"
    assert rank0["after"] != rank0["before"], "no training happened"

    assert rank1["writes"] == [], f"rank 1 wrote into the run folder: {rank1['writes'][:5]}"
    assert any("metrics.jsonl" in w for w in rank0["writes"]) and any("last.tmp" in w for w in rank0["writes"])
    assert sorted(p.name for p in run.iterdir()) == [
        "best", "final", "last", "metrics.csv", "metrics.jsonl", "test_metrics.json", "train_config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "run"], "a file was written beside the run"

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in rows] == [("autoencoder", 2), ("task", 2), ("task", 4)]
    final = MangoModel.from_pretrained(run / "final", expected_task="segmentation")
    assert final.config.metadata["training"]["world_size"] == 2
    assert rank0["saved_last"] == rank0["after"], "last/ is not what the ranks hold"


def _torchrun(tmp_path: Path, reports: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(reports), *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend")
def test_two_ranks_resumed_end_with_the_weights_of_an_uninterrupted_run(tmp_path, tiny_cli_args, child_env):
    """Each rank draws its own noise (seed + rank): a resumed run must give each rank its own random
    stream back (it gave every rank rank 0's), or it trains on other noise than the run it continues."""
    digests = {}
    for name, stop_at in (("whole", None), ("resumed", 2)):
        run, reports = tmp_path / name, tmp_path / f"{name}-reports"
        reports.mkdir()
        args = [*tiny_cli_args(run, ae_steps=2, steps=4, eval_every=2), "--set", "feature_noise=0.5"]
        if stop_at:
            stopped = _torchrun(tmp_path, reports, args, {**child_env, "DDP_WORKER_STOP_AT": str(stop_at)})
            assert stopped.returncode != 0 and not (run / "final").exists(), "the run was not stopped"
            assert json.loads((run / "last" / "state.json").read_text())["step"] == stop_at
        done = _torchrun(tmp_path, reports, args, child_env)
        assert done.returncode == 0, done.stderr[-4000:]
        rank0, rank1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
        assert rank0["after"] == rank1["after"]
        digests[name] = rank0["after"]
    assert digests["resumed"] == digests["whole"], "the resumed run trained on other random draws"

