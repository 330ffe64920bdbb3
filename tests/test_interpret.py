"""mango.interpret: contributions that add up, attention rows tied to the right tokens, exact rollout."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from mango import interpret
from mango.flow import mmca_partitions
from mango.flow.ica import ICALayer
from mango.models import MangoConfig, MangoModel

# Small models (32 px, 8 px patches: T = 16 tokens, D = 32) keep captum's passes fast.
SMALL = dict(
    image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1, encoder_heads=2, decoder_width=32,
    decoder_heads=2, text_width=32, text_layers=1, text_heads=2, text_context_length=16, head_width=32,
)
PLOT = "A lighthouse keeper finds a logbook of ships that never existed."


def small_model(task: str, seed: int = 0, **overrides) -> MangoModel:
    torch.manual_seed(seed)
    model = MangoModel(MangoConfig.preset("tiny", task, **SMALL, **overrides)).eval()
    # Move every ICA layer away from the identity so attention, mixing and rollout are not trivial.
    with torch.no_grad():
        for _, _, layer in model.flow.ica_layers():
            layer.attention.gate_logit.fill_(2.0)  # alpha = 0.44: strong mixing
    return model


def inputs(model: MangoModel, batch: int = 1, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for key in ("a", "b"):
        m = model.config.modality(key)
        size = model.config.image_size
        out.append([PLOT] * batch if m.is_text else torch.rand(batch, m.channels, size, size, generator=gen))
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """captum's batched passes: set before the module's models are built."""


@pytest.fixture(scope="module")
def seg_model():
    return small_model("segmentation")


@pytest.fixture(scope="module")
def genre_model():
    return small_model("genre")


def test_encoders_are_per_modality_so_the_feature_game_is_the_input_game(seg_model, genre_model):
    for model in (seg_model, genre_model):
        a, b = inputs(model)
        base_a, base_b = interpret.modality_baselines(model, a, b)
        t = model.config.tokens_per_modality
        with torch.no_grad():
            both, a_only = model.encode(a, b), model.encode(a, base_b)
        torch.testing.assert_close(both[:, :t], a_only[:, :t])


@pytest.mark.parametrize("task, pooling, token_mlp", [("segmentation", "mean", False), ("translation", "mean", False),
                                                      ("genre", "mean", False), ("genre", "words", False),
                                                      ("genre", "words", True)])
def test_shapley_values_are_exact_and_add_up(task, pooling, token_mlp):
    model = small_model(task, head_pooling=pooling, head_token_mlp=token_mlp)
    a, b = inputs(model, batch=2)
    if pooling == "words":  # plots of different lengths: each example's own word positions are pooled
        b = [PLOT, "A short one."]
    target = {
        "segmentation": interpret.class_region_target(2),
        "translation": interpret.image_mean_target(),
        "genre": interpret.logit_target(1),
    }[task]
    result = interpret.modality_contributions(model, a, b, target)
    co = result.coalitions
    torch.testing.assert_close(result.shapley, interpret.exact_shapley(co), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.shapley.sum(1), co["both"] - co["none"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.ablation, torch.stack([co["both"] - co["b"], co["both"] - co["a"]], 1), rtol=1e-4, atol=1e-5)
    # two players: Shapley and ablation differ by the same amount, f(A only) - f(B only)
    torch.testing.assert_close(result.shapley[:, 0] - result.shapley[:, 1], co["a"] - co["b"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.ablation[:, 0] - result.ablation[:, 1], co["a"] - co["b"], rtol=1e-4, atol=1e-5)
    shares = result.shares()
    same_sign = (result.shapley >= 0).all(1) | (result.shapley <= 0).all(1)
    torch.testing.assert_close(shares[same_sign].sum(1), torch.ones(int(same_sign.sum())))
    assert shares[~same_sign].isnan().all()
    # v(both) is the model's own output on the inputs, v(none) on the baselines (with the inputs' pad mask)
    with torch.no_grad():
        torch.testing.assert_close(co["both"], target(model(a, b).output), rtol=1e-4, atol=1e-5)
    batched = interpret.coalition_values(model, a, b, [target])[0]
    for key in ("none", "a", "b", "both"):
        torch.testing.assert_close(batched[key], co[key], rtol=1e-4, atol=1e-5)


def test_integrated_gradients_over_features_is_complete_when_the_head_pools_words():
    model = small_model("genre", head_pooling="words")
    a, _ = inputs(model, batch=2)
    b = [PLOT, "A short one."]
    target = interpret.logit_target(3)
    ig = interpret.integrated_gradients(model, a, b, target, n_steps=32, internal_batch_size=16, at="features")
    torch.testing.assert_close(ig.totals.sum(1) - ig.change, ig.delta, rtol=1e-3, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(ig.f_input, target(model(a, b).output))


def test_coalition_values_in_one_pass_match_captum(seg_model):
    a, b = inputs(seg_model, batch=2)
    targets = [interpret.class_region_target(2), interpret.class_region_target(2, score="log_prob")]
    batched = interpret.coalition_values(seg_model, a, b, targets)
    for target, values in zip(targets, batched):
        result = interpret.modality_contributions(seg_model, a, b, target)
        for key in ("none", "a", "b", "both"):
            torch.testing.assert_close(values[key], result.coalitions[key], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(interpret.exact_shapley(values), result.shapley, rtol=1e-4, atol=1e-5)


def test_shares_only_where_the_signs_agree():
    values = torch.tensor([[-0.205, 0.060], [0.3, 0.1], [-0.3, -0.1], [0.0, 0.0], [0.0, 0.2]])
    shares = interpret.signed_shares(values)
    assert shares[0].isnan().all() and shares[3].isnan().all()  # opposite signs / nothing to share
    torch.testing.assert_close(shares[1:3], torch.tensor([[0.75, 0.25], [0.75, 0.25]]))
    torch.testing.assert_close(shares[4], torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("at", interpret.IG_LEVELS)
def test_integrated_gradients_on_images_is_complete(seg_model, at):
    a, b = inputs(seg_model)
    target = interpret.class_region_target(0)
    ig = interpret.integrated_gradients(seg_model, a, b, target, n_steps=32, internal_batch_size=16, at=at)
    shape = (1, 4, 4) if at == "features" else (1, 32, 32)  # the 4x4 patch grid, or pixels
    assert ig.maps["a"].shape == shape and ig.maps["b"].shape == shape and ig.level == at
    torch.testing.assert_close(ig.totals.sum(1) - ig.change, ig.delta, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(ig.maps["a"].sum(), ig.totals[0, 0], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(ig.f_input, target(seg_model(a, b).output))
        base = interpret.modality_baselines(seg_model, a, b)
        torch.testing.assert_close(ig.f_baseline, target(seg_model(*base).output))


def test_integrated_gradients_convergence_rule_on_a_small_model(seg_model):
    """At the encoder features, Gauss-Legendre converges within the 5 % rule in a few dozen steps; a
    crude quadrature with 2 steps does not, and the result says so."""
    a, b = inputs(seg_model, batch=2)
    target = interpret.class_region_target(1)
    good = interpret.integrated_gradients(seg_model, a, b, target, n_steps=32, internal_batch_size=8)
    assert good.converged().all(), good.relative_delta()
    crude = interpret.integrated_gradients(seg_model, a, b, target, n_steps=2, method="riemann_left")
    rule = (crude.delta.abs() <= interpret.IG_TOLERANCE * crude.change.abs()) | (crude.delta.abs() <= interpret.IG_ABSOLUTE_FLOOR)
    torch.testing.assert_close(crude.converged(), rule)
    assert not crude.converged().all(), crude.relative_delta()
    # more steps move the totals towards the converged ones, and the two quadratures agree at the end
    finer = interpret.integrated_gradients(seg_model, a, b, target, n_steps=64, internal_batch_size=8)
    torch.testing.assert_close(finer.totals, good.totals, rtol=0.05, atol=0.05 * float(good.change.abs().max()))


def test_integrated_gradients_rule_itself():
    delta, change = torch.tensor([0.04, 0.06, 5e-5, 0.2]), torch.tensor([1.0, 1.0, 0.0, -0.1])
    assert interpret.ig_converged(delta, change).tolist() == [True, False, True, False]


@pytest.mark.parametrize("at", interpret.IG_LEVELS)
def test_integrated_gradients_over_words_uses_the_real_forward(genre_model, at):
    a, b = inputs(genre_model)
    target = interpret.logit_target(3)
    ig = interpret.integrated_gradients(genre_model, a, b, target, n_steps=24, internal_batch_size=12, at=at)
    with torch.no_grad():
        # the embedding override (inputs) / the feature game (features) reproduce the plain forward
        torch.testing.assert_close(ig.f_input, target(genre_model(a, b).output), rtol=1e-4, atol=1e-5)
    width = genre_model.config.tokens_per_modality if at == "features" else genre_model.config.text_context_length
    assert ig.maps["b"].shape == (1, width)
    assert ig.tokens[0] == "⟨start⟩" and ig.tokens[-1] == "⟨end⟩" and "lighthouse" in ig.tokens
    torch.testing.assert_close(ig.totals.sum(1) - ig.change, ig.delta, rtol=1e-3, atol=1e-4)
    # positions past the end token are padding in the input and the baseline: no attribution
    end = len(ig.tokens) - 1
    assert torch.all(ig.maps["b"][0, end + 1 :] == 0)
    # the hook is gone afterwards
    assert not genre_model.text_embedding._forward_hooks


@pytest.mark.parametrize("at", interpret.IG_LEVELS)
def test_integrated_gradients_takes_the_plot_as_ids_as_the_model_does(genre_model, at):
    a, b = inputs(genre_model)
    ids, _ = genre_model.text_tokens(b)
    target = interpret.logit_target(3)
    by_text = interpret.integrated_gradients(genre_model, a, b, target, n_steps=8, at=at)
    by_ids = interpret.integrated_gradients(genre_model, a, ids, target, n_steps=8, at=at)
    assert by_ids.tokens == by_text.tokens
    torch.testing.assert_close(by_ids.totals, by_text.totals)


def test_embedding_override_only_touches_its_own_thread(genre_model):
    embedding = genre_model.text_embedding
    ids, _ = genre_model.text_tokens([PLOT])
    normal = embedding(ids)
    seen = {}
    with interpret._EmbeddingOverride(embedding) as override:

        def other():
            seen["other"] = embedding(ids)

        def mine():
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            return embedding(ids)

        swapped = override.run(torch.zeros_like(normal), mine)
    assert torch.all(swapped == 0)
    torch.testing.assert_close(seen["other"], normal)


def test_likelihood_change_matches_the_model(seg_model):
    a, b = inputs(seg_model, batch=2)
    lc = interpret.likelihood_change(seg_model, a, b)
    with torch.no_grad():
        out = seg_model(a, b)
        base_a, _ = interpret.modality_baselines(seg_model, a, b)
        without_a = seg_model(base_a, b)
    torch.testing.assert_close(lc.log_prob["both"], out.log_prob)
    torch.testing.assert_close(lc.delta_log_prob("a"), without_a.log_prob - out.log_prob)
    torch.testing.assert_close(lc.bits_per_dim["both"], out.bits_per_dim)
    # bits/dim is -log p / (N D ln 2): a pair that became more likely costs fewer bits
    n, d = 2 * seg_model.config.tokens_per_modality, seg_model.config.dim
    torch.testing.assert_close(lc.delta_bits_per_dim("a"), -lc.delta_log_prob("a") / (n * d * math.log(2)))


def test_attention_rows_are_tied_to_the_right_tokens(seg_model):
    a, b = inputs(seg_model)
    t = seg_model.config.tokens_per_modality
    maps = seg_model.attention_maps(a, b)
    mmca_ab = next(m for m in maps if m.name == "MMCA A→B")
    # MMCA A->B: A token i is the query of row i, and B token i receives the mix.
    row = interpret.attention_row(mmca_ab, 5)
    assert (row.role, row.row, row.query_token, row.output_token) == ("query", 5, 5, t + 5)
    assert torch.all(row.keys[t:] == 0) and torch.all(row.values[:t] == 0)  # keys on A, values on B
    assert torch.all(row.keys[6:t] == 0)  # causal: nothing after the row
    torch.testing.assert_close(row.keys.sum(), torch.tensor(1.0))
    # blue: row 5 of S, the comparison (heads averaged); orange: row 5 of A, the mixing
    torch.testing.assert_close(row.keys[:t], mmca_ab.scores[0][:, 5].mean(dim=0))
    if mmca_ab.gate is not None:  # gated: A = (1 - alpha) I + alpha S, per head
        alpha = mmca_ab.gate.view(-1, 1)
        expected = (alpha * mmca_ab.scores[0][:, 5] + (1 - alpha) * torch.eye(t)[5]).mean(dim=0)
        torch.testing.assert_close(row.values[t:], expected)
        assert float(row.values[t + 5]) >= float(row.keys[5])  # A_ii = 1 - alpha (1 - S_ii): the kept share
    # the same row is reached from its mixed token
    same = interpret.attention_row(mmca_ab, t + 5)
    assert same.role == "mixed" and same.row == 5
    torch.testing.assert_close(same.values, row.values)
    # IMCA [A¹,B¹|A²,B²]: X1 holds the first halves of both modalities
    imca = next(m for m in maps if m.kind == "imca")
    first_b = interpret.attention_row(imca, t)  # b_0 sits in X1 at position t/2
    assert first_b.role == "query" and first_b.row == t // 2
    nonzero = set(torch.nonzero(first_b.keys).flatten().tolist())
    assert nonzero <= set(range(t // 2)) | {t}
    with pytest.raises(ValueError):
        interpret.attention_row(imca, 2 * t)


def test_attention_rows_are_shares_of_the_row_for_every_form():
    """The app draws a row on a 0-1 scale as "a weight's share of its row": rows of A = I + S sum to 2
    and rows of a unit-diagonal A' to 1 / A_ii, so the row is drawn as shares; a unit-diagonal layer
    then shows exactly the gated layer it was derived from."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 8)
    gated = ICALayer(mmca_partitions(8)[0], 8, heads=2, gate_range=(0.15, 0.5), gate_init=0.4)
    unit = ICALayer(mmca_partitions(8)[0], 8, heads=2, gate_range=(0.15, 0.5), gate_init=0.4, unit_diagonal=True)
    unit.load_state_dict(gated.state_dict())
    plus = ICALayer(mmca_partitions(8)[0], 8, heads=2, form="identity_plus")
    for layer in (gated, unit, plus):
        row = interpret.attention_row(layer.attention_map(x, 0, 0), 5)  # a query token: its row's keys
        torch.testing.assert_close(row.keys.sum(), torch.tensor(1.0))
        assert float(row.keys.max()) <= 1.0
        mixed = interpret.attention_row(layer.attention_map(x, 0, 0), 12)  # a mixed token: its row's values
        torch.testing.assert_close(mixed.values.sum(), torch.tensor(1.0))
    for token, part in ((5, "keys"), (12, "values")):
        a = interpret.attention_row(gated.attention_map(x, 0, 0), token)
        b = interpret.attention_row(unit.attention_map(x, 0, 0), token)
        torch.testing.assert_close(getattr(a, part), getattr(b, part))


