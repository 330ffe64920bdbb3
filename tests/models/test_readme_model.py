"""The README's "The model" snippet runs as written on the bundled checkpoints, with inputs
prepared as its bullet on units says (`mango.data.transforms`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mango.data.transforms import PairedTransform, decode_domain, depth_to_unit, fill_depth_holes, rgb_to_unit

ROOT = Path(__file__).resolve().parents[2]
SCENES = ROOT / "assets" / "examples" / "synthrooms"


def _snippet() -> str:
    section = (ROOT / "README.md").read_text().split("## The model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _square(x: torch.Tensor, size: int) -> torch.Tensor:
    """As the README says: the loaders' geometry, shorter side resized and the centre cropped."""
    transform = PairedTransform(size, train=False)
    return transform.image(x, transform.params(*x.shape[-2:]))


def _read(scene: str, domain: str) -> np.ndarray:
    return np.asarray(Image.open(SCENES / scene / f"{domain}.png"))


def _scene(scene: str, size: int = 128) -> dict[str, torch.Tensor]:
    depth, _ = fill_depth_holes(_read(scene, "depth"))
    return {"rgb": _square(rgb_to_unit(_read(scene, "rgb")), size)[None],
            "depth": _square(depth_to_unit(depth), size)[None],
            "reshading": _square(decode_domain("reshading", _read(scene, "reshading")), size)[None],
            "edge_texture": _square(decode_domain("edge_texture", _read(scene, "edge_texture")), size)[None]}


@pytest.mark.slow
def test_the_readme_snippet_runs_on_the_bundled_checkpoints(monkeypatch):
    monkeypatch.chdir(ROOT)  # its checkpoint paths are relative to the repository
    first, second = _scene("scene-011"), _scene("scene-023")
    poster = rgb_to_unit(np.asarray(Image.open(ROOT / "assets/examples/films/lantern-tide/poster.png").convert("RGB")))
    poster = _square(poster, 256)  # a 256 × 384 poster's centre square
    names = dict(rgb=first["rgb"], depth=first["depth"], rgb1=first["rgb"], depth1=first["depth"],
                 rgb2=second["rgb"], depth2=second["depth"], poster=poster[None],
                 reshading=first["reshading"], edge_texture=first["edge_texture"])
    with torch.no_grad():
        exec(compile(_snippet(), "README.md", "exec"), names)  # noqa: S102 - the README's own code
    out = names["out"]
    assert out.output.shape == (1, names["model"].config.num_classes, 128, 128)
    assert torch.isfinite(out.bits_per_dim).all()
    assert set(names["names"]) <= set(names["genre"].config.class_names)
    assert names["rgb_out"].shape == (1, 3, 128, 128)
    # what the units bullet promises: a wrongly scaled input is refused, naming its units
    with pytest.raises(ValueError, match=r"'depth'\) holds values from \d+ to \d+: .*metres / 10"):
        names["model"](first["rgb"], first["depth"] * 1e4)
    with pytest.raises(TypeError, match=r"'rgb'\) is a torch.uint8 tensor.*8-bit values / 255"):
        names["model"]((first["rgb"] * 255).to(torch.uint8), first["depth"])
