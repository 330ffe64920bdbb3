"""No tensor is made on the default device.

On a GPU the model and its inputs live on CUDA, and a tensor made without ``device=`` lands on the
CPU beside them: a CUDA run then stops (as training did, in the whitening's start, until it was
first run on a GPU). With ``meta`` as the default device such a tensor breaks here too, on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from .conftest import build, make_batch


@pytest.mark.parametrize("task", ["segmentation", "translation", "genre"])
@pytest.mark.parametrize("fusion", ["mango", "late"])
def test_training_and_inference_make_tensors_on_the_inputs_device(task, fusion):
    model = build(task, fusion=fusion)
    batch = make_batch(model.config)
    for key in ("a", "b"):  # the tokenizer library makes its tensors on the default device: tokenize first
        if model.config.modality(key).is_text:
            batch[key] = model.text_tokens(batch[key])[0]
    features = model.encode(batch["a"], batch["b"]).detach()
    with torch.device("meta"):
        if model.has_flow and model.flow.whitening is not None:
            model.flow.initialize_whitening(features)
        loss, _ = model.loss(batch)
        loss.backward()
        model.autoencoder_loss(batch)[0].backward()
        model.eval()
        with torch.no_grad():
            model(batch["a"], batch["b"])
            if model.has_flow:
                model.sample(2, generator=torch.Generator().manual_seed(0))
                assert model.roundtrip_error(batch["a"], batch["b"]) < 1e-3
                model.attention_maps(batch["a"], batch["b"])
                model.rollout(batch["a"], batch["b"])


def test_gaussian_baselines_fit_score_and_sample_on_the_cpu():
    """The density baselines work in float64 on the CPU whatever device the features come from."""
    from mango.density import fit_baselines

    features = torch.randn(50, 4, 3)
    with torch.device("meta"):
        for baseline in fit_baselines(features).values():
            assert baseline.mean.device.type == "cpu"
            assert torch.isfinite(baseline.bits_per_dim(features)).all()
            assert baseline.sample(2, generator=torch.Generator().manual_seed(0)).device.type == "cpu"