def test_rollout_from_maps_equals_the_flow_rollout(seg_model):
    a, b = inputs(seg_model)
    features = seg_model.encode(a, b)
    maps = seg_model.flow.attention_maps(features)
    torch.testing.assert_close(interpret.rollout_from_maps(maps), interpret.rollout(seg_model, features), rtol=1e-5, atol=1e-6)
    mixing = interpret.layer_mixing(maps[0])
    assert mixing.shape == (2 * seg_model.config.tokens_per_modality,) * 2
    torch.testing.assert_close(mixing.sum(1), torch.ones(mixing.shape[0]))  # rows of a mixing are convex


def test_targets_and_labels():
    logits = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    region = torch.tensor([[True, False], [False, True]])
    torch.testing.assert_close(interpret.class_region_target(1, region)(logits), logits[:, 1][:, region].mean(1))
    torch.testing.assert_close(interpret.class_region_target(1, torch.zeros(2, 2, dtype=torch.bool))(logits),
                               logits[:, 1].mean((1, 2)))
    # one region per example; an example whose region is empty falls back to all its pixels
    regions = torch.stack([region, torch.zeros(2, 2, dtype=torch.bool)])
    torch.testing.assert_close(interpret.class_region_target(1, regions)(logits),
                               torch.stack([logits[0, 1][region].mean(), logits[1, 1].mean()]))
    # captum stacks the batch once per path point: the regions follow their examples
    torch.testing.assert_close(interpret.class_region_target(1, regions)(logits.repeat(3, 1, 1, 1)),
                               interpret.class_region_target(1, regions)(logits).repeat(3))
    torch.testing.assert_close(interpret.image_mean_target(2)(logits), logits[:, 2].mean((1, 2)))
    assert interpret.token_label(9, 16, ("rgb", "depth"), (4, 4)) == "rgb (row 2, col 1)"
    assert interpret.token_label(17, 16, ("poster", "plot"), (4, 4), ["<s>", "a", "cat"], "b") == "plot token 1 'a'"
    assert torch.allclose(interpret.tokens_to_grid(torch.arange(6.0), (2, 3))[1], torch.tensor([3.0, 4.0, 5.0]))


