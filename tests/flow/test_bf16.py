"""bf16 autocast on CPU: the flow computes in float32 inside it (its state, attention, mixing,
triangular solves, log-det sums, the prior), so a model run under autocast keeps the exact
inverse and log-det, while its encoders, decoders and heads run in bf16.

Stated tolerances (2 blocks of 2x16 tokens, D = 32): the flow's output and log-det under autocast
equal the float32 ones to float32 precision; its round trip stays below 1e-4. A model's bits/dim
under autocast differs from float32 by less than 0.05 (the bf16 encoders move the features)."""

from __future__ import annotations

import torch

from mango.flow import ICALayer, MangoFlow, mmca_partitions
from mango.models import MangoConfig, MangoModel


def _flow(**options) -> MangoFlow:
    torch.manual_seed(0)
    flow = MangoFlow(32, 16, num_blocks=2, key_dim=16, coupling_hidden=32, **options)
    with torch.no_grad():  # away from the identity: couplings and gates that do something
        for name, p in flow.named_parameters():
            if not name.endswith("log_temperature"):
                p.add_(0.1 * torch.randn_like(p))
    return flow


def test_the_flow_computes_in_float32_under_bf16_autocast():
    x = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(1))
    for options in ({}, {"value_affine": True}, {"gate_range": (-0.5, 0.5), "gate_init": 0.0}):
        flow = _flow(**options)
        z32, logdet32 = flow(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z, logdet = flow(x.bfloat16())  # bf16 features, as a bf16 encoder gives them
            back, inv_logdet = flow.inverse(z)
            nll = -(flow.prior_log_prob(z) + logdet)
        assert z.dtype == logdet.dtype == back.dtype == nll.dtype == torch.float32
        z_ref, logdet_ref = flow(x.bfloat16().float())
        torch.testing.assert_close(z, z_ref)
        torch.testing.assert_close(logdet, logdet_ref)
        assert (z - z32).abs().max() < 0.1  # only the input's bf16 rounding differs
        assert (back - x.bfloat16().float()).abs().max() < 1e-4
        torch.testing.assert_close(inv_logdet, -logdet, rtol=1e-5, atol=1e-3)


def test_the_attention_read_out_under_autocast_is_the_attention_forward_used():
    """Training logs the mixing under autocast; the app reads a bf16 feature: what they show must be
    the float32 attention the flow computes with, not a bf16 recomputation of it."""
    flow = _flow(value_affine=True)
    x = torch.randn(2, 32, 32, generator=torch.Generator().manual_seed(2))
    plain, plain_rollout = flow.attention_maps(x), flow.rollout(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        maps, rollout = flow.attention_maps(x), flow.rollout(x)
    for mixed, ref in zip(maps, plain):
        assert mixed.attention.dtype == torch.float32
        torch.testing.assert_close(mixed.attention, ref.attention, rtol=0, atol=0)
    torch.testing.assert_close(rollout, plain_rollout, rtol=0, atol=0)
    assert flow.rollout(x.half()).dtype == torch.float32  # half features: read in float32, no dtype clash


def test_an_ica_layer_alone_keeps_its_mixing_and_solve_in_float32():
    torch.manual_seed(0)
    layer = ICALayer(mmca_partitions(8)[0], 16, value_affine=True)
    x = torch.randn(2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, logdet = layer(x)
        x_back, inv_logdet = layer.inverse(y)
    assert y.dtype == x_back.dtype == logdet.dtype == torch.float32
    assert (x_back - x).abs().max() < 1e-5
    torch.testing.assert_close(inv_logdet, -logdet)


def test_model_loss_and_bits_per_dim_under_bf16_autocast():
    torch.manual_seed(0)
    config = MangoConfig.preset("tiny", "segmentation", image_size=32, patch_size=8, dim=32, num_blocks=1,
                                encoder_width=32, encoder_depth=1, decoder_width=32, head_width=32,
                                a={"name": "rgb", "channels": 3, "encoder": "vit"},
                                b={"name": "depth", "channels": 1, "encoder": "vit"})
    model = MangoModel(config).eval()
    gen = torch.Generator().manual_seed(0)
    rgb, depth = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 1, 32, 32, generator=gen)
    with torch.no_grad():
        plain = model(rgb, depth)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(rgb, depth)
            features = model.encode(rgb, depth)
            error = model.flow.roundtrip_error(features)
    assert (mixed.output.float() - plain.output).abs().max() > 0  # bf16 did run around the flow
    assert mixed.bits_per_dim.dtype == mixed.log_prob.dtype == torch.float32
    assert (mixed.bits_per_dim - plain.bits_per_dim).abs().max() < 0.05
    assert error < 1e-4
    batch = {"a": rgb, "b": depth, "target": torch.randint(0, config.num_classes, (2, 32, 32))}
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
