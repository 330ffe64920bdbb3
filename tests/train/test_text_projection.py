"""`--text-projection pca|labels`: the pretrained text encoder's projection starts at the principal
axes of the training plots' token states (the most varied D of MiniLM's 384 dims), or at the
directions that predict the training genres first, then principal axes."""

from __future__ import annotations

import pytest
import torch

from mango.models import MangoModel
from train.text_projection import label_axes, principal_axes
from train.trainer import Trainer, TrainConfig

def _config(root, out, projection: str) -> TrainConfig:
    return TrainConfig(dataset="mmimdb", root=str(root), out=str(out), image_size=128, batch_size=4, ae_steps=0,
                       steps=1, eval_every=1, num_workers=0, device="cpu", thresholds="none",
                       text_projection=projection,
                       overrides=dict(patch_size=32, dim=16, num_blocks=1, head_width=16, decoder_width=32,
                                      text_context_length=16))


def _token_states(trainer: Trainer) -> torch.Tensor:
    encoder = trainer.model.encoders["b"]
    return trainer._text_states("b", encoder, samples=10_000)[0]


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
    with pytest.raises(ValueError, match="text_projection must be 'random', 'pca' or 'labels'"):
        Trainer(_config(tiny_movies, tmp_path / "x", "svd"))  # before the data is read


def _quiet_signal(seed: int = 0, n: int = 400, channels: int = 12):
    """States whose labels depend on two low-variance channels only: the principal axes miss them."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([5.0] * (channels - 2) + [0.3, 0.3])
    pooled = torch.randn(n, channels, generator=g) * scales
    labels = torch.stack([pooled[:, -2] > 0, pooled[:, -1] > 0.2], 1).float()
    states = torch.randn(4 * n, channels, generator=g) * scales
    return pooled, labels, states


def test_label_axes_keep_the_directions_that_predict_the_labels():
    pooled, labels, states = _quiet_signal()
    axes = label_axes(pooled, labels, states, dim=4, ridge=0.01)
    torch.testing.assert_close(axes @ axes.T, torch.eye(4), atol=1e-5, rtol=0)
    # the first two rows span the two label channels; PCA's four keep neither
    assert torch.all(axes[:2, -2:].pow(2).sum(1) > 0.99)
    # a stronger ridge leans towards the high-variance channels
    shrunk = label_axes(pooled, labels, states, dim=4, ridge=1.0)
    assert torch.all(shrunk[:2, -2:].pow(2).sum(1) < axes[:2, -2:].pow(2).sum(1))
    pca = principal_axes(states, dim=4)
    assert pca[:, -2:].pow(2).sum() < 0.05
    # the other rows are principal axes of what is left: high-variance channels, off the label span
    assert torch.all(axes[2:, :-2].pow(2).sum(1) > 0.95)


def test_label_axes_skip_a_constant_label_and_refuse_what_does_not_fit():
    pooled, labels, states = _quiet_signal()
    with_constant = torch.cat([labels, torch.ones(len(labels), 1)], 1)
    axes = label_axes(pooled, with_constant, states, dim=3)
    torch.testing.assert_close(axes @ axes.T, torch.eye(3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="do not fit"):
        label_axes(pooled, labels, states, dim=13)
    with pytest.raises(ValueError, match="must be"):
        label_axes(pooled, labels[:10], states, dim=4)


def test_a_labels_start_puts_the_genre_directions_first(tiny_movies, tmp_path):
    trainer = Trainer(_config(tiny_movies, tmp_path / "labels", "labels"))
    trainer._initialize_text_projection()
    encoder = trainer.model.encoders["b"]
    weight = encoder.proj.weight.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(16), atol=1e-4, rtol=0)
    states, pooled, targets = trainer._text_states("b", encoder, samples=10_000)
    assert len(pooled) == len(targets) == 16  # 8 training films and their mirrored copies
    assert targets.shape[1] == trainer.model.config.num_classes
    torch.testing.assert_close(encoder.proj(states).detach().mean(0), torch.zeros(16), atol=1e-4, rtol=0)
    # the four genres' ridge directions are the first rows: a least-squares fit of the labels
    # on the pooled states projected onto them is as good as on all 384 dimensions
    present = targets[:, targets.std(0) > 0]
    centred = pooled - pooled.mean(0)
    def residual(x):
        y = present - present.mean(0)
        solution = torch.linalg.lstsq(x.double(), y.double()).solution
        return (y.double() - x.double() @ solution).pow(2).sum()
    first = present.shape[1]
    assert residual(centred @ weight[:first].T) < residual(centred @ weight[first:2 * first].T)


def test_a_labels_start_needs_labels_per_example(tiny_train_config, tmp_path):
    config = tiny_train_config(tmp_path / "seg", ae_steps=0, steps=1)
    config.text_projection = "labels"
    with pytest.raises(ValueError, match="needs multi-label targets"):
        Trainer(config)._initialize_text_projection()


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def test_as_many_axes_as_channels_or_labels_are_allowed():
    """D may equal the text width (a 384-d projection of MiniLM's 384 dims) and may equal the number of
    labels: all the axes / only label directions, still orthonormal."""
    g = torch.Generator().manual_seed(0)
    states = torch.randn(20, 4, generator=g)
    axes = principal_axes(states, dim=4)
    torch.testing.assert_close(axes @ axes.T, torch.eye(4), atol=1e-5, rtol=0)
    pooled, labels, states = _quiet_signal()
    only_labels = label_axes(pooled, labels, states, dim=2, ridge=0.01)
    torch.testing.assert_close(only_labels @ only_labels.T, torch.eye(2), atol=1e-5, rtol=0)
    assert torch.all(only_labels[:, -2:].pow(2).sum(1) > 0.99)
    every = label_axes(pooled, labels, states, dim=12)
    torch.testing.assert_close(every @ every.T, torch.eye(12), atol=1e-5, rtol=0)


def test_the_rows_after_the_label_span_are_the_next_principal_axes():
    """When the label direction is also the most varied one, the principal axes must be taken off the
    label span: else the top axis repeats it and the next most varied direction is lost."""
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    pooled = torch.randn(400, 6, generator=g) * scales
    labels = (pooled[:, :1] > 0).float()  # one label, read off the most varied channel
    states = torch.randn(1600, 6, generator=g) * scales
    axes = label_axes(pooled, labels, states, dim=3, ridge=0.01)
    torch.testing.assert_close(axes @ axes.T, torch.eye(3), atol=1e-5, rtol=0)
    assert axes[0, 0].pow(2) > 0.95  # the label direction first
    assert axes[1:, 1:3].pow(2).sum() > 1.9  # then channels 1 and 2, the most varied of the rest
