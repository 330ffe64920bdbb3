"""Reading a MANGO model: per-modality contributions and attention in token positions (SPEC 7).

Pure torch and captum; no UI code. Every function takes a model with the `MangoModel` interface
(`encode`, `forward_features`, `__call__`, `attention_maps`, `flow`, `config`) and one or more
examples, and returns plain dataclasses of tensors and floats that a UI or a test can read.

What is computed, and what it means:

- **Targets.** Attributions explain one scalar per example: a class's mean logit (or log-probability,
  `SCORES`) over a region (segmentation), a genre's logit, or the mean of the translated image (or
  one of its channels).
- **Baselines** ("the modality removed"). An image modality becomes a constant image at the
  modality's normalisation mean (zero after the model's own normalisation, so no signal enters);
  a text modality becomes the empty plot. Every number below is relative to these baselines.
  `blurred_baselines` is a second choice (each image blurred by about one patch) for checking how
  much a split between the modalities hangs on the first; `coalition_values` takes either.
- **Exact two-player Shapley values** (captum `ShapleyValues`, a feature mask grouping each
  modality's tokens into one player). Encoders are per modality (SPEC 5), so removing a modality
  replaces exactly its T feature tokens: the game is played on the encoder features, and captum
  enumerates both orderings of the two players. phi_A + phi_B = f(A, B) - f(baselines) exactly.
  A share of that sum is given only where phi_A and phi_B have the same sign (`signed_shares`).
- **Feature ablation** (captum `FeatureAblation`): f(A, B) minus f with one modality removed.
- **Integrated Gradients** (captum, Gauss-Legendre quadrature), by default on the encoder features
  (the same game as the Shapley values: the path runs from the baselines' features to the inputs'),
  giving one attribution per token: a patch of an image, a word piece of a text. The convergence
  delta (completeness error) is reported, and `IntegratedGradientsResult.converged` says whether it
  is within `IG_TOLERANCE` of the change it explains. ``at="inputs"`` attributes pixels and word
  embeddings instead; on a ViT encoder with the mean-image baseline that path does not converge
  (a constant image's tokens are only the patch embedding's bias plus the position embedding, with a
  spread of 0.03 against 1 for a real image; LayerNorm divides by it, and the features turn over
  within the first 1-3 % of the path; measured in issue 11), so it is there to compare, not the
  default.
- **Likelihood change** (flow-native, no captum): the exact log-likelihood of the fused features
  with one modality replaced by its baseline, against the original.
- **Attention in token positions.** `attention_row` ties one row of an ICA layer's matrix A to
  original tokens: the query token that computed it, the keys it compared against, the value
  tokens it mixed, and the token that received the mixture. `rollout` multiplies every layer's
  value-path mixing through the whole flow.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "IG_TOLERANCE", "SCORES", "AttentionRow", "IntegratedGradientsResult", "LikelihoodChange",
    "ModalityContributions", "TargetFn", "attention_row", "blurred_baselines", "blurred_shapley",
    "class_region_target", "coalition_values", "exact_shapley", "ig_converged", "image_baseline", "image_mean_target",
    "integrated_gradients",
    "layer_mixing", "likelihood_change", "logit_target", "modality_baselines", "modality_contributions",
    "objects_target", "region_token_weights", "rollout", "rollout_from_maps", "rollout_sources",
    "signed_shares", "token_label", "tokens_to_grid",
]

TargetFn = Callable[[Tensor], Tensor]
"""Maps a model's `.output` batch to one scalar per example, shape (B,)."""


# ---------------------------------------------------------------------------------------- targets
def logit_target(index: int) -> TargetFn:
    """The logit of one class / genre: output (B, K) -> (B,)."""

    def target(output: Tensor) -> Tensor:
        return output[:, index]

    return target


SCORES = ("logit", "log_prob")
"""What a segmentation target averages: the class's logit, or its log-probability (log-softmax over
classes). Softmax ignores a shift shared by all logits, so a modality that raises every class's
logit alike ("there is a surface here") raises the logit without favouring the class; the
log-probability measures evidence for the class against the others."""


