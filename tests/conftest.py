"""Shared fixtures: the real development data beside the repository, when it is there, a tiny
stand-in in its MM-IMDb layout, and the README's tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MANGO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# One thread per pytest-xdist worker: two processes spinning two threads each on 2 cores slow each other
# down many times over, and most tests' tensors are too small to gain from a second thread.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("*") for cell in line.strip("|").split("|")]


@pytest.fixture(scope="session")
def readme_table():
    """``readme_table(after)``: the rows, as {header: cell} with bold marks dropped, of the first README
    table at or after the first line that starts with ``after``. The tests that hold the README's quoted
    numbers to their bundled sources read its tables this way."""
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()

    def read(after: str) -> list[dict[str, str]]:
        start = next(i for i, line in enumerate(lines) if line.startswith(after))
        first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
        rows = []
        for line in lines[first + 2:]:  # the header, then the rule
            if not line.startswith("|"):
                break
            rows.append(dict(zip(_cells(lines[first]), _cells(line))))
        return rows

    return read


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


WORDS = ("a detective hunts a killer in the rain . two friends fall in love in paris . aliens land on a farm "
         "and a boy hides one . a band tours the south . soldiers cross the desert at night .").split()


@pytest.fixture(scope="session")
def tiny_movies(tmp_path_factory) -> Path:
    """12 films with random posters and plots drawn from a small vocabulary: 8 train, 2 dev, 2 test."""
    root = tmp_path_factory.mktemp("movies")
    (root / "dataset").mkdir()
    rng = np.random.default_rng(0)
    ids = [str(i) for i in range(12)]
    genres = ["Drama", "Comedy", "Horror", "Romance"]
    for i in ids:
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)).save(root / "dataset" / f"{i}.jpeg")
        plot = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 14))))
        chosen = list(rng.choice(genres, size=2, replace=False))
        (root / "dataset" / f"{i}.json").write_text(json.dumps({"plot": [plot], "genres": chosen}))
    (root / "split.json").write_text(json.dumps({"train": ids[:8], "dev": ids[8:10], "test": ids[10:]}))
    return root


def pytest_collection_modifyitems(config, items):
    """Files with a test marked slow run first. pytest-xdist hands each worker whole files in this order
    (pytest.ini's --no-loadscope-reorder), so the long ones start early instead of leaving one worker busy
    at the end while the other waits."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: each file's tests keep their order
