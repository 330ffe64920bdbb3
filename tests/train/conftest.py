"""Shared by the training tests: a tiny SynthRooms data set on disk, and a tiny model size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mango.data.synthrooms import write_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]

# A model small enough that a training step takes milliseconds on one CPU thread.
TINY_MODEL = dict(patch_size=8, dim=32, encoder_width=32, encoder_depth=1, decoder_width=32, num_blocks=1,
                  head_width=32)
TINY = dict(preset="tiny", image_size=32, batch_size=4, eval_every=2, num_workers=0, val_fraction=0.25, device="cpu",
            overrides=TINY_MODEL)


@pytest.fixture(scope="session")
def synthrooms(tmp_path_factory) -> Path:
    """16 scenes at 32 px in both layouts: 9 train, 3 validation, 4 test."""
    out = tmp_path_factory.mktemp("synthrooms")
    write_dataset(out, 16, 32, seed=3, test_fraction=0.25, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cli_args(synthrooms):
    """`python -m train` arguments for a tiny segmentation run on the tiny data set."""

    def args(out: Path, ae_steps: int, steps: int, eval_every: int) -> list[str]:
        argv = ["--dataset", "nyudv2", "--root", str(synthrooms / "nyudv2"), "--out", str(out),
                "--ae-steps", str(ae_steps), "--steps", str(steps), "--eval-every", str(eval_every),
                "--preset", "tiny", "--image-size", "32", "--batch-size", "4", "--num-workers", "0", "--val-fraction", "0.25",
                "--device", "cpu"]
        for key, value in TINY_MODEL.items():
            argv += ["--set", f"{key}={value}"]
        return argv

    return args


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    """Environment for a child Python: this checkout's mango/ and train/ (never another install), one thread."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MASTER_", "TORCHELASTIC_")) and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    return env


@pytest.fixture(scope="session")
def tiny_train_config(synthrooms):
    """A `TrainConfig` for a tiny in-process segmentation run on the tiny data set."""
    from train.trainer import TrainConfig

    def config(out: Path, ae_steps: int, steps: int, eval_every: int = 2) -> TrainConfig:
        return TrainConfig(dataset="nyudv2", root=str(synthrooms / "nyudv2"), out=str(out), ae_steps=ae_steps,
                           steps=steps, **{**TINY, "eval_every": eval_every})

    return config
