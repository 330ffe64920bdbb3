"""Task heads: the genre head's pooling over word positions and its token-wise MLP."""

from __future__ import annotations

import pytest
import torch

from mango.models import MangoConfig, MangoModel
from mango.models.config import ConfigError
from mango.models.fusion import combine_outputs, fusion_plan, split_tokens
from mango.models.heads import GenreHead, tokens_to_grid


def test_words_pooling_reads_only_word_positions() -> None:
    torch.manual_seed(0)
    head = GenreHead(num_inputs=2, dim=8, width=16, num_classes=5, pooling="words").eval()
    poster, plot = torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [False] + [True] * 5])
    out = head([poster, plot], [None, pad])
    changed = plot.clone()
    changed[pad] = 100 * torch.randn(int(pad.sum()), 8)  # whatever sits at the pads
    torch.testing.assert_close(head([poster, changed], [None, pad]), out)
    # the first example has no pads: the same as the plain mean
    mean_head = GenreHead(num_inputs=2, dim=8, width=16, num_classes=5, pooling="mean").eval()
    mean_head.load_state_dict(head.state_dict())
    torch.testing.assert_close(mean_head([poster, plot])[0], out[0])
    # without a mask (a prior sample has no plot) every position is read
    torch.testing.assert_close(head([poster, plot]), mean_head([poster, plot]))
    # a mean head never reads the mask
    torch.testing.assert_close(mean_head([poster, changed], [None, pad]), mean_head([poster, changed]))


def test_a_plot_of_nothing_but_pads_gives_a_finite_output() -> None:
    head = GenreHead(num_inputs=2, dim=8, width=0, num_classes=5, pooling="words").eval()
    out = head([torch.randn(1, 6, 8), torch.randn(1, 6, 8)], [None, torch.ones(1, 6, dtype=torch.bool)])
    assert torch.isfinite(out).all()


def test_words_pooling_needs_a_text_modality() -> None:
    with pytest.raises(ConfigError, match="head_pooling"):
        MangoConfig.preset("tiny", "segmentation", head_pooling="words")
    with pytest.raises(ConfigError, match="head_pooling must be one of"):
        MangoConfig.preset("tiny", "genre", head_pooling="max")
    with pytest.raises(ValueError, match="pooling"):
        GenreHead(2, 8, 16, 5, pooling="max")


def test_a_words_pooling_model_pools_each_plot_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", head_pooling="words")).eval()
    posters = torch.rand(2, 3, 32, 32)
    plots = ["A long plot about a detective who returns to an empty city.", "Short."]
    with torch.no_grad():
        out = model(posters, plots)
        assert out.pad_mask is not None and out.pad_mask[1].sum() > out.pad_mask[0].sum()
        # the head's output is what it gives on Z with this mask, not with every position
        torch.testing.assert_close(model.head_output(out.z, out.pad_mask), out.output)
        assert not torch.allclose(model.head_output(out.z), out.output)
        # resampling the poster keeps the plot's word positions; interpolation reads the positions
        # holding a word in either plot
        again = model.resample_modality(posters, plots, "poster", temperature=0.0)
        torch.testing.assert_close(again["output"], model.head_output(again["z"], out.pad_mask))
        walk = model.interpolate((posters[0], plots[0]), (posters[1], plots[1]), steps=3)
        both = (out.pad_mask[0] & out.pad_mask[1]).expand(3, -1)
        torch.testing.assert_close(walk["output"], model.head_output(walk["z"], both))
        assert model.sample(2)["output"].shape == (2, model.config.num_classes)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = MangoModel.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.config.head_pooling == "words"
    with torch.no_grad():
        torch.testing.assert_close(loaded(posters, plots).output, out.output)


