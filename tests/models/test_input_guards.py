"""What a library user gets wrong is refused with the fix, not read as garbage: images in another
scale or type, NaN, token ids outside the vocabulary, a sample of nothing, a seed where a generator
goes, a modality named instead of 'a'/'b', a mistyped local folder that looks like a Hub id."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mango.interpret import likelihood_change
from mango.models import MangoModel
from mango.models.errors import CheckpointNotFoundError, HubOfflineError


@pytest.fixture(scope="module")
def segmentation(request):
    from .conftest import build

    return build("segmentation").eval()


def _inputs(model, batch=1):
    size = model.config.image_size
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, size, size, generator=gen), torch.rand(batch, 1, size, size, generator=gen)


WRONG = {  # what users pass instead of [0, 1] floats, and what the message must say
    "8-bit colour as uint8": (lambda rgb, d: ((rgb * 255).to(torch.uint8), d), TypeError, r"'rgb'\) is a torch.uint8"),
    "8-bit colour as floats": (lambda rgb, d: (rgb * 255, d), ValueError, r"'rgb'\) holds values from .* to 25\d"),
    "ImageNet-normalised colour": (lambda rgb, d: ((rgb - 0.45) / 0.225, d), ValueError, r"'rgb'\) holds values from -2"),
    "colour in [-1, 1]": (lambda rgb, d: (rgb * 2 - 1, d), ValueError, r"'rgb'\) holds values from -1"),
    "depth in millimetres": (lambda rgb, d: (rgb, d * 4000), ValueError, r"'depth'\) holds .*metres / 10"),
    "depth in metres": (lambda rgb, d: (rgb, d * 10), ValueError, r"'depth'\) holds values from .* to \d\.\d+"),
    "a depth camera's holes as NaN": (lambda rgb, d: (rgb, d.masked_fill(d < 0.01, float("nan"))), ValueError,
                                      r"'depth'\) holds NaN values.*fill_depth_holes"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_images_in_another_scale_or_type_are_refused_with_their_units(case, segmentation):
    change, error, message = WRONG[case]
    rgb, depth = _inputs(segmentation)
    with pytest.raises(error, match=message):
        segmentation(*change(rgb, depth))


def test_the_unit_range_itself_passes_and_so_does_its_edge(segmentation):
    rgb, depth = _inputs(segmentation)
    rgb[..., 0, 0], depth[..., 0, 0] = 0.0, 1.0
    assert torch.isfinite(segmentation(rgb, depth).bits_per_dim).all()
    segmentation(rgb.double(), depth.half())  # other float types are read as floats
    segmentation(rgb + 1e-4, depth)  # a resize's rounding past 1 is not an error


def test_token_ids_outside_the_vocabulary_are_refused():
    from .conftest import build

    model = build("genre").eval()
    poster = torch.rand(1, 3, model.config.image_size, model.config.image_size)
    vocab = model.text_encoder.embedding.num_embeddings
    with pytest.raises(ValueError, match=rf"token ids must be in \[0, {vocab}\).*got 0 to {vocab}"):
        model(poster, torch.tensor([[0, 5, vocab]]))
    with pytest.raises(ValueError, match=r"got -1 to 5"):
        model(poster, torch.tensor([[-1, 5]]))
    model(poster, torch.tensor([[1, 5, vocab - 1]]))


def test_sampling_takes_a_seed_and_refuses_what_means_nothing(segmentation):
    first, again = segmentation.sample(2, 0.5, generator=7), segmentation.sample(2, 0.5, generator=7)
    assert torch.equal(first["z"], again["z"])
    assert not torch.equal(first["z"], segmentation.sample(2, 0.5, generator=8)["z"])
    seeded = segmentation.sample(2, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first["z"], seeded["z"])  # an int seed is the generator it names
    rgb, depth = _inputs(segmentation)
    assert torch.equal(segmentation.resample_modality(rgb, depth, "depth", 0.5, generator=3)["z"],
                       segmentation.resample_modality(rgb, depth, "depth", 0.5, generator=3)["z"])
    for bad, error, message in [(dict(n=0), ValueError, "n .* >= 1, got 0"), (dict(n=2.5), ValueError, "got 2.5"),
                                (dict(n=2, generator="7"), TypeError, "an int seed or None, got str"),
                                (dict(n=2, temperature=-0.5), ValueError, "temperature must be >= 0")]:
        with pytest.raises(error, match=message):
            segmentation.sample(**bad)


def test_the_likelihood_change_takes_the_modality_s_name_too(segmentation):
    rgb, depth = _inputs(segmentation)
    change = likelihood_change(segmentation, rgb, depth)
    assert torch.equal(change.delta_bits_per_dim("depth"), change.delta_bits_per_dim("b"))
    assert torch.equal(change.delta_log_prob("rgb"), change.delta_log_prob("a"))
    with pytest.raises(ValueError, match=r"removed must be 'a', 'b', 'rgb' or 'depth', got 'poster'"):
        change.delta_bits_per_dim("poster")


def test_a_missing_folder_that_looks_like_a_hub_id_says_both(offline_hub):
    with pytest.raises(HubOfflineError, match=r"no local folder 'checkpoints/segmentatio', so it was read as a Hub "
                                              r"repo id: cannot load MANGO checkpoint config"):
        MangoModel.from_pretrained("checkpoints/segmentatio")
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint folder at 'assets/checkpoints/segmentatio'"):
        MangoModel.from_pretrained("assets/checkpoints/segmentatio")


@pytest.mark.slow
def test_the_model_classes_import_from_the_package_without_loading_torch_first():
    code = ("import sys, mango; assert 'torch' not in sys.modules; "
            "from mango import MangoModel, MangoConfig; from mango.models import MangoModel as M; assert MangoModel is M")
    subprocess.run([sys.executable, "-c", code], check=True)
