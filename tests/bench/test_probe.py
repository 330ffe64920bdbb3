"""`python -m mango.bench probe` on a tiny genre model with a known answer: the genre is in the
poster (bright or dark), never in the plot."""

from __future__ import annotations

import pytest
import torch

from mango.bench import probe
from mango.models import MangoConfig, MangoModel

TINY = dict(image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1, decoder_width=32,
            num_blocks=1, head_width=32, text_width=32, text_layers=1, text_context_length=16)
PLOTS = ["A storm at sea.", "Two friends open a bakery in a small town.", "A detective's last case."]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def films(n: int, seed: int) -> list[dict]:
    """Genre 0 for a bright poster, genre 1 for a dark one; the plot cycles independently of both."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        bright = i % 2 == 0
        poster = (0.75 if bright else 0.25) + 0.1 * torch.rand(3, 32, 32, generator=g)
        target = torch.zeros(23)
        target[0 if bright else 1] = 1.0
        out.append({"a": poster, "b": PLOTS[i % 3], "target": target, "id": str(i)})
    return out


def test_probe_finds_the_genre_in_the_modality_that_carries_it():
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY)).eval()
    result = probe.probe(model, films(24, seed=1), films(12, seed=2), batch_size=8)
    assert set(result) == set(probe.LEVELS)
    for level in probe.LEVELS:
        assert set(result[level]) == {"both", "poster", "plot"}
        assert result[level]["poster"]["macro_f1"] == 1.0 and result[level]["both"]["macro_f1"] == 1.0
    # the plot alone carries nothing until the flow mixes the poster into its half of Z
    assert result["backbone"]["plot"]["macro_f1"] < 0.8 and result["features"]["plot"]["macro_f1"] < 0.8
    assert result["features"]["poster"]["width"] == 32 and result["features"]["both"]["width"] == 64
    table = probe.format_table(result)
    assert table.count("\n") == 1 + len(probe.LEVELS) and "| latent |" in table


def test_probe_needs_a_genre_model_with_a_flow():
    model = MangoModel(MangoConfig.preset("tiny", "genre", **TINY, fusion="concat"))
    with pytest.raises(ValueError, match="genre checkpoint with a flow"):
        probe.pooled_tokens(model, films(2, seed=0))
