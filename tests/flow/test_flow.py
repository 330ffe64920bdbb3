"""Every invertible module in mango.flow, tested as zuko/nflows test theirs.

Layers are tested with *randomised* parameters: at initialisation many layers are the identity or
close to it (zero-initialised conditioners, W = P, small gates), where a wrong Jacobian would hide.
Every ICA form (gated, signed gate, identity_plus, diag_bias, literal, with the value affine) goes
through the same round-trip, Jacobian, gradient and save/load tests.
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load, save
from torch.autograd.functional import jacobian

from mango.flow import (
    ICA_FORMS,
    ActNorm,
    AffineCoupling,
    CouplingFlow,
    FlowSequence,
    GaussianWhitening,
    ICALayer,
    LearnedTokenMixing,
    MangoFlow,
    TokenAffineCoupling,
    imca_partitions,
    lica_partitions,
    lica_permutation,
    mmca_partitions,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # thousands of tiny ops: a second thread only waits

T, D = 4, 4  # tiny: N = 8 tokens, Jacobians of 32 x 32


def randomize(module: torch.nn.Module, seed: int = 0, scale: float = 0.5, diag_bias: bool = True) -> torch.nn.Module:
    """Move every parameter away from its identity initialisation (keeps temperatures sane).

    ``diag_bias=True`` also drops the ICA diagonal bias to [0, 2]: strongly mixing attention, only
    invertible in float64 at tiny sizes (SPEC 2); False keeps the bias and perturbs the rest."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("log_temperature"):
                continue
            if name.endswith("diag_bias"):
                if diag_bias:
                        p.copy_(torch.rand(p.shape, generator=gen) * 2.0)  # attention far from the identity
                continue
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _ica(partition, **kw):
    return ICALayer(partition, D, key_dim=3, **kw)


LAYERS = {
    "mmca_a_to_b": lambda: _ica(mmca_partitions(T)[0]),
    "mmca_b_to_a": lambda: _ica(mmca_partitions(T)[1]),
    **{f"imca_{i}": (lambda i=i: _ica(imca_partitions(T)[i])) for i in range(4)},
    "lica_1": lambda: _ica(lica_partitions(T)[0]),
    "lica_2": lambda: _ica(lica_partitions(T)[1]),
    "ica_two_heads": lambda: ICALayer(imca_partitions(T)[1], D, key_dim=3, heads=2),
    "ica_signed_gate": lambda: _ica(imca_partitions(T)[1], gate_range=(-0.5, 0.5), gate_init=-0.1),
    "ica_identity_plus": lambda: _ica(mmca_partitions(T)[0], form="identity_plus"),
    "ica_diag_bias": lambda: _ica(mmca_partitions(T)[1], form="diag_bias"),
    "ica_literal": lambda: _ica(imca_partitions(T)[2], form="literal"),
    "ica_exclude_self": lambda: _ica(imca_partitions(T)[0], exclude_self=True, gate_range=(0.15, 0.5), gate_init=0.25),
    "ica_unit_diagonal": lambda: _ica(imca_partitions(T)[3], unit_diagonal=True, gate_range=(0.15, 0.5), gate_init=0.4),
    "ica_value_affine": lambda: _ica(lica_partitions(T)[0], value_affine=True),
    "ica_value_affine_two_heads": lambda: ICALayer(mmca_partitions(T)[0], D, key_dim=3, heads=2, value_affine=True),
    "affine_coupling": lambda: AffineCoupling(D, hidden=8),
    "affine_coupling_swap": lambda: AffineCoupling(D + 1, hidden=8, swap=True),
    "token_coupling": lambda: TokenAffineCoupling(mmca_partitions(T)[0], D, hidden=8),
    "token_coupling_lica": lambda: TokenAffineCoupling(lica_partitions(T)[0], D, hidden=8),
    "actnorm": lambda: ActNorm(D),
    "gaussian_whitening": lambda: GaussianWhitening(2 * T, D),
    "gaussian_whitening_scale": lambda: GaussianWhitening(2 * T, D, position_scale=True),
    "mango_flow_whitening": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, coupling_hidden=8, whitening=True),
    "mango_flow_whitening_scale": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, coupling_hidden=8, whitening=True,
                                                    whitening_scale=True),
    "mango_flow": lambda: MangoFlow(D, T, num_blocks=2, key_dim=3, coupling_hidden=8),
    "mango_flow_actnorm_heads": lambda: MangoFlow(D, T, num_blocks=1, heads=2, key_dim=3, actnorm=True),
    "mango_flow_value_affine": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, value_affine=True, coupling_hidden=8),
    "mango_flow_exclude_self": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, value_affine=True, exclude_self=True,
                                                 gate_range=(0.15, 0.5), gate_init=0.25, coupling_hidden=8),
    "mango_flow_unit_diagonal": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, value_affine=True, unit_diagonal=True,
                                                  gate_range=(0.15, 0.5), gate_init=0.4, coupling_hidden=8),
    "mango_flow_identity_plus": lambda: MangoFlow(D, T, num_blocks=1, key_dim=3, ica_form="identity_plus"),
    "coupling_flow": lambda: CouplingFlow(D, T, num_blocks=2, coupling_hidden=8),
}


