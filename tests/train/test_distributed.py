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


GLOO = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                          reason="this torch build has no gloo backend")


def _torchrun(cwd: Path, reports: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(reports), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _tiny_args(tiny_cli_args, run: Path) -> list[str]:
    """Each rank draws its own noise (seed + rank), which the resume test needs."""
    return [*tiny_cli_args(run, ae_steps=2, steps=4, eval_every=2), "--set", "feature_noise=0.5"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_cli_args, child_env) -> Path:
    """One uninterrupted two-rank run (a launch costs seconds), for both tests: its folder holds
    run/ and reports/ and nothing else."""
    folder = tmp_path_factory.mktemp("ddp")
    (folder / "reports").mkdir()
    done = _torchrun(folder, folder / "reports", _tiny_args(tiny_cli_args, folder / "run"), child_env)
    assert done.returncode == 0, done.stderr[-4000:]
    return folder


@pytest.mark.slow
@GLOO
def test_two_ranks_on_cpu_stay_identical_and_only_rank_zero_writes(uninterrupted):
    run, reports = uninterrupted / "run", uninterrupted / "reports"
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
    assert sorted(p.name for p in uninterrupted.iterdir()) == ["reports", "run"], "a file was written beside the run"

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in rows] == [("autoencoder", 2), ("task", 2), ("task", 4)]
    final = MangoModel.from_pretrained(run / "final", expected_task="segmentation")
    assert final.config.metadata["training"]["world_size"] == 2
    assert rank0["saved_last"] == rank0["after"], "last/ is not what the ranks hold"


@pytest.mark.slow
@GLOO
def test_two_ranks_resumed_end_with_the_weights_of_an_uninterrupted_run(tmp_path, tiny_cli_args, child_env,
                                                                        uninterrupted):
    """Each rank draws its own noise (seed + rank): a resumed run must give each rank its own random
    stream back (it gave every rank rank 0's), or it trains on other noise than the run it continues."""
    run, reports = tmp_path / "run", tmp_path / "reports"
    reports.mkdir()
    args = _tiny_args(tiny_cli_args, run)
    stopped = _torchrun(tmp_path, reports, args, {**child_env, "DDP_WORKER_STOP_AT": "2"})
    assert stopped.returncode != 0 and not (run / "final").exists(), "the run was not stopped"
    assert json.loads((run / "last" / "state.json").read_text())["step"] == 2
    done = _torchrun(tmp_path, reports, args, child_env)
    assert done.returncode == 0, done.stderr[-4000:]
    rank0, rank1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["after"] == rank1["after"]
    whole = json.loads((uninterrupted / "reports" / "rank0.json").read_text())["after"]
    assert rank0["after"] == whole, "the resumed run trained on other random draws"