def test_a_token_wise_head_reads_more_than_the_mean_of_each_set() -> None:
    torch.manual_seed(0)

    def normalised(v: torch.Tensor) -> torch.Tensor:  # what the head's LayerNorm leaves as it is
        return (v - v.mean()) / v.std(unbiased=False)

    poster = torch.randn(1, 6, 8)
    a, b = normalised(torch.randn(8)), normalised(torch.randn(8))
    # two plots whose tokens differ but average to the same (zero) vector, before and after the norm
    plot_a, plot_b = torch.stack([a, -a] * 3)[None], torch.stack([b, -b] * 3)[None]
    mean_head = GenreHead(2, 8, 16, 5, token_mlp=False).eval()
    token_head = GenreHead(2, 8, 16, 5, token_mlp=True).eval()
    assert len(token_head.token_layers) == 2 and not mean_head.token_layers
    torch.testing.assert_close(mean_head([poster, plot_a]), mean_head([poster, plot_b]), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(token_head([poster, plot_a]), token_head([poster, plot_b]), atol=1e-3)
    # neither reads the order of the positions
    for head in (mean_head, token_head):
        torch.testing.assert_close(head([poster, plot_a.flip(1)]), head([poster, plot_a]))


def test_a_token_wise_head_pools_only_word_positions_when_asked() -> None:
    torch.manual_seed(0)
    head = GenreHead(2, 8, 16, 5, pooling="words", token_mlp=True).eval()
    poster, plot = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    pad = torch.tensor([[False] * 6, [False] * 2 + [True] * 4])
    changed = plot.clone()
    changed[pad] = 50 * torch.randn(int(pad.sum()), 8)
    torch.testing.assert_close(head([poster, changed], [None, pad]), head([poster, plot], [None, pad]))
    assert not torch.allclose(head([poster, changed]), head([poster, plot]))


def test_a_token_wise_head_needs_a_hidden_layer_and_a_genre_task() -> None:
    with pytest.raises(ValueError, match="hidden width"):
        GenreHead(2, 8, 0, 5, token_mlp=True)
    with pytest.raises(ConfigError, match="head_token_mlp"):
        MangoConfig.preset("tiny", "genre", head_token_mlp=True, head_width=0)
    with pytest.raises(ConfigError, match="head_token_mlp"):
        MangoConfig.preset("tiny", "segmentation", head_token_mlp=True)


def test_a_token_wise_head_model_trains_every_head_parameter_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    model = MangoModel(MangoConfig.preset("tiny", "genre", head_token_mlp=True))
    posters, plots = torch.rand(2, 3, 32, 32), ["A detective returns to an empty city.", "Two friends sing."]
    model(posters, plots).output.sum().backward()
    head = model.heads[0]
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        out = model(posters, plots).output
    model.save_pretrained(tmp_path / "ckpt")
    loaded = MangoModel.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.config.head_token_mlp
    with torch.no_grad():
        torch.testing.assert_close(loaded(posters, plots).output, out)


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_each_fusion_kind_feeds_its_heads_the_right_token_sets() -> None:
    plans = {f: fusion_plan(MangoConfig.preset("tiny", "segmentation", fusion=f))
             for f in ("mango", "concat", "late", "single_a", "single_b")}
    assert plans["late"].head_inputs == (("a",), ("b",))
    assert plans["single_a"].head_inputs == (("a",),) and plans["single_a"].modalities == ("a",)
    assert plans["single_b"].head_inputs == (("b",),) and plans["single_b"].modalities == ("b",)
    assert plans["concat"].head_inputs == (("a", "b"),) and not plans["concat"].uses_flow
    assert plans["mango"].head_inputs == (("a", "b"),) and plans["mango"].uses_flow


def test_split_tokens_gives_each_modality_its_own_block() -> None:
    tokens = torch.arange(2 * 6, dtype=torch.float32).view(1, 12, 1).expand(2, 12, 3)
    spans = split_tokens(tokens, ("a", "b"), 6)
    assert spans["a"][0, :, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert spans["b"][0, :, 0].tolist() == [6, 7, 8, 9, 10, 11]


def test_late_fusion_averages_the_heads_outputs() -> None:
    a, b = torch.full((2, 3), 1.0), torch.full((2, 3), 3.0)
    torch.testing.assert_close(combine_outputs([a, b]), torch.full((2, 3), 2.0))
    assert combine_outputs([a]) is a


def test_tokens_fill_the_grid_in_raster_order() -> None:
    b, rows, cols, c = 1, 2, 3, 4
    tokens = torch.arange(rows * cols, dtype=torch.float32).view(1, rows * cols, 1).expand(b, rows * cols, c)
    grid = tokens_to_grid(tokens, (rows, cols))
    assert grid.shape == (b, c, rows, cols)
    for ch in range(c):  # every channel of token t sits at (t // cols, t % cols)
        assert grid[0, ch].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_genre_head_reads_its_token_sets_in_order() -> None:
    head = GenreHead(num_inputs=2, dim=4, width=0, num_classes=1, dropout=0.0).eval()
    for norm in head.norms:  # identity LayerNorm affine
        torch.nn.init.ones_(norm.weight)
        torch.nn.init.zeros_(norm.bias)
    linear = head.mlp[-1]
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[0, 0] = 1.0  # reads one channel of the first set (the poster) only
        # (not the sum of its channels: a LayerNorm output sums to zero)
    first = torch.randn(3, 5, 4)
    out1 = head([first, torch.randn(3, 5, 4)])
    out2 = head([first, 10 * torch.randn(3, 5, 4)])
    torch.testing.assert_close(out1, out2)
    assert out1.abs().sum() > 0
