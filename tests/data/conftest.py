"""Fixtures of the data tests: a tiny SynthRooms data set written once per session."""

from __future__ import annotations

import pytest

from mango.data.synthrooms import write_dataset

TINY_N, TINY_SIZE, TINY_SEED = 6, 64, 7


@pytest.fixture(scope="session")
def synthrooms_tiny(tmp_path_factory):
    """n=6 scenes of 64x64 written in both layouts (two worker processes, test fraction 1/3)."""
    out = tmp_path_factory.mktemp("synthrooms")
    meta = write_dataset(out, TINY_N, TINY_SIZE, seed=TINY_SEED, test_fraction=1 / 3, workers=2, progress=False)
    return out, meta
