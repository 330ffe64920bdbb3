"""Shared fixtures: the real development data beside the repository, when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MANGO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tiny models and captum's many small passes: on a shared
    2-core machine a second spinning thread only adds synchronisation (many times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (MM-IMDb-style films, NYUDv2 samples); tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real development data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def movies_root(shared_data: Path) -> Path:
    root = shared_data / "movies"
    if not (root / "split.json").is_file():
        pytest.skip(f"MM-IMDb-style films not found at {root}")
    return root


@pytest.fixture(scope="session")
def nyudv2_root(shared_data: Path) -> Path:
    root = shared_data / "nyudv2-samples"
    if not (root / "val.txt").is_file():
        pytest.skip(f"NYUDv2 samples not found at {root}")
    return root
