"""One rank of the distributed training test: `torchrun ... ddp_worker.py REPORT_DIR TRAIN_ARGS...`.

Trains through the same entry points as `python -m train` (`parse_args`, `Trainer`), and writes to
REPORT_DIR/rank{N}.json what this rank saw, so that the test need not trust rank 0's files:
- a digest of this rank's parameters before training (ranks start from different seeds) and after;
- every write this process made inside the run folder (`--out`), caught by a Python audit hook;
- on rank 0, the digest of the parameters saved in `last/`.
With DDP_WORKER_STOP_AT=N in the environment, every rank stops (exit code 3) right after the
evaluation and checkpoint at stage-2 step N, as a run killed there would, and reports nothing.
Safetensors writes tensors from Rust, unseen by the hook, but only into a folder this process
creates first, and that `mkdir` is seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from mango.models import MangoModel
from train.__main__ import parse_args
from train.trainer import Trainer

WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree", "shutil.copyfile",
                "shutil.move", "os.link", "os.symlink", "os.chmod"}


def parameter_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def watch_writes(folder: Path) -> list[str]:
    """Record, from now on, every file-system change this process makes under `folder`."""
    root, seen = str(folder.resolve()), []

    def inside(path: object) -> bool:
        try:
            path = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return False
        return path == root or path.startswith(root + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
            if writing and path is not None and inside(path):
                seen.append(f"open({mode or flags}) {path}")
        elif event in WRITE_EVENTS and args and inside(args[0]):
            seen.append(f"{event} {args[0]}")

    sys.addaudithook(hook)
    return seen


def main(argv: list[str]) -> None:
    report_dir, train_args = Path(argv[0]), argv[1:]
    cfg = parse_args(train_args)
    rank = int(os.environ["RANK"])
    writes = watch_writes(Path(cfg.out))
    trainer = Trainer(cfg)
    before = parameter_digest(trainer.model)
    # the digest of the trained model as training left it: rank 0 then reloads the best checkpoint
    # to score it (Trainer._finish), which may be from an earlier step
    trained: list[str] = []
    finish = trainer._finish
    trainer._finish = lambda: (trained.append(parameter_digest(trainer.model)), finish())[1]  # type: ignore[method-assign]
    stop_at = int(os.environ.get("DDP_WORKER_STOP_AT", "0"))
    if stop_at:
        checkpoint = trainer._evaluate_and_checkpoint

        def checkpoint_then_stop(stage, *args):
            checkpoint(stage, *args)
            if stage == "task" and trainer.state["step"] == stop_at:
                sys.exit(3)

        trainer._evaluate_and_checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    trainer.run()
    report = dict(rank=rank, world=trainer.world, before=before,
                  after=trained[0] if trained else parameter_digest(trainer.model), writes=list(writes))
    if rank == 0:
        report["saved_last"] = parameter_digest(MangoModel.from_pretrained(Path(cfg.out) / "last"))
    (report_dir / f"rank{rank}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
