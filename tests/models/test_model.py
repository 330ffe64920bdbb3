"""MangoModel at the demo preset: every task, the baselines, the flow-native operations."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mango.models import MangoModel

TASKS = ("segmentation", "translation", "genre")


def output_shape(model: MangoModel, batch: int) -> tuple[int, ...]:
    c = model.config
    if c.task == "segmentation":
        return (batch, c.num_classes, c.image_size, c.image_size)
    if c.task == "translation":
        return (batch, c.target.channels, c.image_size, c.image_size)
    return (batch, c.num_classes)


def grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0]


@pytest.mark.parametrize("task", TASKS)
def test_forward_backward_and_shapes(task: str, demo_model, make_inputs) -> None:
    model = demo_model(task)
    batch = make_inputs(model.config, batch=2)
    out = model(batch["a"], batch["b"])
    n, d = 2 * model.tokens_per_modality, model.config.dim
    assert out.output.shape == output_shape(model, 2)
    assert out.z.shape == out.features.shape == (2, n, d)
    assert out.log_prob.shape == out.bits_per_dim.shape == (2,)
    assert torch.isfinite(out.output).all() and torch.isfinite(out.log_prob).all()
    assert torch.allclose(out.bits_per_dim, -out.log_prob / (n * d * math.log(2)))
    assert (out.pad_mask is not None) == (task == "genre")

    loss, logs = model.loss(batch)
    loss.backward()
    assert set(logs) == {"loss", "task_loss", "bits_per_dim", "min_attention_diagonal"}
    assert math.isfinite(logs["loss"]) and 0 < logs["min_attention_diagonal"] <= 1
    assert logs["loss"] == pytest.approx(logs["task_loss"] + model.config.nll_weight * logs["bits_per_dim"], rel=1e-5)
    assert grads(model.flow) and grads(model.heads)
    # stage 2 freezes the image encoders; the decoders are stage-1 only
    for key, encoder in model.encoders.items():
        is_text = model.config.modality(key).is_text
        assert bool(grads(encoder)) == is_text
    assert not grads(model.decoders)


@pytest.mark.parametrize("task", TASKS)
def test_z_inverts_to_the_features_and_matches_the_flow_density(task: str, demo_model, make_inputs) -> None:
    model = demo_model(task).eval()
    batch = make_inputs(model.config)
    with torch.no_grad():
        out = model(batch["a"], batch["b"])
        back, _ = model.flow.inverse(out.z)
        assert torch.allclose(back, out.features, atol=1e-4)
        assert torch.allclose(out.log_prob, model.flow.log_prob(out.features), rtol=1e-5)
        assert torch.allclose(out.bits_per_dim, model.flow.bits_per_dim(out.features), rtol=1e-5)
        again = model.forward_features(model.encode(batch["a"], batch["b"]))
        assert torch.allclose(again.output, out.output, atol=1e-5)
    assert model.roundtrip_error(batch["a"], batch["b"]) < 1e-4


@pytest.mark.parametrize("task", ["segmentation", "genre"])
def test_the_nll_gradient_never_reaches_the_encoders(task: str, demo_model, make_inputs) -> None:
    model = demo_model(task, finetune_image_encoders=True)
    batch = make_inputs(model.config)
    out = model(batch["a"], batch["b"])
    out.bits_per_dim.sum().backward()
    assert grads(model.flow)
    assert not grads(model.encoders)
    # with every encoder fine-tuned by the task loss, their gradient does not depend on lambda
    model.eval()  # no dropout: the two passes must see the same network
    per_weight = []
    for weight in (0.0, 5.0):
        model.zero_grad()
        model.config.nll_weight = weight
        model.loss(batch)[0].backward()
        per_weight.append([p.grad.clone() for p in model.encoders.parameters() if p.grad is not None])
    assert per_weight[0] and all(torch.allclose(x, y, atol=1e-6) for x, y in zip(*per_weight))


def test_gradients_reach_the_inputs_for_attribution(demo_model, make_inputs) -> None:
    model = demo_model("genre").eval()
    batch = make_inputs(model.config)
    poster = batch["a"].clone().requires_grad_(True)
    seen = []
    handle = model.text_embedding.register_forward_hook(lambda m, i, o: seen.append(o))
    ids, pad = model.text_tokens(batch["b"])
    out = model(poster, ids)
    handle.remove()
    out.output[:, 0].sum().backward()
    assert poster.grad is not None and poster.grad.abs().sum() > 0
    assert len(seen) == 1 and seen[0].shape[:2] == ids.shape
    assert torch.equal(pad, out.pad_mask) and pad.shape == (2, model.tokens_per_modality)
    assert model.text_encoder.word_pieces(ids[0])[1] == "a"


@pytest.mark.parametrize("task", TASKS)
def test_sample_resample_interpolate(task: str, demo_model, make_inputs) -> None:
    model = demo_model(task).eval()
    c = model.config
    images = {m.name: (m.channels, c.image_size, c.image_size) for m in (c.a, c.b) if not m.is_text}
    shape = (2 * model.tokens_per_modality, c.dim)

    def check(result: dict, n: int) -> None:
        assert result["z"].shape == result["features"].shape == (n, *shape)
        assert result["output"].shape == output_shape(model, n)
        for name, chw in images.items():
            assert result[name].shape == (n, *chw)
        for value in result.values():
            assert torch.isfinite(value).all()

    gen = torch.Generator().manual_seed(1)
    check(model.sample(3, temperature=0.7, generator=gen), 3)
    gen_again = torch.Generator().manual_seed(1)
    assert torch.equal(model.sample(3, 0.7, gen_again)["z"], model.sample(3, 0.7, torch.Generator().manual_seed(1))["z"])

    batch = make_inputs(c, batch=2)
    with torch.no_grad():
        z = model.flow(model.encode(batch["a"], batch["b"]))[0]
    resampled = model.resample_modality(batch["a"], batch["b"], "b", temperature=0.5, generator=gen)
    check(resampled, 2)
    t = model.tokens_per_modality
    assert torch.allclose(resampled["z"][:, :t], z[:, :t]) and not torch.allclose(resampled["z"][:, t:], z[:, t:])
    if not c.a.is_text:
        assert resampled[c.a.name].shape[0] == 2  # keyed by name; "a" works as well as the name
        model.resample_modality(batch["a"], batch["b"], c.a.name)

    x1 = (batch["a"][0], batch["b"][0])
    x2 = (batch["a"][1:], batch["b"][1:])
    path = model.interpolate(x1, x2, steps=4)
    check(path, 4)
    assert torch.allclose(path["z"][0], z[0], atol=1e-5) and torch.allclose(path["z"][-1], z[1], atol=1e-5)
    check(model.interpolate(x1, x2, steps=3, mode="slerp"), 3)


@pytest.mark.parametrize("task", ["segmentation", "genre"])
@pytest.mark.parametrize("fusion", ["coupling", "concat", "late", "single_a", "single_b"])
def test_baselines_share_the_model_class(task: str, fusion: str, demo_model, make_inputs) -> None:
    model = demo_model(task, fusion=fusion)
    batch = make_inputs(model.config)
    out = model(batch["a"], batch["b"])
    assert out.output.shape == output_shape(model, 2)
    tokens = (1 if fusion.startswith("single") else 2) * model.tokens_per_modality
    assert out.features.shape == (2, tokens, model.config.dim)
    loss, logs = model.loss(batch)
    loss.backward()
    assert grads(model.heads)
    if fusion == "coupling":
        assert type(model.flow).__name__ == "CouplingFlow" and out.log_prob.shape == (2,)
        assert model.attention_maps(batch["a"], batch["b"]) == []
        assert model.sample(1)["output"].shape == output_shape(model, 1)
    else:
        assert model.flow is None and out.log_prob is None and "bits_per_dim" not in logs
        assert len(model.heads) == (2 if fusion == "late" else 1)
        with pytest.raises(ValueError, match=fusion):
            model.sample(1)


@pytest.mark.parametrize("partitions, per_block", [(("mmca",), 2), (("mmca", "imca"), 6), (("mmca", "imca", "lica"), 8)])
def test_partitions_ablation_and_attention_maps(partitions, per_block, demo_model, make_inputs) -> None:
    model = demo_model("segmentation", partitions=partitions).eval()
    batch = make_inputs(model.config, batch=1)
    maps = model.attention_maps(batch["a"], batch["b"])
    assert len(maps) == model.config.num_blocks * per_block
    n = model.tokens_per_modality
    assert maps[0].kind == "mmca" and maps[0].attention.shape == (1, 1, n, n)
    assert model.rollout(batch["a"], batch["b"]).shape == (1, 2 * n, 2 * n)


def test_reading_a_model_in_training_mode_changes_nothing(demo_model, make_inputs) -> None:
    """attention_maps / rollout / roundtrip_error on a model in training mode: nothing in it moves
    (an ActNorm that was never trained stays uninitialised), the answers do not vary with dropout,
    and it is left in training mode."""
    model = demo_model("genre", actnorm=True, text_word_dropout=0.5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = make_inputs(model.config, batch=2)
    first = model.attention_maps(batch["a"], batch["b"])
    again = model.attention_maps(batch["a"], batch["b"])
    for m, n in zip(first, again):
        torch.testing.assert_close(m.attention, n.attention)
    torch.testing.assert_close(model.rollout(batch["a"], batch["b"]), model.rollout(batch["a"], batch["b"]))
    model.roundtrip_error(batch["a"], batch["b"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.training


@pytest.mark.parametrize("task", TASKS)
def test_a_samples_prediction_does_not_follow_the_temperature(task: str, demo_model) -> None:
    """What the app's sampling text says: one seed draws the same latent directions at every τ, and
    the head normalises each latent token, so the prediction stays while the decoded inputs change."""
    model = demo_model(task).eval()
    cool, warm = (model.sample(2, temperature=t, generator=torch.Generator().manual_seed(0)) for t in (0.3, 1.0))
    torch.testing.assert_close(cool["output"], warm["output"], atol=1e-3, rtol=1e-3)
    image = next(k for k in cool if k not in ("z", "features", "output") and isinstance(cool[k], torch.Tensor))
    assert not torch.allclose(cool[image], warm[image], atol=1e-3)


def test_decode_and_autoencoder_stage(demo_model, make_inputs) -> None:
    model = demo_model("genre")
    batch = make_inputs(model.config)
    with torch.no_grad():
        decoded = model.decode(model.encode(batch["a"], batch["b"]))
    assert list(decoded) == ["poster"] and decoded["poster"].shape == (2, 3, 256, 256)  # text: no decoder
    loss, logs = model.autoencoder_loss(batch)
    loss.backward()
    assert set(logs) == {"recon_poster", "loss"}
    assert grads(model.encoders["a"]) and grads(model.decoders) and not grads(model.flow)
    assert model.tokens_grid == (8, 8)
    with pytest.raises(ValueError, match="no image modality"):
        demo_model("genre", fusion="single_b").autoencoder_loss(batch)


def test_segmentation_target_all_ignored_gives_zero_loss(demo_model, make_inputs) -> None:
    model = demo_model("segmentation", nll_weight=0.0)
    batch = make_inputs(model.config, batch=1)
    batch["target"][:] = 255
    loss, logs = model.loss(batch)
    assert logs["task_loss"] == 0.0 and torch.isfinite(loss)


def test_saving_over_a_checkpoint_that_fails_part_way_leaves_the_old_one(demo_model, tmp_path, monkeypatch) -> None:
    """The weights are written under a temporary name first and the config last: a save that dies
    while writing the weights leaves the old checkpoint as it was (no new config beside old weights)."""
    import safetensors.torch

    old, new = demo_model("segmentation", seed=0), demo_model("segmentation", seed=1, dim=64)
    old.save_pretrained(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}

    def dies(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(tmp_path / "ckpt")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == before
    monkeypatch.undo()
    loaded = MangoModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.dim == old.config.dim