def _class_scores(output: Tensor, score: str) -> Tensor:
    if score == "logit":
        return output
    if score == "log_prob":
        return torch.log_softmax(output, dim=1)
    raise ValueError(f"score must be one of {SCORES}, got {score!r}")


def class_region_target(class_index: int, region: Tensor | None = None, score: str = "logit") -> TargetFn:
    """Mean logit (or log-probability, see `SCORES`) of one class over a fixed region:
    output (B, C, H, W) -> (B,).

    ``region`` is a (H, W) or (B, H, W) boolean mask (typically where the class was predicted on
    the original input, held fixed while inputs change); None or an empty region means all pixels.
    """
    _class_scores(torch.zeros(1, 1), score)  # check the name now, not at the first call

    def target(output: Tensor) -> Tensor:
        logits = _class_scores(output, score)[:, class_index]
        if region is None or not bool(region.any()):
            return logits.mean(dim=(-2, -1))
        mask = region.to(logits.device, logits.dtype)
        if mask.ndim == 3:  # captum may stack several copies of the batch (path points)
            mask = mask.repeat(logits.shape[0] // mask.shape[0], 1, 1)
        mask = mask.expand_as(logits)
        count = mask.sum(dim=(-2, -1))
        inside = (logits * mask).sum(dim=(-2, -1)) / count.clamp_min(1.0)
        return torch.where(count > 0, inside, logits.mean(dim=(-2, -1)))  # an empty region: all pixels

    return target


def objects_target(class_indices: Sequence[int] | Tensor, regions: Tensor, score: str = "logit") -> TargetFn:
    """Example k's target is the mean logit (or log-probability) of class ``class_indices[k]`` over
    ``regions[k]``: output (B, C, H, W) -> (B,). For checking many objects of one scene in one batch
    (the inputs repeated once per object); every region must be non-empty."""
    _class_scores(torch.zeros(1, 1), score)
    classes = torch.as_tensor(class_indices, dtype=torch.long)
    if regions.ndim != 3 or regions.shape[0] != classes.numel():
        raise ValueError(f"need one (H, W) region per class index, got {tuple(regions.shape)} for {classes.numel()}")
    if not bool(regions.flatten(1).any(1).all()):
        raise ValueError("every region must hold at least one pixel")

    def target(output: Tensor) -> Tensor:
        scores = _class_scores(output, score)
        # captum may stack several copies of the batch (path points): repeat classes and regions alike
        copies = scores.shape[0] // classes.numel()
        index = classes.to(scores.device).repeat(copies).view(-1, 1, 1, 1).expand(-1, 1, *scores.shape[-2:])
        mask = regions.to(scores.device, scores.dtype).repeat(copies, 1, 1)
        return (scores.gather(1, index)[:, 0] * mask).sum(dim=(-2, -1)) / mask.sum(dim=(-2, -1))

    return target


def image_mean_target(channel: int | None = None) -> TargetFn:
    """Mean of an output image, over all channels or one: output (B, C, H, W) -> (B,)."""

    def target(output: Tensor) -> Tensor:
        picked = output if channel is None else output[:, channel : channel + 1]
        return picked.mean(dim=(1, 2, 3))

    return target


# -------------------------------------------------------------------------------------- baselines
def image_baseline(x: Tensor, mean: Sequence[float]) -> Tensor:
    """A constant image at the modality's normalisation mean, shaped like ``x`` (B, C, H, W)."""
    value = torch.tensor(list(mean), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    if value.shape[1] != x.shape[1]:
        raise ValueError(f"baseline mean has {value.shape[1]} channels, the image {x.shape[1]}")
    return value.expand_as(x).clone()


def modality_baselines(model: nn.Module, a: Any, b: Any) -> tuple[Any, Any]:
    """Each modality "removed": images at their normalisation mean, text as the empty plot."""
    return _removed(model, a, b, lambda image, modality: image_baseline(image, modality.mean))


def blurred_baselines(model: nn.Module, a: Any, b: Any, sigma: float | None = None) -> tuple[Any, Any]:
    """A second "removed", to test how much attributions hang on the first (`modality_baselines`): each image
    blurred by a Gaussian of ``sigma`` pixels (default: one patch, ``config.patch_size``; the layout and colours
    stay, what lies within a patch goes), a text modality still the empty plot."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = float(model.config.patch_size if sigma is None else sigma)

    def blurred(image: Tensor, modality: Any) -> Tensor:
        size = min(image.shape[-2:])
        kernel = min(2 * math.ceil(3 * sigma) + 1, size - 1 if size % 2 == 0 else size)  # reflect padding needs < size
        return gaussian_blur(image, [kernel, kernel], [sigma, sigma])

    return _removed(model, a, b, blurred)


def _removed(model: nn.Module, a: Any, b: Any, image_removed: Callable[[Tensor, Any], Tensor]) -> tuple[Any, Any]:
    """(a, b) each "removed": an image modality by ``image_removed(image, modality config)``, text as the empty plot."""
    out = []
    for key, value in (("a", a), ("b", b)):
        modality = model.config.modality(key)
        out.append([""] * _batch_size(value) if modality.is_text else image_removed(value, modality))
    return out[0], out[1]


def _batch_size(value: Any) -> int:
    if isinstance(value, Tensor):
        return value.shape[0]
    return len(value)


def _text_key(model: nn.Module) -> str | None:
    for key in ("a", "b"):
        if model.config.modality(key).is_text:
            return key
    return None


# ---------------------------------------------------------------------------------- contributions
@dataclass
class ModalityContributions:
    """How much each modality drives a target, for one batch of examples.

    ``coalitions`` holds f at the four coalitions: "none" (both baselines), "a" (only A present),
    "b", "both". ``shapley`` (B, 2) are captum's exact two-player Shapley values, A then B;
    ``ablation`` (B, 2) is f(both) - f(that modality removed).
    """

    names: tuple[str, str]
    coalitions: dict[str, Tensor]
    shapley: Tensor
    ablation: Tensor

    def shares(self) -> Tensor:
        """Each modality's share of f(both) - f(none), phi / (phi_A + phi_B), (B, 2).

        Defined only where the two values have the same sign; NaN where they pull in opposite
        directions (a share of a sum whose parts cancel is meaningless: -0.21 and +0.06 are not
        "77 % and 23 %") or are both zero.
        """
        return signed_shares(self.shapley)


def signed_shares(values: Tensor) -> Tensor:
    """values / values.sum(1) per row of (B, 2) where both have the same sign, else NaN."""
    total = values.sum(dim=1, keepdim=True)
    same_sign = ((values >= 0).all(dim=1) | (values <= 0).all(dim=1)) & (total[:, 0] != 0)
    shares = values / torch.where(total != 0, total, torch.ones_like(total))
    return torch.where(same_sign[:, None], shares, torch.full_like(values, float("nan")))


def _input_features(model: nn.Module, a: Any, b: Any) -> tuple[Tensor, Tensor | None]:
    """Encoder features and the text pad mask (None without text, or for a model that gives none)."""
    encode = getattr(model, "encode_with_pad_mask", None)
    if encode is None:
        return model.encode(a, b), None
    return encode(a, b)


def _feature_game(model: nn.Module, a: Any, b: Any, target: TargetFn, baselines: tuple[Any, Any] | None = None
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor, Callable, Callable]:
    """Encoder features of the inputs and of the baselines (default `modality_baselines`), split per modality,
    the payoff, and the model's output on features (fa, fb) that the payoff reads.
    The input plot's pad mask is part of the payoff, the same in every coalition (a head that pools
    words reads those positions whether the plot's features are present or replaced by the baseline's)."""
    base_a, base_b = modality_baselines(model, a, b) if baselines is None else baselines
    t = model.config.tokens_per_modality
    with torch.no_grad():
        feats, pad_mask = _input_features(model, a, b)
        base = model.encode(base_a, base_b)

    def fused(fa: Tensor, fb: Tensor) -> Tensor:
        # the mask is tiled when the batch holds several copies of the examples (captum's steps, coalitions)
        pad = None if pad_mask is None else pad_mask.repeat(fa.shape[0] // pad_mask.shape[0], 1)
        return model.forward_features(torch.cat([fa, fb], dim=1), pad).output

    def payoff(fa: Tensor, fb: Tensor) -> Tensor:
        return target(fused(fa, fb))

    return feats[:, :t], feats[:, t:], base[:, :t], base[:, t:], payoff, fused


@torch.no_grad()
def modality_contributions(model: nn.Module, a: Any, b: Any, target: TargetFn) -> ModalityContributions:
    """Exact two-modality Shapley values and feature ablation (captum), on the encoder features."""
    from captum.attr import FeatureAblation, ShapleyValues

    fa, fb, ba, bb, payoff, _ = _feature_game(model, a, b, target)
    masks = (torch.zeros_like(fa, dtype=torch.long), torch.ones_like(fb, dtype=torch.long))
    # One player per modality: captum evaluates f at every ordering of the two groups.
    shap = ShapleyValues(payoff).attribute((fa, fb), baselines=(ba, bb), feature_mask=masks)
    ablate = FeatureAblation(payoff).attribute((fa, fb), baselines=(ba, bb), feature_mask=masks)
    # Every feature of a group carries the group's full value: read one element per group.
    shapley = torch.stack([shap[0][:, 0, 0], shap[1][:, 0, 0]], dim=1)
    ablation = torch.stack([ablate[0][:, 0, 0], ablate[1][:, 0, 0]], dim=1)
    coalitions = {"none": payoff(ba, bb), "a": payoff(fa, bb), "b": payoff(ba, fb), "both": payoff(fa, fb)}
    names = (model.config.a.name, model.config.b.name)
    return ModalityContributions(names, coalitions, shapley, ablation)


@torch.no_grad()
def coalition_values(model: nn.Module, a: Any, b: Any, targets: Sequence[TargetFn],
                     baselines: tuple[Any, Any] | None = None) -> list[dict[str, Tensor]]:
    """f at the four coalitions ("none", "a", "b", "both"), for each of several targets, from one
    batched pass over the encoder features (4 B examples); `exact_shapley` turns them into values.
    ``baselines``: what "removed" puts in each modality's place (default `modality_baselines`)."""
    fa, fb, ba, bb, _, fused = _feature_game(model, a, b, targets[0], baselines)
    n = fa.shape[0]
    output = fused(torch.cat([ba, fa, ba, fa]), torch.cat([bb, bb, fb, fb]))
    out = []
    for target in targets:
        values = torch.cat([target(output[k * n : (k + 1) * n]) for k in range(4)])
        out.append(dict(zip(("none", "a", "b", "both"), values.split(n))))
    return out


def exact_shapley(coalitions: dict[str, Tensor]) -> Tensor:
    """The two-player Shapley formula, (B, 2): phi_A = ((v(A) - v(0)) + (v(AB) - v(B))) / 2."""
    v0, va, vb, vab = coalitions["none"], coalitions["a"], coalitions["b"], coalitions["both"]
    return torch.stack([((va - v0) + (vab - vb)) / 2, ((vb - v0) + (vab - va)) / 2], dim=1)


def blurred_shapley(model: nn.Module, a: Any, b: Any, target: TargetFn, sigma: float | None = None) -> Tensor:
    """The exact Shapley values, (B, 2), with `blurred_baselines` as "removed": the second baseline that the
    app shows beside the first and the known-answer benchmark scores."""
    return exact_shapley(coalition_values(model, a, b, [target], baselines=blurred_baselines(model, a, b, sigma))[0])


IG_TOLERANCE = 0.05
"""Integrated Gradients counts as converged when |delta| <= IG_TOLERANCE * |f(input) - f(baseline)|."""

IG_ABSOLUTE_FLOOR = 1e-4
"""...or when |delta| is below this absolute floor (a change of ~0 has no meaningful relative error)."""


def ig_converged(delta: Tensor, change: Tensor, tolerance: float = IG_TOLERANCE) -> Tensor:
    """(B,) bool: the completeness error is small against the change it explains."""
    return (delta.abs() <= tolerance * change.abs()) | (delta.abs() <= IG_ABSOLUTE_FLOOR)


@dataclass
class IntegratedGradientsResult:
    """Integrated Gradients for one batch.

    ``level`` is "features" (the default: one attribution per encoder token) or "inputs" (per pixel
    and per word embedding). ``maps[key]`` for key "a"/"b", summed over channels / the embedding:

    - features: an image modality (B, rows, cols) on its patch grid, a text modality (B, T) per
      token position (position i is the tokenizer's i-th piece; ``tokens`` gives example 0's);
    - inputs: an image modality (B, H, W) per pixel, a text modality (B, L) per word piece.

    ``totals`` (B, 2) are the sums per modality; by completeness totals.sum(1) ~ f(input) -
    f(baseline), and ``delta`` (B,) is the remaining error.
    """

    names: tuple[str, str]
    maps: dict[str, Tensor]
    totals: Tensor
    delta: Tensor
    f_input: Tensor
    f_baseline: Tensor
    n_steps: int
    tokens: list[str] = field(default_factory=list)
    level: str = "features"
    method: str = "gausslegendre"

    @property
    def change(self) -> Tensor:
        """f(input) - f(baseline), (B,): what the attributions must add up to."""
        return self.f_input - self.f_baseline

    def relative_delta(self) -> Tensor:
        """|delta| / |f(input) - f(baseline)|, (B,) (inf where the change is 0 and delta is not)."""
        return self.delta.abs() / self.change.abs()

    def converged(self, tolerance: float = IG_TOLERANCE) -> Tensor:
        """(B,) bool: whether the maps account for the change (see `ig_converged`)."""
        return ig_converged(self.delta, self.change, tolerance)


class _EmbeddingOverride:
    """A forward hook that swaps a layer's output for given values, only in the calling thread
    (other requests that run the same model at the same time are left alone)."""

    def __init__(self, layer: nn.Module):
        self.layer = layer
        self.local = threading.local()
        self.handle = None

    def __enter__(self) -> "_EmbeddingOverride":
        self.handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.remove()

    def _hook(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        value = getattr(self.local, "value", None)
        return output if value is None else value

    def run(self, value: Tensor, fn: Callable[[], Tensor]) -> Tensor:
        self.local.value = value
        try:
            return fn()
        finally:
            self.local.value = None


IG_LEVELS = ("features", "inputs")


def integrated_gradients(
    model: nn.Module,
    a: Any,
    b: Any,
    target: TargetFn,
    n_steps: int = 32,
    internal_batch_size: int | None = 16,
    at: str = "features",
    method: str = "gausslegendre",
) -> IntegratedGradientsResult:
    """captum Integrated Gradients over both modalities at once (so completeness spans both).

    ``at="features"`` (default) integrates along the straight path between the baselines' and the
    inputs' encoder features, through the flow and the head only: the path is smooth there and
    Gauss-Legendre quadrature converges in a few dozen steps, whatever the encoders are.
    ``at="inputs"`` integrates over pixels and word embeddings, through the encoders.
    ``internal_batch_size`` bounds how many path points run in one pass (memory).
    """
    if at == "features":
        return _ig_features(model, a, b, target, n_steps, internal_batch_size, method)
    if at == "inputs":
        return _ig_inputs(model, a, b, target, n_steps, internal_batch_size, method)
    raise ValueError(f"at must be one of {IG_LEVELS}, got {at!r}")


def _ig_features(model: nn.Module, a: Any, b: Any, target: TargetFn, n_steps: int,
                 internal_batch_size: int | None, method: str) -> IntegratedGradientsResult:
    from captum.attr import IntegratedGradients

    fa, fb, ba, bb, payoff, _ = _feature_game(model, a, b, target)
    (attr_a, attr_b), delta = IntegratedGradients(payoff).attribute(
        (fa, fb), baselines=(ba, bb), n_steps=n_steps, method=method, internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        f_in, f_base = payoff(fa, fb), payoff(ba, bb)
    maps, tokens = {}, []
    for key, attr in (("a", attr_a), ("b", attr_b)):
        per_token = attr.sum(dim=-1).detach()  # (B, T)
        if model.config.modality(key).is_text:
            maps[key] = per_token
            ids, _ = model.text_tokens((a if key == "a" else b)[:1])
            tokens = model.text_encoder.word_pieces(ids[0])
        else:
            maps[key] = per_token.reshape(per_token.shape[0], *model.config.grid)
    totals = torch.stack([attr_a.flatten(1).sum(1), attr_b.flatten(1).sum(1)], dim=1).detach()
    names = (model.config.a.name, model.config.b.name)
    return IntegratedGradientsResult(names, maps, totals, delta.detach(), f_in, f_base, n_steps, tokens, "features", method)


def _ig_inputs(model: nn.Module, a: Any, b: Any, target: TargetFn, n_steps: int,
               internal_batch_size: int | None, method: str) -> IntegratedGradientsResult:
    """Pixels per image modality; a text modality at its word embeddings (baseline: the padding
    token's embedding at every word position, start/end/pad tokens kept)."""
    from captum.attr import IntegratedGradients

    base_a, base_b = modality_baselines(model, a, b)
    text_key = _text_key(model)
    names = (model.config.a.name, model.config.b.name)
    if text_key is None:

        def forward(xa: Tensor, xb: Tensor) -> Tensor:
            return target(model(xa, xb).output)

        inputs, baselines = (a, b), (base_a, base_b)
        ig = IntegratedGradients(forward)
        attrs, delta = ig.attribute(
            inputs, baselines=baselines, n_steps=n_steps, method=method, internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
        with torch.no_grad():
            f_in, f_base = forward(a, b), forward(base_a, base_b)
        maps = {"a": attrs[0].sum(dim=1).detach(), "b": attrs[1].sum(dim=1).detach()}
        totals = torch.stack([attrs[0].flatten(1).sum(1), attrs[1].flatten(1).sum(1)], dim=1)
        return IntegratedGradientsResult(names, maps, totals.detach(), delta.detach(), f_in, f_base, n_steps,
                                         level="inputs", method=method)

    image_key = "a" if text_key == "b" else "b"
    texts = a if text_key == "a" else b
    images = b if text_key == "a" else a
    image_base = base_b if text_key == "a" else base_a
    ids, _ = model.text_tokens(texts if isinstance(texts, Tensor) else list(texts))
    embedding = model.text_embedding
    with torch.no_grad():
        word_emb = embedding(ids)
        pad_emb = embedding(torch.zeros_like(ids))
    # Keep the start/end tokens and the padding as they are; only word positions move.
    special = model.text_encoder.special_mask(ids)
    emb_base = torch.where(special[..., None], word_emb, pad_emb)

    override = _EmbeddingOverride(embedding)

    def forward(x_img: Tensor, x_emb: Tensor) -> Tensor:
        # captum stacks the interpolation steps step-major ([x0, x1, x0, x1, ...]): tile the ids alike.
        batch_ids = ids.repeat(x_emb.shape[0] // ids.shape[0], 1)
        pair = (x_img, batch_ids) if image_key == "a" else (batch_ids, x_img)
        return override.run(x_emb, lambda: target(model(*pair).output))

    with override:
        ig = IntegratedGradients(forward)
        (attr_img, attr_txt), delta = ig.attribute(
            (images, word_emb), baselines=(image_base, emb_base), n_steps=n_steps, method=method,
            internal_batch_size=internal_batch_size, return_convergence_delta=True,
        )
        with torch.no_grad():
            f_in, f_base = forward(images, word_emb), forward(image_base, emb_base)
    img_map, txt_map = attr_img.sum(dim=1), attr_txt.sum(dim=-1)
    img_total, txt_total = attr_img.flatten(1).sum(1), attr_txt.flatten(1).sum(1)
    maps = {image_key: img_map.detach(), text_key: txt_map.detach()}
    totals = [None, None]
    totals["ab".index(image_key)], totals["ab".index(text_key)] = img_total, txt_total
    tokens = model.text_encoder.word_pieces(ids[0])
    return IntegratedGradientsResult(
        names, maps, torch.stack(totals, dim=1).detach(), delta.detach(), f_in, f_base, n_steps, tokens, "inputs", method
    )


@dataclass
class LikelihoodChange:
    """Exact log-likelihood of the fused features (nats and bits/dim), per example (B,):
    as given, with A removed, with B removed (baselines as everywhere in this module)."""

    names: tuple[str, str]
    log_prob: dict[str, Tensor]
    bits_per_dim: dict[str, Tensor]

    def _key(self, removed: str) -> str:
        """'a', 'b', or a modality's name ('rgb', 'depth', ...) as the key of its run without it."""
        if removed in self.names:
            removed = "ab"[self.names.index(removed)]
        if removed not in ("a", "b"):
            raise ValueError(f"removed must be 'a', 'b', {self.names[0]!r} or {self.names[1]!r}, got {removed!r}")
        return f"without_{removed}"

    def delta_log_prob(self, removed: str) -> Tensor:
        """log p(with `removed` replaced by its baseline) - log p(as given), in nats. `removed` is
        'a', 'b' or the modality's name."""
        return self.log_prob[self._key(removed)] - self.log_prob["both"]

    def delta_bits_per_dim(self, removed: str) -> Tensor:
        """bits/dim with `removed` ('a', 'b' or the modality's name) replaced by its baseline minus
        bits/dim as given. Positive: the pair is *less* likely without that modality; negative: more
        likely."""
        return self.bits_per_dim[self._key(removed)] - self.bits_per_dim["both"]


@torch.no_grad()
def likelihood_change(model: nn.Module, a: Any, b: Any) -> LikelihoodChange:
    """The exact log-likelihood of (a, b) as given and with each modality removed (replaced by its
    baseline): how much each modality makes the pair more or less typical to the density."""
    base_a, base_b = modality_baselines(model, a, b)
    runs = {"both": (a, b), "without_a": (base_a, b), "without_b": (a, base_b)}
    log_prob, bpd = {}, {}
    for name, (xa, xb) in runs.items():
        out = model(xa, xb)
        if out.log_prob is None:
            raise ValueError("likelihood_change needs a model with a flow")
        log_prob[name], bpd[name] = out.log_prob, out.bits_per_dim
    return LikelihoodChange((model.config.a.name, model.config.b.name), log_prob, bpd)


# -------------------------------------------------------------------------------------- attention
@dataclass
class AttentionRow:
    """One row i of an ICA layer's attention A, in original token positions (0..T-1 modality A,
    T..2T-1 modality B).

    ``query_token`` (in X1) computed the row's scores; ``output_token`` (in X2) received the
    mixture; ``keys[t]`` is the weight A[i, j] at the key token t = X1[j] it was scored against,
    ``values[t]`` the same weight at the value token t = X2[j] whose content was mixed in.
    Both are (N,) with zeros elsewhere (and zeros for j > i: A is causal). ``role`` says whether
    the asked-for token was the query ("query") or the mixed token ("mixed").
    """

    block: int
    layer: int
    kind: str
    name: str
    row: int
    role: str
    query_token: int
    output_token: int
    keys: Tensor
    values: Tensor


def attention_row(amap: Any, token: int, example: int = 0, head: int | None = None) -> AttentionRow:
    """The row of ``amap`` (a mango.flow AttentionMap) that involves original token ``token``.

    A token sits in exactly one half: in X1 it is the row's query, in X2 it is the token that
    row mixes into. ``keys`` holds row i of S on the X1 tokens: the comparison of the query with each
    key it may see (a softmax, so it sums to 1). ``values`` holds row i of A on the X2 tokens, as
    shares of its sum: how much of each one's content is mixed in. For the gated form A = (1 − α) I
    + α S, so off the diagonal a value weight is α times the key weight, and A_ii (at the output
    token) is the share the token keeps, set by the gate. Heads are averaged unless ``head`` is given.
    For LICA the halves are mixtures W X; positions are those of its permutation P (exact at
    initialisation; after training W's largest weight per row, a small part of the row).
    """
    queries = amap.query_tokens.tolist()
    values = amap.value_tokens.tolist()
    n_total = len(queries) + len(values)
    if not 0 <= token < n_total:
        raise ValueError(f"token must be in [0, {n_total}), got {token}")
    if token in queries:
        row, role = queries.index(token), "query"
    else:
        row, role = values.index(token), "mixed"
    # each head's row of A as shares of its sum: a no-op for the row-stochastic forms, and what the app's
    # "share of its row" means for A = I + S (rows sum to 2) and a unit diagonal (rows sum to 1 / A_ii)
    rows = amap.attention[example][:, row]
    rows = rows / rows.sum(dim=-1, keepdim=True)
    weights = rows.mean(dim=0) if head is None else rows[head]
    scores = amap.scores[example][:, row]  # S: a softmax over the keys the query may see, each row sums to 1
    compared = scores.mean(dim=0) if head is None else scores[head]
    keys = torch.zeros(n_total, dtype=weights.dtype)
    vals = torch.zeros(n_total, dtype=weights.dtype)
    keys[amap.query_tokens] = compared.to(weights.dtype).cpu()
    vals[amap.value_tokens] = weights.cpu()
    return AttentionRow(
        amap.block, amap.layer, amap.kind, amap.name, row, role,
        int(queries[row]), int(values[row]), keys, vals,
    )


def layer_mixing(amap: Any, example: int = 0) -> Tensor:
    """The layer's value path as an (N, N) matrix in original positions: output row, input column
    (heads averaged; for LICA through W exactly)."""
    return amap.token_mixing()[example].detach().cpu()


@torch.no_grad()
def rollout(model: nn.Module, features: Tensor, example: int = 0) -> Tensor:
    """(N, N) product of every layer's value-path mixing through the whole flow, original positions."""
    return model.flow.rollout(features)[example].detach().cpu()


@torch.no_grad()
def rollout_from_maps(maps: Sequence[Any], example: int = 0) -> Tensor:
    """The same product from already computed attention maps (flow order), without a second pass."""
    total: Tensor | None = None
    for amap in maps:
        mixing = amap.token_mixing()[example]
        total = mixing if total is None else mixing @ total
    if total is None:
        raise ValueError("no attention maps: this flow has no ICA layers")
    return total.detach().cpu()


def region_token_weights(region: Tensor, grid: tuple[int, int]) -> Tensor:
    """(H, W) bool region -> (T,) the fraction of each patch (raster order) the region covers."""
    rows, cols = grid
    h, w = region.shape[-2:]
    if h % rows or w % cols:
        raise ValueError(f"a {h}x{w} region does not split into a {rows}x{cols} patch grid")
    cover = region.float().reshape(rows, h // rows, cols, w // cols).mean(dim=(1, 3))
    return cover.flatten()


def rollout_sources(rollout_matrix: Tensor, token_weights: Tensor) -> Tensor:
    """Which modality's input tokens feed the given output tokens through the whole flow, (2,).

    ``rollout_matrix`` (N, N) maps input columns to output rows (original positions, modality A's
    T tokens first); ``token_weights`` (T,) weighs the patch positions of interest, taken in both
    modalities' halves (the head reads both). Returns the share of |mixing weight| that comes from
    A's columns and from B's: sum_i w_i sum_{j in m} |R_ij| / sum_i w_i sum_j |R_ij|.
    """
    t = token_weights.numel()
    if rollout_matrix.shape != (2 * t, 2 * t):
        raise ValueError(f"rollout {tuple(rollout_matrix.shape)} does not match {t} tokens per modality")
    rows = torch.cat([token_weights, token_weights]).to(rollout_matrix)
    fed = (rows[:, None] * rollout_matrix.abs()).sum(dim=0)  # (N,) how much each input token feeds them
    per_modality = torch.stack([fed[:t].sum(), fed[t:].sum()])
    total = per_modality.sum()
    return per_modality / total if total > 0 else torch.full((2,), float("nan"))


def tokens_to_grid(weights: Tensor, grid: tuple[int, int]) -> Tensor:
    """(T,) raster-ordered token values -> (rows, cols)."""
    rows, cols = grid
    if weights.numel() != rows * cols:
        raise ValueError(f"{weights.numel()} values do not fill a {rows}x{cols} grid")
    return weights.reshape(rows, cols)


def token_label(token: int, tokens_per_modality: int, names: tuple[str, str], grid: tuple[int, int] | None,
                words: Sequence[str] | None = None, text_key: str | None = None) -> str:
    """A readable name for an original token index: "rgb (row 2, col 5)" or "plot word 3 'city'"."""
    key = "a" if token < tokens_per_modality else "b"
    local = token % tokens_per_modality
    name = names[0] if key == "a" else names[1]
    if key == text_key:
        word = words[local] if words is not None and local < len(words) else ""
        return f"{name} token {local}" + (f" '{word}'" if word else "")
    if grid is None:
        return f"{name} token {local}"
    return f"{name} (row {local // grid[1]}, col {local % grid[1]})"