def test_a_large_delta_on_no_change_is_not_converged():
    assert interpret.ig_converged(torch.tensor([0.5]), torch.tensor([0.0])).tolist() == [False]



def test_token_label_on_a_non_square_grid():
    assert interpret.token_label(9, 16, ("rgb", "depth"), (2, 8)) == "rgb (row 1, col 1)"


def test_baselines_are_the_mean_image_and_the_empty_plot(seg_model, genre_model):
    for model in (seg_model, genre_model):
        a, b = inputs(model, batch=2)
        for key, given, base in zip("ab", (a, b), interpret.modality_baselines(model, a, b)):
            modality = model.config.modality(key)
            if modality.is_text:
                assert base == ["", ""]
            else:
                mean = torch.tensor(modality.mean).view(1, -1, 1, 1)
                torch.testing.assert_close(base, mean.expand_as(given))


def test_blurred_baselines_keep_the_layout_and_lose_what_lies_within_a_patch(seg_model, genre_model):
    side = seg_model.config.patch_size  # the default blur: one patch, the side image_size / grid
    assert side == seg_model.config.image_size / seg_model.config.grid[1]
    a, b = inputs(seg_model, batch=2)
    half = torch.zeros_like(a)
    half[..., : a.shape[-1] // 2] = 1.0  # a left half lit: the layout a blur must keep
    checker = (torch.arange(a.shape[-1]) // 2 % 2).float().expand_as(a).clone()  # stripes 2 px wide: detail
    blurred_half, blurred_checker = interpret.blurred_baselines(seg_model, half, checker)
    assert blurred_half.shape == a.shape and blurred_checker.shape == a.shape
    torch.testing.assert_close(interpret.blurred_baselines(seg_model, half, checker, sigma=side)[1], blurred_checker)
    assert blurred_half[..., :2].min() > 0.99 and blurred_half[..., -2:].max() < 0.01  # far from the edge: unchanged
    assert (blurred_half[..., a.shape[-1] // 2 - 1] - 0.5).abs().max() < 0.1  # at the edge: between
    assert checker.std() > 0.45 and blurred_checker.std() < 0.05  # the stripes are gone (but near the borders)
    constant = torch.full_like(a, 0.3)
    torch.testing.assert_close(interpret.blurred_baselines(seg_model, constant, constant)[0], constant)
    assert interpret.blurred_baselines(seg_model, a, b, sigma=0.01)[0].sub(a).abs().max() < 1e-4  # no blur: the input
    ga, gb = inputs(genre_model, batch=2)
    text_key = "ab"[[genre_model.config.modality(k).is_text for k in "ab"].index(True)]
    base = dict(zip("ab", interpret.blurred_baselines(genre_model, ga, gb)))
    assert base[text_key] == ["", ""]  # a plot has no blur: still the empty plot


def test_coalition_values_take_another_baseline(seg_model):
    a, b = inputs(seg_model)
    target = interpret.class_region_target(1, torch.ones(1, *a.shape[-2:], dtype=torch.bool))
    blurred = interpret.blurred_baselines(seg_model, a, b)
    values = interpret.coalition_values(seg_model, a, b, [target], baselines=blurred)[0]
    default = interpret.coalition_values(seg_model, a, b, [target])[0]
    with torch.no_grad():
        assert values["none"] == pytest.approx(float(target(seg_model(*blurred).output)), abs=1e-5)
        assert values["a"] == pytest.approx(float(target(seg_model(a, blurred[1]).output)), abs=1e-5)
    torch.testing.assert_close(values["both"], default["both"])  # the input itself does not move
    assert (values["none"] - default["none"]).abs() > 1e-3  # and "removed" now means something else