def make(name: str, dtype=torch.float64) -> torch.nn.Module:
    torch.manual_seed(0)  # initial weights too, so every run tests the same module
    module = LAYERS[name]()
    # whole flows stack many layers: a milder push keeps them well-conditioned, yet far from identity
    randomize(module, scale=0.1 if "flow" in name else 0.5)
    return module.to(dtype)


def tiny_input(module, batch=3, dtype=torch.float64, seed=1):
    dim = D + 1 if isinstance(module, AffineCoupling) and module.dim == D + 1 else D
    return torch.randn(batch, 2 * T, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("name", LAYERS)
def test_round_trip_float64(name):
    module = make(name)
    x = tiny_input(module)
    y, _ = module(x)
    x_back, _ = module.inverse(y)
    assert not torch.allclose(y, x, atol=1e-3), "randomised layer should not be the identity"
    # a randomised stack of 16+ layers multiplies condition numbers: float64 keeps ~1e-8 there
    tol = 1e-6 if "flow" in name else 1e-9
    torch.testing.assert_close(x_back, x, atol=tol, rtol=tol)


@pytest.mark.parametrize("name", LAYERS)
def test_logdet_matches_autograd_jacobian(name):
    module = make(name)
    x = tiny_input(module, batch=2)
    _, logdet = module(x)
    y, _ = module(x)
    _, inv_logdet = module.inverse(y)
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        jac = jacobian(lambda v: module(v)[0], xb).reshape(xb.numel(), xb.numel())
        sign, expected = torch.linalg.slogdet(jac)
        assert sign != 0
        torch.testing.assert_close(logdet[b], expected, atol=1e-8, rtol=1e-8)
        yb = y[b : b + 1]
        inv_jac = jacobian(lambda v: module.inverse(v)[0], yb).reshape(yb.numel(), yb.numel())
        torch.testing.assert_close(inv_logdet[b], torch.linalg.slogdet(inv_jac)[1], atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(inv_logdet, -logdet)


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_reach_every_parameter(name):
    module = make(name, dtype=torch.float32)
    x = tiny_input(module, dtype=torch.float32)
    y, logdet = module(x)
    loss = -(MangoFlow.prior_log_prob(y) + logdet).mean()
    loss.backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", LAYERS)
def test_eval_equals_train_and_state_dict_round_trip(name):
    module = make(name, dtype=torch.float32)
    x = tiny_input(module, dtype=torch.float32)
    module.train()
    y_train, ld_train = module(x)
    module.eval()
    y_eval, ld_eval = module(x)
    torch.testing.assert_close(y_eval, y_train)
    torch.testing.assert_close(ld_eval, ld_train)

    blob = save({k: v.contiguous() for k, v in module.state_dict().items()})
    fresh = LAYERS[name]().to(torch.float32).eval()
    fresh.load_state_dict(load(blob))
    y_loaded, ld_loaded = fresh(x)
    torch.testing.assert_close(y_loaded, y_eval)
    torch.testing.assert_close(ld_loaded, ld_eval)


def test_layers_start_where_documented():
    """Couplings start as the identity; a gated ICA layer at A = 0.9 I + 0.1 S, not saturated."""
    x = torch.randn(2, 2 * T, D)
    for name in ("affine_coupling", "token_coupling", "token_coupling_lica"):
        y, logdet = LAYERS[name]()(x)
        torch.testing.assert_close(y, x)
        torch.testing.assert_close(logdet, torch.zeros(2))
    layer = LAYERS["mmca_a_to_b"]()
    amap = layer.attention_map(x, 0, 0)
    torch.testing.assert_close(amap.gate, torch.tensor([0.1]))
    eye = torch.eye(T)
    torch.testing.assert_close(amap.attention, 0.9 * eye + 0.1 * amap.scores)
    # the softmax is not saturated: the first-row-excluded scores are far from one-hot
    assert torch.diagonal(amap.scores, dim1=-2, dim2=-1)[..., 1:].max() < 0.99
    y, _ = LAYERS["ica_diag_bias"]()(x)  # the first release's form: the identity to about e^-10
    assert (y - x).abs().max() < 1e-2


# -- ICA attention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form,row_sum", [("gated", 1.0), ("literal", 1.0), ("identity_plus", 2.0)])
@pytest.mark.parametrize("heads", [1, 2])
def test_attention_is_causal_with_positive_diagonal(heads, form, row_sum):
    layer = randomize(ICALayer(imca_partitions(8)[2], 8, heads=heads, form=form))
    x = torch.randn(3, 16, 8)
    amap = layer.attention_map(x, block=0, layer=0)
    attn = amap.attention
    assert attn.shape == amap.scores.shape == (3, heads, 8, 8)
    torch.testing.assert_close(attn.sum(-1), torch.full((3, heads, 8), row_sum))
    torch.testing.assert_close(amap.scores.sum(-1), torch.ones(3, heads, 8))
    above = torch.ones(8, 8, dtype=torch.bool).triu(1)
    assert (attn[..., above] == 0).all(), "entries above the diagonal must be exactly zero"
    assert (torch.diagonal(attn, dim1=-2, dim2=-1) > 0).all()
    assert (amap.off_diagonal_share() > 0.01).all(), "randomised attention should mix"


@pytest.mark.parametrize("gate_range", [(0.0, 0.5), (-0.5, 0.5)])
def test_gated_mixing_is_diagonally_dominant_whatever_the_attention(gate_range):
    """The docstring's bounds: A_ii - sum_j |A_ij| >= 1 - 2 alpha, ||A^-1||_inf <= min(1/(1 - 2 alpha), n/(1 - alpha))."""
    torch.manual_seed(0)
    n = 16
    layer = ICALayer(mmca_partitions(n)[0], 8, form="gated", gate_range=gate_range,
                     gate_init=0.0 if gate_range[0] < 0 else 0.1).double()
    for logit in (-6.0, -1.0, 0.0, 2.0, 6.0):  # gates from the bottom to the top of the range
        with torch.no_grad():
            layer.attention.gate_logit.fill_(logit)
            layer.attention.log_temperature.fill_(-3.0)  # sharp, far-from-uniform attention
        amap = layer.attention_map(torch.randn(4, 2 * n, 8, dtype=torch.float64) * 3, 0, 0)
        a = amap.attention[:, 0]
        alpha = float(amap.gate)
        margin = torch.diagonal(a, dim1=-2, dim2=-1) - (a.abs().sum(-1) - torch.diagonal(a, dim1=-2, dim2=-1).abs())
        assert margin.min() >= min(1.0, 1 - 2 * alpha) - 1e-9
        inverse_norm = torch.linalg.inv(a).abs().sum(-1).max()
        bound = 1 / (1 - 2 * alpha) if alpha > 0 else 1.0
        assert inverse_norm <= min(bound, n / (1 - alpha) if alpha > 0 else bound) + 1e-9


def test_token_mixing_reproduces_each_layer_exactly():
    """Y = M(X) X per channel, for fixed and learned partitions, with M in original token positions."""
    for layer in (_ica(mmca_partitions(T)[1]), _ica(imca_partitions(T)[3]), _ica(lica_partitions(T)[1])):
        layer = randomize(layer).double()
        x = tiny_input(layer)
        y, _ = layer(x)
        mixing = layer.attention_map(x, 0, 0).token_mixing()
        torch.testing.assert_close(mixing @ x, y)


def test_rollout_reproduces_flow_without_couplings():
    flow = MangoFlow(D, T, num_blocks=2, key_dim=3).double()
    with torch.no_grad():  # randomise the mixing layers only; the couplings stay the identity
        for _, _, layer in flow.ica_layers():
            randomize(layer)
    x = tiny_input(flow)
    z, _ = flow(x)
    torch.testing.assert_close(flow.rollout(x) @ x, z)
    assert not torch.allclose(z, x, atol=1e-3)


def test_reading_a_flow_in_training_mode_changes_nothing():
    """attention_maps, rollout and roundtrip_error run in eval mode: an uninitialised ActNorm is not
    initialised from the input being looked at, and every submodule keeps its own mode."""
    torch.manual_seed(0)
    flow = MangoFlow(8, 4, num_blocks=1, actnorm=True).train()
    assert isinstance(flow.blocks[0].layers[0], ActNorm)
    flow.blocks[0].layers[-1].eval()  # a submodule kept in eval mode stays so
    modes = [m.training for m in flow.modules()]
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    x = torch.randn(2, 8, 8) * 3 + 1
    flow.attention_maps(x)
    flow.rollout(x)
    flow.roundtrip_error(x)
    for k, v in flow.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert [m.training for m in flow.modules()] == modes
    flow(x)  # training itself still initialises ActNorm from its first batch
    assert bool(flow.blocks[0].layers[0].initialized)


def test_attention_maps_token_indices_match_partitions():
    flow = MangoFlow(8, 4, num_blocks=2)
    maps = flow.attention_maps(torch.randn(2, 8, 8))
    assert len(maps) == 2 * 8
    assert [m.kind for m in maps[:8]] == ["mmca"] * 2 + ["imca"] * 4 + ["lica"] * 2
    assert [(m.block, m.layer) for m in maps[:3]] == [(0, 0), (0, 1), (0, 2)]
    a, b = [0, 1, 2, 3], [4, 5, 6, 7]
    expected = {
        "MMCA A→B": (a, b),
        "MMCA B→A": (b, a),
        "IMCA [A¹,B¹|A²,B²]": ([0, 1, 4, 5], [2, 3, 6, 7]),
        "IMCA [A¹,B²|A²,B¹]": ([0, 1, 6, 7], [2, 3, 4, 5]),
        "IMCA [A²,B¹|A¹,B²]": ([2, 3, 4, 5], [0, 1, 6, 7]),
        "IMCA [A²,B²|A¹,B¹]": ([2, 3, 6, 7], [0, 1, 4, 5]),
        "LICA 1": ([0, 5, 2, 7], [4, 1, 6, 3]),
        "LICA 2": ([4, 1, 6, 3], [0, 5, 2, 7]),
    }
    for m in maps:
        assert sorted(torch.cat([m.query_tokens, m.value_tokens]).tolist()) == list(range(8))
        q, v = expected[m.name]
        assert m.query_tokens.tolist() == q and m.value_tokens.tolist() == v, m.name
        assert (m.mixing is not None) == (m.kind == "lica")
        assert m.attention.shape == (2, 1, 4, 4)


def test_lica_mixing_is_p_l_u_and_inverts():
    mixing = randomize(LearnedTokenMixing("LICA", lica_permutation(T))).double()
    x = tiny_input(mixing)
    w = mixing.mixing_matrix()
    torch.testing.assert_close(mixing.mix(x), w @ x)
    torch.testing.assert_close(mixing.unmix(mixing.mix(x)), x)
    lower = torch.tril(mixing.lower, -1) + torch.eye(2 * T, dtype=torch.float64)
    upper = torch.triu(mixing.upper, 1) + torch.diag(torch.exp(mixing.log_s))
    perm = torch.eye(2 * T, dtype=torch.float64)[mixing.permutation]
    torch.testing.assert_close(w, perm @ lower @ upper)
    # its log-det is not zero: that it cancels inside an ICA layer is what the Jacobian test shows
    assert torch.linalg.slogdet(w)[1].abs() > 1e-3


# -- the flow ---------------------------------------------------------------------------------------


def test_round_trip_float32_demo_size():
    torch.manual_seed(0)
    flow = randomize(MangoFlow(128, 64, num_blocks=2), scale=0.05, diag_bias=False)
    x = torch.randn(4, 128, 128)
    z, _ = flow(x)
    assert (z - x).abs().max() > 0.1, "perturbed flow should not be the identity"
    assert flow.roundtrip_error(x) < 1e-4


PAPER_DEPTH_FORMS = {
    "gated": {},
    "gated, signed": dict(gate_range=(-0.5, 0.5), gate_init=0.0),
    "gated, value affine": dict(value_affine=True),
    "gated, strict causal, value affine": dict(value_affine=True, exclude_self=True),
    "gated, unit diagonal, value affine": dict(value_affine=True, unit_diagonal=True),
    "diag_bias": dict(ica_form="diag_bias"),
}


def _correlated_tokens(gen: torch.Generator, batch: int = 2, dim: int = 16) -> torch.Tensor:
    """Non-Gaussian features whose tokens are strongly correlated, so a flow has something to learn."""
    base = torch.randn(batch, 128, dim, generator=gen)
    running_mean = torch.tril(torch.ones(128, 128)) / torch.arange(1, 129).view(-1, 1)
    return torch.tanh(2 * running_mean @ base) + 0.1 * base


def _train_by_likelihood(flow: MangoFlow, gen: torch.Generator, steps: int = 100) -> torch.Tensor:
    """`steps` Adam steps (lr 5e-3) of maximum likelihood on correlated tokens; the last loss."""
    opt = torch.optim.Adam(flow.parameters(), lr=5e-3)
    for _ in range(steps):
        z, logdet = flow(_correlated_tokens(gen))
        loss = -(MangoFlow.prior_log_prob(z) + logdet).mean() / z[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss


def _paper_depth_flow(**options) -> MangoFlow:
    torch.manual_seed(0)
    return MangoFlow(16, 64, num_blocks=12, key_dim=8, coupling_hidden=16, **options)


@pytest.mark.parametrize("form", PAPER_DEPTH_FORMS)
def test_round_trip_float32_at_paper_depth_at_initialisation(form):
    """12 blocks (96 ICA layers) of 2x64 tokens invert in float32 to better than 1e-3."""
    flow = _paper_depth_flow(**PAPER_DEPTH_FORMS[form])
    assert flow.roundtrip_error(_correlated_tokens(torch.Generator().manual_seed(0))) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("form", ["gated", "gated, signed", "gated, value affine", "gated, strict causal, value affine"])
def test_round_trip_float32_at_paper_depth_after_training(form):
    """...and still after 100 Adam steps (lr 5e-3) of maximum likelihood on correlated tokens."""
    flow = _paper_depth_flow(**PAPER_DEPTH_FORMS[form])
    start = {k: v.clone() for k, v in flow.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    loss = _train_by_likelihood(flow, gen)
    moved = max(float((v - start[k]).abs().max()) for k, v in flow.state_dict().items() if v.is_floating_point())
    assert moved > 0.2 and torch.isfinite(loss)
    error = flow.roundtrip_error(_correlated_tokens(gen))
    assert error < 1e-3, f"{form}: round trip {error:.1e} after training"


def _demo_ica() -> dict:
    from mango.models import MangoConfig

    demo = MangoConfig.preset("demo")
    return dict(gate_range=demo.gate_range, gate_init=demo.gate_init, value_affine=demo.value_affine)


@pytest.mark.slow
def test_the_demo_presets_gate_floor_inverts_at_demo_depth_after_training():
    """The demo preset keeps alpha >= 0.25 at 2 blocks: float32 round trip < 1e-4 after 100 Adam steps."""
    torch.manual_seed(0)
    flow = MangoFlow(16, 64, num_blocks=2, key_dim=8, coupling_hidden=16, **_demo_ica())
    gen = torch.Generator().manual_seed(1)
    _train_by_likelihood(flow, gen)
    assert flow.roundtrip_error(_correlated_tokens(gen)) < 1e-4


def test_the_demo_presets_gate_floor_does_not_invert_at_paper_depth():
    """...but at 12 blocks the floor's compounded inverse amplification loses float32: why the floor is
    the demo preset's and not the default."""
    assert _paper_depth_flow(**_demo_ica()).roundtrip_error(_correlated_tokens(torch.Generator().manual_seed(0))) > 1e-2


def test_identity_plus_does_not_invert_at_paper_depth():
    """The authors' A = I + S has rows summing to 2: over 96 layers X2 tokens grow ~2^48 and the
    float32 round trip is lost. Documented, kept for the ablation only."""
    flow = _paper_depth_flow(ica_form="identity_plus")
    assert flow.roundtrip_error(_correlated_tokens(torch.Generator().manual_seed(0))) > 1.0


def test_gradients_reach_queries_and_keys_at_a_useful_size_unless_saturated():
    """How strongly the off-diagonal attention mass responds to the query map at initialisation:
    the first release's diagonal bias saturates the softmax, so it responds far less than in the
    gated form (and the authors' identity_plus form)."""
    x = torch.randn(4, 2 * 16, 16, generator=torch.Generator().manual_seed(0))
    norms = {}
    for form in ("gated", "identity_plus", "diag_bias"):
        torch.manual_seed(0)
        layer = ICALayer(mmca_partitions(16)[0], 16, form=form)
        x1, _ = layer.partition.split(x)
        attn, _ = layer.attention.mixing(layer.attention.log_scores(x1))
        (attn.sum() - torch.diagonal(attn, dim1=-2, dim2=-1).sum()).backward()
        norms[form] = float(layer.attention.to_q.weight.grad.norm())
    assert norms["gated"] > 0.5 and norms["identity_plus"] > 0.5
    assert norms["diag_bias"] < norms["gated"] / 5


@pytest.mark.parametrize("gate_range", [(0.0, 0.5), (-0.5, 0.5)])
def test_a_short_training_run_makes_a_gated_layer_mix_more(gate_range):
    """Fit a student ICA layer to a teacher that mixes strongly: the off-diagonal share, the figure
    training logs, grows from its starting value."""
    torch.manual_seed(0)
    teacher = ICALayer(mmca_partitions(16)[0], 8, form="gated", gate_init=0.45)
    student = ICALayer(mmca_partitions(16)[0], 8, form="gated", gate_range=gate_range, gate_init=0.1)
    x = torch.randn(32, 32, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        target = teacher(x)[0]
    before = float(student.attention_map(x, 0, 0).off_diagonal_share().mean())
    opt = torch.optim.Adam(student.parameters(), lr=3e-2)
    for _ in range(150):
        loss = ((student(x)[0] - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = float(student.attention_map(x, 0, 0).off_diagonal_share().mean())
    assert before < 0.1 and after > before + 0.1, (before, after)


def test_excluding_self_makes_each_rows_share_exactly_its_gate():
    """With S over earlier tokens only, A_ii = 1 - alpha: a layer cannot learn S_ii -> 1 and become the
    identity behind a large gate. Row 0 has no earlier token and keeps itself."""
    torch.manual_seed(0)
    layer = ICALayer(mmca_partitions(8)[0], 8, heads=2, exclude_self=True, gate_range=(0.15, 0.5), gate_init=0.3)
    with torch.no_grad():
        layer.attention.gate_logit.copy_(torch.tensor([-3.0, 2.0]))  # alpha near each end of its range
    amap = layer.attention_map(torch.randn(2, 16, 8), 0, 0)
    alpha = layer.attention.gate().detach()
    rows = 1 - torch.diagonal(amap.attention, dim1=-2, dim2=-1) / amap.attention.sum(dim=-1)  # (batch, heads, n)
    assert torch.allclose(rows[..., 1:], alpha.view(1, -1, 1).expand_as(rows[..., 1:]), atol=1e-6)
    assert float(rows[..., 0].abs().max()) < 1e-7
    n = rows.shape[-1]
    assert torch.allclose(amap.off_diagonal_share(), alpha.mean() * (n - 1) / n, atol=1e-6)
    assert float(torch.diagonal(amap.scores, dim1=-2, dim2=-1)[..., 1:].max()) == 0.0
    with pytest.raises(ValueError, match="exclude_self"):
        ICALayer(mmca_partitions(8)[0], 8, form="identity_plus", exclude_self=True)


def test_a_unit_diagonal_mixes_as_much_and_takes_away_the_pull_towards_the_identity():
    """A' = diag(A)^-1 A: the same off-diagonal share as the gated A, log|det| free of S, so the
    likelihood no longer rewards S_ii -> 1 (with the gated A it does: d log A_ii / d S_ii > 0)."""
    torch.manual_seed(0)
    x = torch.randn(3, 16, 8)
    gated = ICALayer(mmca_partitions(8)[0], 8, heads=2, gate_range=(0.15, 0.5), gate_init=0.4)
    unit = ICALayer(mmca_partitions(8)[0], 8, heads=2, gate_range=(0.15, 0.5), gate_init=0.4, unit_diagonal=True)
    unit.load_state_dict(gated.state_dict())
    a, b = gated.attention_map(x, 0, 0), unit.attention_map(x, 0, 0)
    torch.testing.assert_close(b.off_diagonal_share(), a.off_diagonal_share())
    torch.testing.assert_close(torch.diagonal(b.attention, dim1=-2, dim2=-1), torch.ones(3, 2, 8))
    torch.testing.assert_close(b.attention / b.attention.sum(-1, keepdim=True), a.attention)  # same proportions

    for layer, pulled in ((gated, True), (unit, False)):
        layer.zero_grad()
        _, logdet = layer(x)
        if pulled:
            logdet.sum().backward()
            assert layer.attention.to_q.weight.grad.abs().max() > 1e-4
        else:
            assert not logdet.requires_grad or float(logdet.abs().max()) == 0.0
    with pytest.raises(ValueError, match="unit_diagonal"):
        ICALayer(mmca_partitions(8)[0], 8, form="identity_plus", unit_diagonal=True)


def test_literal_ica_is_badly_conditioned_and_tracked():
    """The literal layer has A_ii ~ 1/i; the gated one keeps A_ii >= 1 - alpha: the tracked minimum shows it."""
    torch.manual_seed(0)
    x = torch.randn(2, 128, 32)
    literal = MangoFlow(32, 64, num_blocks=1, ica_form="literal")
    gated = MangoFlow(32, 64, num_blocks=1)
    literal(x), gated(x)
    assert literal.min_attention_diagonal < 0.1 < 0.85 < gated.min_attention_diagonal
    assert gated.bits_per_dim(x).mean() < literal.bits_per_dim(x).mean()


def test_mixing_report_gives_each_layers_share_and_gate():
    flow = MangoFlow(8, 4, num_blocks=1, partitions=("mmca",))
    report = flow.mixing_report(torch.randn(3, 8, 8))
    assert [r["name"] for r in report] == ["MMCA A→B", "MMCA B→A"]
    for row in report:
        assert 0 < row["off_diagonal_share"] < 0.1 and row["gate"] == pytest.approx(0.1) and row["min_diagonal"] > 0.9
    assert math.isnan(MangoFlow(8, 4, num_blocks=1, ica_form="diag_bias").mixing_report(torch.randn(1, 8, 8))[0]["gate"])


def test_ica_forms_are_named_and_checked():
    assert set(ICA_FORMS) == {"gated", "identity_plus", "diag_bias", "literal"}
    with pytest.raises(ValueError, match="form"):
        MangoFlow(8, 4, num_blocks=1, ica_form="nope")
    with pytest.raises(ValueError, match="gate_range"):
        MangoFlow(8, 4, num_blocks=1, gate_range=(0.0, 0.6))
    with pytest.raises(ValueError, match="gate_init"):
        MangoFlow(8, 4, num_blocks=1, gate_init=0.7)


def test_log_prob_is_change_of_variables_and_bits_per_dim():
    flow = make("mango_flow")
    x = tiny_input(flow)
    z, logdet = flow(x)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=(1, 2)) + logdet
    torch.testing.assert_close(flow.log_prob(x), expected)
    torch.testing.assert_close(flow.bits_per_dim(x), -expected / (2 * T * D * math.log(2)))


def test_sample_is_finite_with_the_right_shape():
    flow = MangoFlow(16, 8, num_blocks=2)
    gen = torch.Generator().manual_seed(3)
    samples = flow.sample(5, temperature=0.7, generator=gen)
    assert samples.shape == (5, 16, 16) and torch.isfinite(samples).all()
    again = flow.sample(5, temperature=0.7, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(samples, again)


def test_partition_subsets_for_ablations():
    counts = {("mmca",): 2, ("mmca", "imca"): 6, ("mmca", "imca", "lica"): 8}
    for kinds, per_block in counts.items():
        flow = MangoFlow(8, 4, num_blocks=2, partitions=kinds)
        assert len(flow.ica_layers()) == 2 * per_block
    coupling = CouplingFlow(8, 4, num_blocks=2)
    x = torch.randn(1, 8, 8)
    assert coupling.attention_maps(x) == []
    torch.testing.assert_close(coupling.rollout(x), torch.eye(8).expand(1, 8, 8))


def test_bad_configuration_and_input_fail_clearly():
    with pytest.raises(ValueError, match="even"):
        MangoFlow(8, 3, num_blocks=1)
    with pytest.raises(ValueError, match="partitions"):
        MangoFlow(8, 4, num_blocks=1, partitions=("mmca", "nope"))
    with pytest.raises(ValueError, match="divisible"):
        MangoFlow(10, 4, num_blocks=1, heads=3)
    flow = MangoFlow(8, 4, num_blocks=1)
    with pytest.raises(ValueError, match=r"\(batch, 8, 8\)"):
        flow(torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match="latent"):
        flow.inverse(torch.randn(2, 8))


def test_flow_sequence_composes():
    seq = FlowSequence([make("mmca_a_to_b"), make("affine_coupling"), make("lica_2")])
    x = tiny_input(seq)
    y, logdet = seq(x)
    x_back, inv_logdet = seq.inverse(y)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(inv_logdet, -logdet)


def test_whitening_starts_the_flow_at_the_full_covariance_gaussian():
    """Initialised from features, the whitening makes them zero-mean, unit-covariance per token, and
    a flow whose other layers are the identity then has the Gaussian's exact log-likelihood."""
    torch.manual_seed(0)
    n, d = 8, 6
    mix = torch.randn(d, d)
    means = 3 * torch.randn(n, d)
    features = torch.randn(4000, n, d) @ mix.T + means
    layer = GaussianWhitening(n, d)
    layer.initialize(features)
    z, logdet = layer(features)
    torch.testing.assert_close(z.mean(dim=0), torch.zeros(n, d), atol=1e-4, rtol=0)
    cov = torch.cov(z.reshape(-1, d).T)
    torch.testing.assert_close(cov, torch.eye(d), atol=1e-2, rtol=0)  # eps on the diagonal, float32
    shared = torch.cov((features - features.mean(0)).reshape(-1, d).T)
    gaussian = torch.distributions.MultivariateNormal(features.mean(0), covariance_matrix=shared)
    expected = gaussian.log_prob(features[:5]).sum(-1)
    got = MangoFlow.prior_log_prob(z[:5]) + logdet[:5]
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=0.05)
    flow = MangoFlow(d, n // 2, num_blocks=1, key_dim=3, whitening=True)
    assert flow.initialize_whitening(features) and not flow.initialize_whitening(features)  # once
    assert flow.roundtrip_error(features[:3]) < 1e-3


def test_whitening_without_channel_covariance_starts_at_the_diagonal_gaussian(tmp_path):
    """``channel_covariance=False``: each position and channel is only centred and scaled, so the
    start is the per-dimension Gaussian's exact likelihood and correlated channels stay correlated
    (what a head reads keeps the features' own geometry). A config carries it through a checkpoint."""
    from mango.density import DiagonalGaussian
    from mango.models import MangoConfig, MangoModel

    torch.manual_seed(0)
    n, d = 6, 4
    mix = torch.eye(d) + 0.9 * torch.ones(d, d)  # strongly correlated channels
    features = (torch.randn(3000, n, d) @ mix.T) * torch.linspace(0.2, 3.0, n).view(1, n, 1) + torch.randn(n, d)
    layer = GaussianWhitening(n, d, position_scale=True, channel_covariance=False)
    layer.initialize(features)
    assert torch.count_nonzero(layer.lower) == 0 and torch.count_nonzero(layer.log_diag) == 0
    with torch.no_grad():
        z, logdet = layer(features[:7])
    expected = DiagonalGaussian.fit(features, jitter=1e-4).log_prob(features[:7])
    torch.testing.assert_close((MangoFlow.prior_log_prob(z) + logdet).double(), expected, rtol=1e-4, atol=1e-2)
    with torch.no_grad():
        z_all = layer(features)[0]
    torch.testing.assert_close(z_all.pow(2).mean(0), torch.ones(n, d), atol=2e-2, rtol=0)  # eps floor
    assert torch.corrcoef(z_all.reshape(-1, d).T)[0, 1] > 0.5, "the channels keep their correlation"
    full = GaussianWhitening(n, d, position_scale=True)
    full.initialize(features)
    with torch.no_grad():
        assert abs(float(torch.corrcoef(full(features)[0].reshape(-1, d).T)[0, 1])) < 0.05

    config = MangoConfig.preset("tiny", "genre", whitening_channels=False)
    model = MangoModel(config)
    assert model.flow.whitening is not None and not model.flow.whitening.channel_covariance
    model.save_pretrained(tmp_path / "ckpt")
    loaded = MangoModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.whitening_channels is False and not loaded.flow.whitening.channel_covariance
    assert MangoModel(MangoConfig.preset("tiny", "genre")).flow.whitening.channel_covariance


def test_whitening_scale_gives_each_position_its_own_spread():
    """Positions with very different spreads (one barely varying, like a text pad position): the
    per-position scale makes every position unit-variance after whitening, and the whitened flow
    starts well above the shared-covariance Gaussian, at least as likely as a per-dimension one."""
    from mango.density import DiagonalGaussian

    torch.manual_seed(0)
    n, d = 6, 4
    spread = torch.tensor([1.0, 1.0, 3.0, 0.3, 1.0, 0.2]).view(1, n, 1)
    features = torch.randn(4000, n, d) * spread + torch.randn(n, d)
    train, test = features[:3000], features[3000:]
    plain, scaled = GaussianWhitening(n, d), GaussianWhitening(n, d, position_scale=True)
    plain.initialize(train)
    scaled.initialize(train)
    z, _ = scaled(train)
    torch.testing.assert_close(z.pow(2).mean(0), torch.ones(n, d), atol=2e-2, rtol=0)

    @torch.no_grad()
    def bits(layer):
        z, logdet = layer(test)
        return float(-(MangoFlow.prior_log_prob(z) + logdet).mean() / (n * d * math.log(2)))

    diagonal = float(DiagonalGaussian.fit(train).bits_per_dim(test).mean())
    assert bits(scaled) < bits(plain) - 0.5
    assert bits(scaled) <= diagonal + 0.02
    x_back, _ = scaled.inverse(scaled(test[:3])[0])
    torch.testing.assert_close(x_back, test[:3], atol=1e-4, rtol=1e-4)


def test_imca_gives_the_four_distinct_variants():
    names = [p.name for p in imca_partitions(4)]
    assert names == ["IMCA [A¹,B¹|A²,B²]", "IMCA [A¹,B²|A²,B¹]", "IMCA [A²,B¹|A¹,B²]", "IMCA [A²,B²|A¹,B¹]"]
    splits = {tuple(p.x1_tokens.tolist()) for p in imca_partitions(4)}
    assert len(splits) == 4


def test_actnorm_initialises_to_zero_mean_unit_variance():
    x = 3.0 + 2.0 * torch.randn(64, 8, 4, generator=torch.Generator().manual_seed(0))
    y, _ = ActNorm(4).train()(x)
    torch.testing.assert_close(y.mean(dim=(0, 1)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 1), unbiased=False), torch.ones(4), atol=1e-4, rtol=0)


def test_attention_maps_see_the_whitened_features():
    torch.manual_seed(0)
    flow = MangoFlow(8, 4, num_blocks=1, whitening=True)
    train = 5.0 + 3.0 * torch.randn(64, 8, 8)
    flow.initialize_whitening(train)
    x = train[:2]
    z, _ = flow.whitening(x)
    first = flow.blocks[0].layers[0]
    expected = first.attention_map(z, 0, 0).attention
    torch.testing.assert_close(flow.attention_maps(x)[0].attention, expected)


def test_flow_sample_follows_the_temperature():
    torch.manual_seed(0)
    flow = MangoFlow(4, 2, num_blocks=1).eval()
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    cold, warm = flow.sample(2, temperature=0.5, generator=gen()), flow.sample(2, temperature=1.0, generator=gen())
    torch.testing.assert_close(flow(cold)[0], 0.5 * flow(warm)[0], atol=1e-5, rtol=1e-5)


def test_token_coupling_reads_the_other_tokens_of_x1():
    torch.manual_seed(0)
    layer = TokenAffineCoupling(mmca_partitions(2)[0], 4, hidden=8)
    for p in layer.parameters():
        p.data.add_(0.5 * torch.randn_like(p))
    x = torch.randn(1, 4, 4)
    moved = x.clone()
    moved[0, 1] += 1.0  # X1 token 1 (modality A)
    assert not torch.allclose(layer(x)[0][0, 2], layer(moved)[0][0, 2])  # X2 token 0 changes through the mean
