"""Photometric jitter of the RGB-D training images: colours only, training only, off by default."""

from __future__ import annotations

import pytest
import torch

from mango.data import NYUDv2
from mango.data.transforms import ColourJitter


def test_colour_jitter_keeps_shape_and_range_and_changes_colours():
    torch.manual_seed(0)
    x = torch.rand(3, 32, 32) * 0.5 + 0.25
    outs = [ColourJitter()(x) for _ in range(8)]
    for y in outs:
        assert y.shape == x.shape and y.dtype == x.dtype
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert sum(not torch.allclose(y, x, atol=1e-3) for y in outs) >= 7  # brightness alone almost always moves
    assert len({round(float(y.mean()), 4) for y in outs}) == len(outs)  # a new draw each call


def test_colour_jitter_refuses_a_depth_map():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        ColourJitter()(torch.rand(1, 8, 8))


def test_photometric_changes_only_the_colour_image_and_only_in_training(synthrooms_tiny):
    out, _ = synthrooms_tiny
    root = out / "nyudv2"
    plain = NYUDv2(root, "train", image_size=64, train=True)
    jittered = NYUDv2(root, "train", image_size=64, train=True, photometric=True)
    torch.manual_seed(3)
    p = plain[0]
    torch.manual_seed(3)  # the same crop and flip are drawn first, then the jitter
    j = jittered[0]
    assert torch.equal(p["b"], j["b"]) and torch.equal(p["target"], j["target"])  # depth and labels untouched
    assert not torch.allclose(p["a"], j["a"], atol=1e-3)
    # evaluation reading ignores the option: the same image every time, equal to the plain reading
    ev = NYUDv2(root, "train", image_size=64, train=False, photometric=True)
    assert ev.colour_jitter is None
    assert torch.equal(ev[0]["a"], NYUDv2(root, "train", image_size=64)[0]["a"])
