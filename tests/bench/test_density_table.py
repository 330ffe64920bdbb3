"""The README's density table against what each bundled checkpoint stored (`metadata.sampling`, written by
`python -m mango.bench density ... --write-config`, and its test bits/dim): a rerun that stores new numbers
must not leave the README quoting the old ones. (The diagonal and channel baselines, and the Gaussian at
its own best temperature, are in no bundled file.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = {"segmentation": "segmentation", "shade + texture → rgb": "translation-shade-texture",
        "depth + normal → rgb": "translation-depth-normal", "genre": "genre"}


@pytest.mark.parametrize("row, name", ROWS.items(), ids=list(ROWS.values()))
def test_the_density_table_quotes_what_the_checkpoint_stored(row, name, readme_table):
    path = ROOT / "assets" / "checkpoints" / name / "config.json"
    if not path.exists():
        pytest.skip(f"no bundled {name} checkpoint")
    metadata = json.loads(path.read_text())["metadata"]
    sampling, bits = metadata["sampling"], metadata["test_metrics"]["bits_per_dim"]
    cells = next(r for r in readme_table("| checkpoint | flow bits/dim | diagonal | channel |") if r["checkpoint"] == row)
    assert float(cells["flow bits/dim"].replace("−", "-")) == pytest.approx(bits, abs=5e-4)
    assert float(cells["KID recon."]) == pytest.approx(sampling["kid_reconstruction"], abs=0.05)
    flow, temperature = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", cells["KID flow (τ)"]).groups()
    assert float(flow) == pytest.approx(sampling["kid_flow"], abs=0.05)
    assert float(temperature) == sampling["temperature"]
    assert float(cells["KID Gaussian"]) == pytest.approx(sampling["kid_gaussian"], abs=0.05)
    closed = (sampling["kid_gaussian"] - sampling["kid_flow"]) / (sampling["kid_gaussian"] - sampling["kid_reconstruction"])
    assert cells["gap closed"] == f"{100 * closed:.0f} %"
