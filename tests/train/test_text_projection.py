"""`--text-projection pca`: the pretrained text encoder's projection starts at the principal axes of
the training plots' token states, so stage 2 begins with the most varied D of MiniLM's 384 dims."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mango.models import MangoModel
from train.trainer import Trainer, TrainConfig

WORDS = ("a detective hunts a killer in the rain . two friends fall in love in paris . aliens land on a farm "
         "and a boy hides one . a band tours the south . soldiers cross the desert at night .").split()


@pytest.fixture(scope="module")
def tiny_movies(tmp_path_factory):
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


def _config(root, out, projection: str) -> TrainConfig:
    return TrainConfig(dataset="mmimdb", root=str(root), out=str(out), image_size=128, batch_size=4, ae_steps=0,
                       steps=1, eval_every=1, num_workers=0, device="cpu", thresholds="none",
                       text_projection=projection,
                       overrides=dict(patch_size=32, dim=16, num_blocks=1, head_width=16, decoder_width=32,
                                      text_context_length=16))


def _token_states(trainer: Trainer) -> torch.Tensor:
    encoder = trainer.model.encoders["b"]
    return trainer._text_states("b", encoder, samples=10_000)


def test_pca_projection_keeps_the_most_varied_directions(tiny_movies, tmp_path):
    trainer = Trainer(_config(tiny_movies, tmp_path / "pca", "pca"))
    proj = trainer.model.encoders["b"].proj
    random_weight = proj.weight.detach().clone()
    trainer._initialize_text_projection()
    weight = proj.weight.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(16), atol=1e-4, rtol=0)  # orthonormal axes

    states = _token_states(trainer)
    projected = proj(states).detach()
    torch.testing.assert_close(projected.mean(0), torch.zeros(16), atol=1e-4, rtol=0)  # centred by the bias
    variances = projected.var(0)
    assert torch.all(variances[:-1] >= variances[1:] - 1e-5)  # principal axes, largest first
    # an orthonormal basis of the random initial projection's row space keeps less of the variance
    basis = torch.linalg.qr(random_weight.T).Q.T
    assert variances.sum() > 1.2 * (states - states.mean(0)).matmul(basis.T).var(0).sum()


def test_a_run_with_pca_projection_starts_there_and_random_stays_random(tiny_movies, tmp_path):
    trainer = Trainer(_config(tiny_movies, tmp_path / "pca", "pca"))
    trainer.run()
    weight = MangoModel.from_pretrained(tmp_path / "pca" / "final").encoders["b"].proj.weight.detach()
    assert (weight @ weight.T - torch.eye(16)).abs().max() < 0.05  # one AdamW step away from orthonormal

    trainer = Trainer(_config(tiny_movies, tmp_path / "random", "random"))
    trainer._initialize_text_projection()
    weight = trainer.model.encoders["b"].proj.weight.detach()
    assert (weight @ weight.T - torch.eye(16)).abs().max() > 0.5


def test_an_unknown_projection_start_is_refused(tiny_movies, tmp_path):
    trainer = Trainer(_config(tiny_movies, tmp_path / "x", "svd"))
    with pytest.raises(ValueError, match="text_projection must be 'random' or 'pca'"):
        trainer._initialize_text_projection()
