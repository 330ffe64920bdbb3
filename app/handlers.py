"""What each button does: read inputs, run the model and `mango.interpret`, return what the UI shows.

One `Runner` per model slot (segmentation, the two translation settings, genre). Its methods take
plain values (file paths, strings, numbers) and return numpy images, plotly figures, tables and
markdown, so they can be called from tests without a browser. Problems with the input raise
`InputError` (shown to the user as it is); `ui.py` turns them into gradio messages.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from mango import interpret, known_answers
from mango.data.transforms import taskonomy_depth_metres
from mango.text_coverage import language, vocabulary_coverage

from . import examples as example_files
from . import plots, ranges, texts, trust, wording
from .checkpoints import LoadedModel
from .inputs import InputError, LoadedImage, check_pair_sizes, check_plot, is_missing, load_image, missing_message

log = logging.getLogger("mango.app")
ProgressFn = Callable[[float, str], None]
DISPLAY = 256  # side of the square images the views draw on
TRANSLATION_TARGETS = {"mean brightness": None, "red channel": 0, "green channel": 1, "blue channel": 2}
IG_BATCH = 16  # path points per pass: bounds memory whatever the step count
LOW_COVERAGE = 0.6  # below this share of covered words, the prediction on a plot gets a warning
CONFIDENT_LANGUAGE = 0.8  # a plot is called non-English only when py3langid is this sure (short texts are not)
LANGUAGE_NAMES = {"fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
                  "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "pl": "Polish", "cs": "Czech",
                  "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian", "el": "Greek", "ro": "Romanian", "hu": "Hungarian",
                  "id": "Indonesian", "vi": "Vietnamese", "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "ja": "Japanese",
                  "zh": "Chinese", "ko": "Korean", "ca": "Catalan", "la": "Latin"}


def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass
class Prepared:
    """One example, checked and ready: model inputs (batch of 1), what to draw, and notices."""

    a: torch.Tensor | list[str]
    b: torch.Tensor | list[str]
    panels: list[plots.Panel]
    displays: dict[str, np.ndarray]  # per image modality: preview at upload aspect ratio
    words: list[str] | None = None  # the text modality's word pieces, start to end token
    notices: list[str] = field(default_factory=list)


@dataclass
class SegmentPrediction:
    """One segmentation, kept for redrawing its overlay: the picture it is drawn on, the model's labels
    enlarged to it, and each predicted class's share of the model's labels (largest first)."""

    base: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) class index per pixel
    shares: list[tuple[int, float]]


class Runner:
    """A loaded model slot and every view of it."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.config = loaded.config
        self.names: tuple[str, str] = (self.config.a.name, self.config.b.name)
        self.t = self.config.tokens_per_modality
        self.grid = self.config.grid
        self.text_key = next((k for k in ("a", "b") if self.config.modality(k).is_text), None)
        self.depth_max = float(self.config.metadata.get("depth_max", 10.0))
        layers = self.model.flow.ica_layers() if self.model.flow is not None else []
        self.layer_choices = [f"block {b + 1} · layer {i + 1} · {layer.name}" for b, i, layer in layers]
        self._cache: OrderedDict[tuple, Prepared] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ inputs
    def labels(self) -> tuple[str, str]:
        return tuple(_modality_label(self.config.modality(k).name) for k in ("a", "b"))  # type: ignore[return-value]

    def missing(self, a_in: Any, b_in: Any) -> dict[str, str]:
        """What each empty slot ("a", "b") is told; nothing for a filled one (read and checked later)."""
        return {key: missing_message(label, self.config.modality(key).is_text)
                for key, label, value in zip(("a", "b"), self._slot_names(), (a_in, b_in)) if is_missing(value)}

    def slot_problems(self, a_in: Any, b_in: Any) -> dict[str, str]:
        """What a prediction button's check tells each slot before the press is queued: that it is empty,
        or why its plot cannot be read (too short or too long: cheap to check, unlike an image file)."""
        problems = self.missing(a_in, b_in)
        key = self.text_key
        if key is not None and key not in problems:
            try:
                check_plot({"a": a_in, "b": b_in}[key])
            except InputError as err:
                problems[key] = str(err)
        return problems

    def _slot_names(self) -> list[str]:
        return [{"rgb": "RGB image"}.get(label, label) for label in self.labels()]  # "the rgb" reads as a typo

    def prepare(self, a_in: Any, b_in: Any) -> Prepared:
        """Check and load one example (cached by file identity, so views of one input share it)."""
        key = (_identity(a_in), _identity(b_in))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        prepared = self._prepare(a_in, b_in)
        with self._lock:
            self._cache[key] = prepared
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, a_in: Any, b_in: Any) -> Prepared:
        values: dict[str, Any] = {}
        panels: list[plots.Panel] = []
        displays: dict[str, np.ndarray] = {}
        notices: list[str] = []
        words = None
        loaded_images: list[tuple[LoadedImage, str]] = []
        raw = {"a": a_in, "b": b_in}
        missing = self.missing(a_in, b_in)
        if len(missing) == 2:
            first, second = self._slot_names()
            raise InputError(
                f"Both inputs are missing: upload the {first} and the {second} (or click an example). "
                "MANGO fuses two modalities and needs both."
            )
        if missing:
            raise InputError(*missing.values())
        names = dict(zip(("a", "b"), self._slot_names()))  # in sentences: "the RGB image is 640×480"
        for key in ("a", "b"):
            modality = self.config.modality(key)
            label = _modality_label(modality.name)
            if modality.is_text:
                text, text_notices = check_plot(raw[key])
                notices += text_notices
                values[key] = [text]
                words, truncated = self._words(text)
                coverage = self._coverage_notice(text, label)
                if coverage:
                    notices.append(coverage)
                if truncated:
                    read = self.config.text_context_length - 2  # the start and end tokens take two places
                    notices.append(f"The plot is {truncated} word pieces long; the model reads the first {read} "
                                   f"({truncated - read} are cut).")
                panels.append(plots.Panel(label, words=words))
            else:
                image = load_image(raw[key], modality.name, modality.channels, self.config.image_size, names[key],
                                   depth_max=self.depth_max, display_size=512)
                notices += image.notices
                values[key] = image.tensor[None]
                shown = plots.modality_image(image.tensor.numpy(), modality.name)
                panels.append(plots.Panel(label, image=plots.resize_image(shown, DISPLAY), grid=self.grid))
                displays[modality.name] = image.display
                loaded_images.append((image, names[key]))
        if len(loaded_images) == 2:
            notices += check_pair_sizes(loaded_images[0][0], loaded_images[1][0], loaded_images[0][1], loaded_images[1][1])
        size = self.config.image_size
        for image, named in loaded_images:  # a non-square one's crop notice already gives the model's size
            w, h = image.original_size
            if w == h != size and not any("resized" in n for n in notices):
                notices.append(f"Inputs are resized to the model's {size}×{size} pixels (the {named} was {w}×{h}).")
        return Prepared(values["a"], values["b"], panels, displays, words, notices)

    def _coverage_notice(self, text: str, label: str) -> str:
        """How much of the text the model's vocabulary covers, as a notice (a warning when little is);
        empty for a tokenizer `mango.text_coverage` does not know (the prediction still runs)."""
        try:
            coverage = vocabulary_coverage(text, self.model.tokenizer)
        except TypeError as err:
            log.warning("vocabulary coverage unavailable: %s", err)
            return ""
        said = (f"The model's vocabulary covers {coverage.share:.0%} of the {label}'s {coverage.words} words "
                "(known as whole words or a few word pieces)")
        if coverage.share >= LOW_COVERAGE:
            code, probability = language(text)
            if code != "en" and probability >= CONFIDENT_LANGUAGE:  # covered pieces, but not English words
                name = LANGUAGE_NAMES.get(code, f"the language with code “{code}”")
                return (f"⚠️ The {label} reads as {name} ({probability:.0%} likely, by py3langid). {said}, but as "
                        "word pieces of an English vocabulary: the model was trained on English plots only, so this "
                        "prediction is close to a guess. Translate the plot to English for a meaningful result.")
            return said + "."
        missing = ", ".join(f"“{w}”" for w in coverage.uncovered_examples)
        return (f"⚠️ {said}: little of it. The model was trained on English plots only, so this prediction is close to "
                f"a guess: treat it with caution." + (f" Not covered, for example: {missing}." if missing else ""))

    def _words(self, text: str) -> tuple[list[str], int]:
        encoder = self.model.text_encoder
        ids, _ = self.model.text_tokens([text])
        full = encoder.token_count(text)  # the start and end tokens included
        return encoder.word_pieces(ids[0]), (full - 2 if full > self.config.text_context_length else 0)

    def preview(self, a_in: Any, b_in: Any) -> tuple[np.ndarray | None, str]:
        """Single-channel uploads (depth, shading, edges) as the model reads them, colourised, with
        what their values mean; (None, "") when there is none to show. Unreadable files are left
        to the prediction, which explains them."""
        images, captions, described = [], [], []
        for key, raw in (("a", a_in), ("b", b_in)):
            modality = self.config.modality(key)
            if modality.is_text or modality.channels != 1 or raw is None:
                continue
            label = _modality_label(modality.name)
            try:
                image = load_image(raw, modality.name, 1, self.config.image_size, label, depth_max=self.depth_max)
            except InputError:
                continue
            images.append(plots.modality_image(image.tensor.numpy(), modality.name))
            values = image.tensor.numpy()
            captions.append(label)
            described.append(_value_range(modality.name, values, image.bit_depth, self.depth_max, label))
        if not images:
            return None, ""
        return plots.image_strip(images, captions, cols=len(images), size=160), "As the model reads them: " + "; ".join(described)

    def inputs(self, prepared: Prepared) -> tuple[Any, Any]:
        return prepared.a, prepared.b

    # --------------------------------------------------------------------------- predictions
    @torch.no_grad()
    def predict(self, prepared: Prepared) -> Any:
        return self.model(*self.inputs(prepared))

    def segment(self, a_in: Any, b_in: Any, opacity: Any = ranges.OVERLAY_OPACITY.default
                ) -> tuple[tuple, pd.DataFrame, str, SegmentPrediction]:
        """Overlay (for gr.AnnotatedImage: each mask's value is its opacity), class shares table, notices,
        and the prediction itself, so the overlay can be redrawn at another opacity without the model."""
        alpha = float(ranges.OVERLAY_OPACITY.check(opacity))
        prepared = self.prepare(a_in, b_in)
        labels = self.predict(prepared).output.argmax(dim=1)[0].numpy()
        base = prepared.displays[self.names[0]]
        if base.shape[0] < labels.shape[0]:  # a tiny upload: drawn at the model's size, so no class vanishes
            base = plots.resize_image(base, labels.shape[0])
        h, w = base.shape[:2]
        # the model's own labels, enlarged: the picture shows exactly the pixels the shares count
        shown = plots.resize_image(labels.astype(np.uint8), (w, h), nearest=True)
        prediction = SegmentPrediction(base, shown, class_shares(labels, len(self.config.class_names)))
        classes = self.config.class_names
        table = pd.DataFrame({
            "class": [classes[k] for k, _ in prediction.shares],
            "share of pixels (%)": [percent(share, 1) for _, share in prediction.shares],
        })
        return self.overlay(prediction, alpha), table, _notices_md(prepared.notices, self.loaded), prediction

    def overlay(self, prediction: SegmentPrediction, opacity: Any) -> tuple:
        """The overlay of a prediction at an opacity, largest class first (the table's order)."""
        alpha = float(ranges.OVERLAY_OPACITY.check(opacity))
        classes = self.config.class_names
        masks = [((prediction.labels == k).astype(np.float32) * alpha, classes[k]) for k, _ in prediction.shares]
        return prediction.base, masks

    def class_colours(self) -> dict[str, str]:
        return {name: plots.class_colour(k) for k, name in enumerate(self.config.class_names)}

    def translate(self, a_in: Any, b_in: Any) -> tuple[np.ndarray, str]:
        prepared = self.prepare(a_in, b_in)
        out = self.predict(prepared)
        target = self.config.target.name if self.config.target is not None else "rgb"
        image = plots.modality_image(out.output[0].numpy(), target)
        return plots.resize_image(image, DISPLAY), _notices_md(prepared.notices, self.loaded)

    def genre(self, a_in: Any, b_in: Any) -> tuple[Any, str, str]:
        prepared = self.prepare(a_in, b_in)
        out = self.predict(prepared)
        probs = torch.sigmoid(out.output[0]).numpy()
        names = list(self.config.class_names)
        thresholds = self.thresholds()
        figure = plots.probability_figure(names, probs, thresholds, "Genre probabilities (sigmoid of each genre's logit)")
        return figure, predicted_genres(names, probs, thresholds), _notices_md(prepared.notices, self.loaded)

    def target_choices(self, a_in: Any, b_in: Any) -> list[tuple[str, str]]:
        """Dropdown choices for the contributions view, most relevant first ((label, value))."""
        task = self.config.task
        if task == "translation":
            return [(k, k) for k in TRANSLATION_TARGETS]
        names = list(self.config.class_names)
        try:
            prepared = self.prepare(a_in, b_in)
        except InputError:
            return [(n, n) for n in names]
        out = self.predict(prepared)
        if task == "genre":
            probs = torch.sigmoid(out.output[0]).numpy()
            thresholds = self.thresholds()
            return [(f"{names[k]} ({plots.percent_beside(probs[k], thresholds[k])})", names[k]) for k in np.argsort(-probs)]
        shares = class_shares(out.output.argmax(dim=1)[0].numpy(), len(names))  # the same count as the table's
        absent = [k for k in range(len(names)) if k not in dict(shares)]
        return ([(f"{names[k]} ({percent(share)}% of pixels)", names[k]) for k, share in shares]
                + [(f"{names[k]} (not predicted)", names[k]) for k in absent])

    def thresholds(self) -> np.ndarray:
        """Each genre's decision threshold: the ones the test metrics were computed with."""
        return np.asarray(self.config.thresholds(), dtype=float)

    # ------------------------------------------------------------------------------ attention
    def layer_index(self, choice: Any) -> int:
        if isinstance(choice, (int, float)) and not isinstance(choice, bool):
            index = int(choice)
        elif isinstance(choice, str) and choice in self.layer_choices:
            index = self.layer_choices.index(choice)
        else:
            raise InputError(f"Unknown layer {choice!r}; pick one of the list (e.g. {self.layer_choices[0]!r}).")
        if not 0 <= index < len(self.layer_choices):
            raise InputError(f"Layer index {index} is out of range: this flow has {len(self.layer_choices)} ICA layers.")
        return index

    def query_token(self, modality: Any, index: Any) -> int:
        if modality not in self.labels():
            raise InputError(f"The query modality must be one of {list(self.labels())}, got {modality!r}.")
        try:
            local = int(ranges.query_token(self.t).check(index))
        except InputError as err:
            raise InputError(f"{err} Tokens are the {self.grid[0]}×{self.grid[1]} patches in raster order, or word "
                             "positions.") from None
        return local + (self.t if modality == self.labels()[1] else 0)

    def token_label(self, token: int, words: Sequence[str] | None) -> str:
        label = interpret.token_label(token, self.t, self.labels(), self.grid, words, self.text_key)
        return label + " (padding)" if words is not None and self.padding(words)[token] else label

    def padding(self, words: Sequence[str] | None) -> np.ndarray:
        """(2T,) True at the text's pad tokens (after ⟨end⟩): they are in the flow, but not in the plot."""
        pad = np.zeros(2 * self.t, dtype=bool)
        if self.text_key is not None and words is not None:
            start = (self.t if self.text_key == "b" else 0) + len(words)
            pad[start : (2 if self.text_key == "b" else 1) * self.t] = True
        return pad

    def query(self, prepared: Prepared, modality: Any, index: Any) -> tuple[int, str]:
        """The original token a query names, and a note when it had to move: a text position past the
        plot's end (padding) becomes the plot's last word."""
        token = self.query_token(modality, index)
        words = prepared.words
        if words is None or not self.padding(words)[token]:
            return token, ""
        offset = self.t if self.text_key == "b" else 0
        last = next((k for k in range(len(words) - 2, 0, -1) if any(ch.isalnum() for ch in words[k])), len(words) - 1)
        note = (f"{self.token_label(token, words)} comes after the plot's end (its {len(words)} tokens run from "
                f"⟨start⟩ to ⟨end⟩), so the query is its last word, {self.token_label(offset + last, words)}.")
        return offset + last, note

    def picker(self, prepared: Prepared, token: int | None = None) -> np.ndarray | None:
        """Both image modalities side by side with the patch grid, the query patch outlined."""
        image_panels = [(k, p) for k, p in enumerate(prepared.panels) if not p.is_text]
        if not image_panels:
            return None
        marked = None
        if token is not None:
            panel = 0 if token < self.t else 1
            for position, (k, _) in enumerate(image_panels):
                if k == panel:
                    marked = (position, token % self.t)
        return plots.grid_picker([p.image for _, p in image_panels], self.grid, [p.name for _, p in image_panels],
                                 size=_picker_size(), marked=marked)

    def pick(self, x: float, y: float) -> tuple[str, int] | None:
        """Where a click on the picker landed: (query modality label, local index)."""
        image_keys = [k for k in ("a", "b") if k != self.text_key]
        hit = plots.picker_hit(x, y, len(image_keys), self.grid, size=_picker_size())
        if hit is None:
            return None
        panel, local = hit
        key = image_keys[panel]
        return self.labels()["ab".index(key)], local

    @torch.no_grad()
    def attention(self, a_in: Any, b_in: Any, layer: Any, query_modality: Any, query_index: Any) -> tuple:
        """(picker image, attention figure, rollout figure, matrix figure, explanation markdown)."""
        prepared = self.prepare(a_in, b_in)
        if self.model.flow is None:
            raise InputError("This model has no flow, so it has no ICA attention to show.")
        index = self.layer_index(layer)
        token, moved = self.query(prepared, query_modality, query_index)
        features = self.model.encode(*self.inputs(prepared))
        maps = self.model.flow.attention_maps(features)
        amap = maps[index]
        row = interpret.attention_row(amap, token)
        words = prepared.words
        label = lambda t: self.token_label(t, words)  # noqa: E731
        keys, values = row.keys.numpy(), row.values.numpy()
        self_weight = float(row.values[row.output_token])  # A_ii: the share the receiving token keeps
        picked = "the query" if row.role == "query" else "mixed"
        pad = self.padding(words)
        on_pads = ""  # pad tokens are not drawn: their share of the row is said instead
        if keys[pad].sum() + values[pad].sum() >= 5e-4:
            on_pads = (f"<br><span style='font-size:12px'>on padding (not drawn): key weight {keys[pad].sum():.3f}, "
                       f"value weight {values[pad].sum():.3f}</span>")
        title = (f"{self.layer_choices[index]} · picked {label(token)} ({picked})<br>"
                 f"<span style='font-size:12px'>row {row.row}: query {label(row.query_token)} → mix into "
                 f"{label(row.output_token)} · self-weight A<sub>ii</sub> = {self_weight:.3f}</span>{on_pads}")
        panels = prepared.panels
        attention_fig = plots.attention_figure(panels, keys, values, row.query_token, row.output_token, title)
        mixing = interpret.layer_mixing(amap).numpy()
        roll = interpret.rollout_from_maps(maps).numpy()
        roll_row = roll[token]
        roll_pads = f" · on padding (not drawn): {np.clip(roll_row, 0, None)[pad].sum():.3f}" if pad.any() else ""
        negative = float(-roll_row[roll_row < 0].sum() / max(np.abs(roll_row).sum(), 1e-12))
        roll_signed = ""  # LICA's mixing W has negative weights: the rollout is then a signed map, not shares
        if negative >= 0.005:
            roll_signed = (f"negative weights (not drawn): {negative:.0%} of the row's absolute weight; the row sums "
                           f"to {roll_row.sum():.2f}, so its weights are not shares")
            roll_pads += f" · {roll_signed}"
        rollout_fig = plots.token_weights_figure(
            panels, np.clip(roll_row, 0, None),
            f"Rollout through all {len(maps)} ICA layers: the value path's weights into {label(token)}<br>"
            f"<span style='font-size:12px'>its own weight: {roll_row[token]:.3f}{roll_pads}</span>", token, "rollout weight")
        labels_all = [label(t) for t in range(2 * self.t)]
        matrix_fig = plots.matrix_figure(
            [mixing, roll], [f"this layer ({amap.name})", "rollout (whole flow)"], labels_all, self.labels(),
            "Value-path mixing in original token positions (row: output token, column: input token)")
        pads = (f"\n- padding (the {int(pad.sum())} tokens after ⟨end⟩, not drawn): {percent(float(keys[pad].sum()), 1)} % "
                f"of the key weight, {percent(float(values[pad].sum()), 1)} % of the value weight" if pad.any() else "")
        strongest = (f"\n- strongest keys: {_strongest(keys, label, pad)}; strongest values other than itself: "
                     f"{_strongest(values, label, pad | (np.arange(len(values)) == row.output_token))}")
        text = self._attention_text(row, amap, label, self_weight, roll_row[token],
                                    (f" ({roll_signed})" if roll_signed else "") + strongest + pads)  # a zoomed page cuts titles
        if moved:
            text = f"*{moved}*\n\n" + text
        shares = [float(m.off_diagonal_share()[0]) for m in maps]
        text += "\n\n" + layer_mixing_text(self.layer_choices, shares, index,
                                         value_affine=bool(self.model.config.value_affine),
                                         exclude_self=bool(self.model.config.ica_exclude_self))
        return self.picker(prepared, token), attention_fig, rollout_fig, matrix_fig, text

    def _attention_text(self, row: interpret.AttentionRow, amap: Any, label: Callable[[int], str], self_weight: float,
                        roll_self: float, pads: str = "") -> str:
        role = ("is the **query** of this row: its features (with the other X1 tokens' as keys) decide the weights"
                if row.role == "query" else
                "is **mixed** by this row: its new value is the weighted mix of the orange tokens")
        lica = ("\n\n*LICA*: the halves are mixtures W·X of all tokens; positions shown are those of the permutation P "
                "(exact at initialisation; after training the largest single weight of each row of W, but a small part "
                "of the row). The matrix view (the third chart) is exact; it colours each weight by its absolute value, "
                "so a negative weight looks like a positive one (the hover gives its sign)."
                if amap.kind == "lica" else "")
        first = (" (row 0 has no earlier token for S to weigh, so S falls on the token itself and it keeps all of its "
                 "content: A<sub>00</sub> = 1, not 1 − α)" if row.row == 0 and self.model.config.ica_exclude_self else "")
        return (
            f"**Row {row.row} of {amap.name}.** {label(row.query_token)} (solid black outline) computes the scores; "
            f"{label(row.output_token)} (dashed green outline) receives the mix. The token you picked {role}.\n\n"
            f"- blue: the comparison weights S[i, j] of the query with each key it may see (they sum to 1)\n"
            f"- orange: the row of A at the X2 tokens whose content is mixed in (gated form: α times the blue "
            f"weight of the matching key, except A<sub>ii</sub>)\n"
            f"- self-weight A<sub>ii</sub> = {self_weight:.3f}; all other weights share {1 - self_weight:.3f}{first}\n"
            f"- rollout: the picked token's own weight on the value path through the flow, {roll_self:.3f}{pads}{lica}"
        )

    # -------------------------------------------------------------------------- contributions
    def _target_spec(self, prepared: Prepared, choice: Any) -> tuple[interpret.TargetFn, str, str, Any]:
        """(target, what it is in full, its short name for sentences, the class's log-probability
        target over the same region for segmentation, else None)."""
        task = self.config.task
        if task == "translation":
            if choice not in TRANSLATION_TARGETS:
                raise InputError(f"Pick what to explain: one of {list(TRANSLATION_TARGETS)}.")
            target_name = self.config.target.name if self.config.target is not None else "output"
            return (interpret.image_mean_target(TRANSLATION_TARGETS[choice]), f"the {choice} of the predicted {target_name}",
                    f"the {choice}", None)
        names = list(self.config.class_names)
        if choice not in names:
            raise InputError(f"Pick a {'genre' if task == 'genre' else 'class'} from the list (got {choice!r}).")
        index = names.index(choice)
        if task == "genre":
            return interpret.logit_target(index), f"the logit of genre {choice}", f"the {choice} logit", None
        with torch.no_grad():
            region = self.predict(prepared).output.argmax(dim=1) == index
        where = "its predicted region" if bool(region.any()) else "the whole image (it is predicted nowhere)"
        return (interpret.class_region_target(index, region), f"the mean logit of class {choice} over {where}",
                f"the {choice} logit", interpret.class_region_target(index, region, score="log_prob"))

    def target(self, prepared: Prepared, choice: Any) -> tuple[interpret.TargetFn, str]:
        target, described, _, _ = self._target_spec(prepared, choice)
        return target, described

    def contributions(self, a_in: Any, b_in: Any, choice: Any, steps: Any, progress: ProgressFn = _no_progress) -> tuple:
        """(contribution bars, IG maps, likelihood bars, summary markdown)."""
        prepared = self.prepare(a_in, b_in)
        asked = n_steps = int(ranges.IG_STEPS.check(steps))
        target, described, subject, log_prob_target = self._target_spec(prepared, choice)
        a, b = self.inputs(prepared)
        labels = list(self.labels())
        progress(0.05, "Shapley values and ablation (a few forward passes)")
        contrib = interpret.modality_contributions(self.model, a, b, target)
        by_log_prob = (interpret.exact_shapley(interpret.coalition_values(self.model, a, b, [log_prob_target])[0])
                       if log_prob_target else None)
        progress(0.25, f"Integrated Gradients ({n_steps} steps)")
        ig = interpret.integrated_gradients(self.model, a, b, target, n_steps=n_steps, internal_batch_size=IG_BATCH)
        most = int(ranges.IG_STEPS.maximum)
        while not bool(ig.converged()[0]) and n_steps < most:  # more steps, up to the slider's end
            n_steps = min(2 * n_steps, most)
            progress(0.5, f"Integrated Gradients had not converged: {n_steps} steps")
            ig = interpret.integrated_gradients(self.model, a, b, target, n_steps=n_steps, internal_batch_size=IG_BATCH)
        progress(0.85, "exact log-likelihood with each modality removed")
        lc = interpret.likelihood_change(self.model, a, b)

        shap, ablation, ig_totals = contrib.shapley[0].tolist(), contrib.ablation[0].tolist(), ig.totals[0].tolist()
        delta, change = float(ig.delta[0]), float(ig.change[0])
        ig_ok = bool(ig.converged()[0])
        co = {k: float(v[0]) for k, v in contrib.coalitions.items()}
        series = [("Shapley value (exact, 2 players)", shap, "#2563eb"),
                  ("ablation: f(both) − f(without it)", ablation, "#f59e0b")]
        if ig_ok:
            series.append(("Integrated Gradients total", ig_totals, "#10b981"))
        bars = plots.bar_figure(
            labels, series, f"What each modality adds to {described}",
            "change in the target (positive: raises it, negative: lowers it)",
            subtitle=(f"f(both) = {co['both']:.3f} · f(none) = {co['none']:.3f} · f({labels[0]}\u00a0only) = {co['a']:.3f}"
                      f" · f({labels[1]}\u00a0only) = {co['b']:.3f}"  # no break inside "f(… only)" on a phone
                      + ("" if ig_ok else " · Integrated Gradients left out: not converged")),
        )
        ig_fig = self._ig_figure(prepared, ig, n_steps) if ig_ok else plots.empty_figure(
            f"Integrated Gradients did not converge at {n_steps} steps: convergence delta {delta:+.1e},<br>"
            f"{_percent(delta, change)} of the change it explains (limit {interpret.IG_TOLERANCE:.0%}). "
            "The map is not drawn.", height=200)

        bpd = {k: float(v[0]) for k, v in lc.bits_per_dim.items()}
        d_bpd = [float(lc.delta_bits_per_dim("a")[0]), float(lc.delta_bits_per_dim("b")[0])]
        ll_fig = plots.bar_figure(
            [f"{labels[0]} removed", f"{labels[1]} removed"], [("Δ bits/dim", d_bpd, "#7c3aed")],
            "How the exact likelihood of the fused features changes when a modality is removed",
            "Δ bits/dim (positive: less likely without it; negative: more likely)", height=260,
            subtitle=(f"as given: {bpd['both']:.4f} bits/dim · {labels[0]} removed: {bpd['without_a']:.4f} · "
                      f"{labels[1]} removed: {bpd['without_b']:.4f}"
                      + (" · why bits/dim can be negative: see the summary" if min(bpd.values()) < 0 else "")),
        )

        removed = "; ".join(f"{label} → {wording.removed_as(m.name, m.mean, self.depth_max)}" for label, m in
                            zip(labels, (self.config.modality("a"), self.config.modality("b"))))
        lines = [
            f"**Target:** {described}. **Removing** a modality here puts in its place: {removed}.",
            "",
            f"- **Shapley values:** {wording.effects(labels, shap, subject)} {wording.share(labels, shap)} "
            f"Together they add up exactly to f(both) − f(none) = {co['both'] - co['none']:+.3f}.",
        ]
        if by_log_prob is not None:
            lines.append(
                f"- **The same on the class's log-probability** (evidence for {choice} against the other classes): "
                f"{wording.effects(labels, by_log_prob[0].tolist(), 'it')}")
        lines.append(f"- **Ablation** (each modality added last): {wording.effects(labels, ablation, subject)}")
        if ig_ok:
            raised = f", raised from {asked} to converge" if n_steps > asked else ""
            lines.append(f"- **Integrated Gradients** ({n_steps} steps{raised}, on the encoder tokens): "
                         f"{wording.effects(labels, ig_totals, subject)} Convergence delta {delta:+.1e}, "
                         f"{_percent(delta, change)} of the change: within the {interpret.IG_TOLERANCE:.0%} limit "
                         "(a check of both totals' sum, not of each).")
            tokens = np.concatenate([ig.maps[key][0].numpy().reshape(-1) for key in ("a", "b")])
            pad, label = self.padding(prepared.words), lambda t: self.token_label(t, prepared.words)  # noqa: E731
            lines.append(f"  Raised most by {_strongest(tokens, label, pad, number='+.2g')}; lowered most by "
                         f"{_strongest(-tokens, label, pad, number='+.2g', shown=tokens)} (the map's tokens, in words).")
        else:
            advice = f"tried {asked} to {n_steps} steps" if n_steps > asked else "the largest step count"
            lines.append(f"- **Integrated Gradients** ({n_steps} steps): **not converged**, the completeness error "
                         f"{delta:+.1e} is {_percent(delta, change)} of the change {change:+.3g} "
                         f"(limit {interpret.IG_TOLERANCE:.0%}); no totals or map are shown ({advice}).")
        lines.append(f"- **Likelihood:** {bpd['both']:.3f} bits/dim as given. "
                     + " ".join(wording.likelihood(labels[k], d_bpd[k]) for k in (0, 1)))
        if min(bpd.values()) < 0:  # the chart's subtitle lists all three
            lines.append(f"  <small>{wording.NEGATIVE_BITS}</small>")
        caveat = self._class_caveat(choice)
        if caveat:
            lines.append(f"\n{caveat}")
        progress(1.0, "done")
        return bars, ig_fig, ll_fig, "\n".join(lines)

    def _ig_figure(self, prepared: Prepared, ig: interpret.IntegratedGradientsResult, n_steps: int) -> Any:
        maps = []
        for key, panel in zip(("a", "b"), prepared.panels):
            values = ig.maps[key][0].numpy()
            maps.append(values[: len(panel.words or [])] if panel.is_text else values)
        delta, change = float(ig.delta[0]), float(ig.change[0])
        return plots.signed_maps_figure(
            prepared.panels, maps,
            f"Integrated Gradients per token, {n_steps} steps · convergence delta {delta:+.1e} "
            f"({_percent(delta, change)} of the change)<br>red raises, blue lowers the target · each modality on its "
            "own colour scale (totals: the bars above)",
            "attribution")

    def _class_caveat(self, choice: Any) -> str:
        """Beside a segmentation explanation: a warning when the model often misses the class (test IoU
        below 0.5), and for a known-answer class what the answer is and how often Shapley gets it."""
        if self.config.task != "segmentation" or not self.loaded.trained:
            return ""
        notes = []
        revealing = known_answers.revealing_key(str(choice), self.names)
        if revealing is not None:
            name = self.labels()["ab".index(revealing)]
            noun = "camouflaged object" if choice == "camouflaged" else str(choice)
            note = f"Known answer: only **{name}** can reveal a {noun}."
            rate = trust.shapley_rate(self.trust_benchmark, str(choice)) if self.trust_benchmark else None
            if rate is not None:
                note += f" On unseen scenes, the Shapley values credit {name} for {rate:.0f}% of them (class logit)."
            notes.append(note)
        iou = trust.class_iou(self.config.metadata, list(self.config.class_names)).get(str(choice))
        if iou is not None and iou < trust.LOW_IOU:
            notes.append(f"⚠️ The model's test IoU for **{choice}** is {iou:.2f}: it often does not see this class, so "
                         "this explains a poor detector, not how the class is recognised.")
        return "\n\n".join(notes)

    @functools.cached_property
    def trust_benchmark(self) -> trust.Benchmark | None:
        """The bundled known-answer benchmark, if it was measured on this checkpoint's weights."""
        benchmark = trust.load_benchmark()
        measured_on = benchmark.run.get("checkpoint_sha256")
        if benchmark.summary is None or not measured_on or measured_on != trust.checkpoint_weights(self.loaded):
            return None
        return benchmark

    # ------------------------------------------------------------------- known-answer example
    def known_answer(self, choice: Any) -> tuple[np.ndarray, str]:
        """Explain one object whose revealing modality is known (a bundled SynthRooms scene and its
        labels): the scene with the object outlined, and each method's verdict in words."""
        if self.config.task != "segmentation":
            raise InputError("Known answers exist for the segmentation model only.")
        scene_name, class_name = trust.KNOWN_ANSWER_CHOICES.get(choice, (None, None))
        scene = next((s for s in example_files.scenes() if s.folder.name == scene_name), None)
        if scene is None:
            raise InputError(f"Pick one of {list(trust.KNOWN_ANSWER_CHOICES)} (the example scenes must be bundled).")
        names = self.names
        prepared = self.prepare(scene.file(names[0]), scene.file(names[1]))
        a, b = self.inputs(prepared)
        size = self.config.image_size
        labels = torch.from_numpy(np.asarray(Image.open(scene.file("labels")), dtype=np.int64))
        labels = F.interpolate(labels[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
        objects = [o for o in known_answers.known_objects(labels, self.config.class_names, names,
                                                           max(1, self.config.patch_size**2 // 4)) if o.class_name == class_name]
        if not objects:
            raise InputError(f"The example scene holds no {class_name} this model can be checked on.")
        obj = objects[0]  # the largest
        check, by_log_prob = (known_answers.check_objects(self.model, a, b, [obj], score=s)[0] for s in ("logit", "log_prob"))
        shown = list(self.labels())
        revealing, other = shown["ab".index(obj.revealing)], shown[1 - "ab".index(obj.revealing)]
        noun = f"{obj.class_name} object" if obj.kind == "camouflaged" else obj.class_name
        why = "is absent from the colour image" if obj.kind == "camouflaged" else "is flat: its geometry is the surface's under it"
        lines = [
            f"**Known answer:** this {noun} {why}, so only **{revealing}** can reveal it; an explanation that credits "
            f"{other} is wrong. Target: the mean {obj.class_name} logit over the object's true region ({obj.pixels} pixels), "
            "outlined in red: its largest piece where it is the nearest surface, so the outline stops where something "
            "stands in front of it (a camouflaged object too, which only the depth shows).",
            "",
        ]
        for method in known_answers.METHODS:
            if method not in check.values:
                continue
            values = list(check.values[method])
            mark = "✓" if check.right[method] else "✗"
            if method == "rollout":
                even = abs(values[0] - 0.5) < 0.05
                mark = "≈" if even else mark
                text = (f"{values[0]:.1%} of the object's tokens' absolute rollout weight is on {shown[0]}'s tokens, "
                        f"{values[1]:.1%} on {shown[1]}'s (a signed map: not shares of content)"
                        + (": nearly even, it prefers neither." if even else "."))
            elif method == "integrated_gradients" and not check.ig_converged:
                text = f"not converged at {check.ig_steps} steps; not an explanation."
            else:
                text = wording.effects(shown, values, f"the {obj.class_name} logit")
            lines.append(f"- {mark} **{known_answers.METHOD_LABELS[method]}:** {text}")
        lp_right = by_log_prob.right["shapley"]
        lines.append(f"- {'✓' if lp_right else '✗'} **Shapley values on its log-probability** (evidence for "
                     f"{obj.class_name} against the other classes): "
                     f"{wording.effects(shown, list(by_log_prob.values['shapley']), 'it')}")
        if lp_right and not check.right["shapley"]:
            lines.append(f"\nThe two targets disagree: {other} raises the {obj.class_name} logit more than {revealing} does, "
                         f"but the {obj.class_name}'s log-probability, its score against the other classes, rises more with "
                         f"{revealing}. A logit can rise for several classes at once; the log-probability counts only what "
                         "favours this one. Which number is explained matters.")
        iou = trust.class_iou(self.config.metadata, list(self.config.class_names)).get(obj.class_name)
        seen = f"The model labels {check.recall:.0%} of the object's pixels as {obj.class_name}"
        lines.append("\n" + seen + (f" (test IoU of the class: {iou:.2f})." if iou is not None else "."))
        if check.recall < known_answers.DETECTED_RECALL or (iou is not None and iou < trust.LOW_IOU):
            lines.append("⚠️ The model hardly sees this object, so no explanation of it can be right.")
        return self._outlined(prepared, obj.region.numpy()), "\n".join(lines)

    def _outlined(self, prepared: Prepared, region: np.ndarray) -> np.ndarray:
        """Both image panels side by side with the region's outline in red."""
        from scipy import ndimage

        mask = plots.resize_image((region * 255).astype(np.uint8), DISPLAY, nearest=True) > 0
        edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
        panels = []
        for panel in prepared.panels:
            image = np.array(plots.resize_image(panel.image, DISPLAY), copy=True)
            image[edge] = (220, 38, 38)
            panels.append(image)
        gap = np.full((DISPLAY, 12, 3), 255, dtype=np.uint8)
        return np.concatenate([panels[0], gap, panels[1]], axis=1)

    # ------------------------------------------------------------------------------- sampling
    def _predicted_picture(self, output: torch.Tensor, decoded: dict[str, torch.Tensor], k: int) -> tuple[np.ndarray, str] | None:
        """The head's prediction for sample k as a picture and its label; None for genres, which are words."""
        task = self.config.task
        if task == "segmentation":
            labels = output[k].argmax(dim=0).numpy()
            base = plots.modality_image(decoded[self.names[0]][k].numpy(), self.names[0])
            return plots.blend(base, plots.label_colours(labels), 0.6), "predicted classes"
        if task == "translation":
            target = self.config.target.name if self.config.target is not None else "rgb"
            return plots.modality_image(output[k].numpy(), target), f"predicted {target}"
        return None

    def _top_genres(self, output: torch.Tensor, k: int, top: int = 2) -> list[str]:
        """Sample k's most probable genres, each with its probability ("Drama 53%")."""
        probs = torch.sigmoid(output[k])
        return [f"{self.config.class_names[i]} {probs[i]:.0%}" for i in torch.argsort(probs, descending=True)[:top].tolist()]

    def _strip(self, result: dict[str, Any], titles: list[str], by_column: bool = False) -> np.ndarray:
        """One row per example (modalities, then the prediction), or with ``by_column`` one column
        per example (for an interpolation, read left to right; on a phone, where six columns would be
        thumbnails, it reads top to bottom like the samples)."""
        by_column = by_column and not plots.on_phone()
        n = result["features"].shape[0]
        image_names = [name for key, name in zip(("a", "b"), self.names) if key != self.text_key]
        cells: list[list[tuple[np.ndarray, str]]] = []  # (picture, what it is) per example
        genres: list[list[str]] = []  # per example, when the prediction is words rather than a picture
        for k in range(n):
            row = [(plots.modality_image(result[name][k].numpy(), name), _modality_label(name)) for name in image_names]
            predicted = self._predicted_picture(result["output"], result, k)
            if predicted is not None:
                row.append(predicted)
            else:
                genres.append(self._top_genres(result["output"], k))
            cells.append(row)

        def caption(k: int, j: int) -> str:  # the genres come from both inputs, so they follow the last picture
            label = cells[k][j][1]
            return f"{label} · predicted: {', '.join(genres[k])}" if genres and j == len(cells[k]) - 1 else label

        per = len(cells[0])
        if by_column:
            images, captions = [], []
            for j in range(per):
                for k in range(n):
                    images.append(cells[k][j][0])
                    if j == 0:  # the top row names the step (and, for genres, the top one)
                        captions.append(f"{titles[k]} · {genres[k][0]}" if genres else titles[k])
                    else:
                        captions.append(caption(k, j))
            row_titles = [label for _, label in cells[0]]
            return plots.image_strip(images, captions, row_titles, cols=n, size=128, legend=self._class_legend(result))
        return plots.image_strip([cells[k][j][0] for k in range(n) for j in range(per)],
                                 [caption(k, j) for k in range(n) for j in range(per)], titles, cols=per, size=160,
                                 legend=self._class_legend(result))

    def _class_legend(self, result: dict[str, Any]) -> list[tuple[str, str]]:
        """The colours of the classes in a strip's predicted maps, named (none for other tasks)."""
        if self.config.task != "segmentation":
            return []
        present = np.unique(result["output"].argmax(dim=1).numpy())
        return [(self.config.class_names[int(i)], plots.class_colour(int(i))) for i in present]

    @property
    def recommended_temperature(self) -> float | None:
        """The temperature `python -m mango.bench density` recommends for this checkpoint (its flow
        samples came closest to real validation images), stored as metadata.sampling.temperature; None when
        the checkpoint has none or one outside the slider's range."""
        recommended = (self.config.metadata.get("sampling") or {}).get("temperature")
        try:
            return None if recommended is None else float(ranges.TEMPERATURE.check(recommended))
        except InputError:
            log.warning("ignoring the checkpoint's sampling temperature %r: not %s", recommended,
                        ranges.TEMPERATURE.describe())
            return None

    @property
    def default_temperature(self) -> float:
        """Where the temperature slider starts: the recommended temperature, else the slider's default."""
        recommended = self.recommended_temperature
        return float(ranges.TEMPERATURE.default) if recommended is None else recommended

    def typical_bits(self) -> TypicalBits | None:
        """The test set's bits/dim as the checkpoint records them (None when it records none)."""
        metrics = self.config.metadata.get("test_metrics") or {}
        mean = metrics.get("bits_per_dim")
        if not isinstance(mean, (int, float)):
            return None
        spread = [metrics.get(f"bits_per_dim_p{q}") for q in (5, 50, 95)]
        count = metrics.get("samples")
        noun = "films" if self.config.task == "genre" else "scenes"
        if all(isinstance(v, (int, float)) for v in spread):
            return TypicalBits(float(mean), count, noun, *(float(v) for v in spread))
        return TypicalBits(float(mean), count, noun)

    def _row_predictions(self, output: torch.Tensor) -> list[str]:
        """What each row of a strip predicts, in words: the strip draws it (class colours, captions in the
        picture), which a screen reader cannot read. Nothing for translation, whose prediction is a picture."""
        if self.config.task == "segmentation":
            names = self.config.class_names
            return ["predicted " + ", ".join(f"{names[c]} {percent(share)}%" for c, share in
                                             class_shares(output[k].argmax(dim=0).numpy(), len(names))[:3])
                    for k in range(output.shape[0])]
        if self.config.task == "genre":
            return ["predicted " + ", ".join(self._top_genres(output, k, top=3)) for k in range(output.shape[0])]
        return []

    @torch.no_grad()
    def _readout(self, features: torch.Tensor, titles: list[str], drawn: bool = False,
                 output: torch.Tensor | None = None) -> str:
        """Bits/dim of each row beside the test range (and, given the head's ``output``, what the row predicts),
        the round-trip error and the smallest diagonal. ``drawn``: every row is a sample from the prior (no
        input among them), which the note on rows that all lie above the range is about."""
        out = self.model.forward_features(features)
        # from this input, not the layers' last-call record: another request may have run since
        diagonals = [row["min_diagonal"] for row in self.model.flow.mixing_report(features)]
        error = self.model.flow.roundtrip_error(features)
        typical = self.typical_bits()
        bits = out.bits_per_dim.tolist()
        predictions = self._row_predictions(output) if output is not None else []
        lines = [f"- {t}: {v:.3f}" + (f", {typical.verdict(v)}" if typical and typical.has_range else "")
                 + (f"; {predictions[k]}" if predictions else "") for k, (t, v) in enumerate(zip(titles, bits))]
        shown = bits + ([v for v in (typical.mean, typical.p5) if v is not None] if typical else [])
        negative = min(shown) < 0  # a negative number on screen: say why it can be
        all_above = drawn and typical is not None and typical.has_range and all(v > typical.p95 for v in bits)
        return ("**Exact likelihood** in bits/dim of the fused features (fewer bits: more likely):\n\n"
                + "\n".join(lines) + "\n\n"
                + (typical.sentence() + "  \n" if typical else "")
                + (f"{wording.ALL_LESS_LIKELY.format(noun=typical.noun)}  \n" if all_above else "")
                + (f"<small>{wording.NEGATIVE_BITS}</small>  \n" if negative else "")
                + f"**Round-trip error** max |F − G⁻¹(G(F))| = {error:.1e} (float32)"
                + (f"; smallest attention diagonal A<sub>ii</sub> = {min(diagonals):.3f} (the triangular solve of the "
                   "inverse divides by it)." if diagonals else " (a flow without ICA layers: no attention)."))

    def _temperature_note(self, temperature: float) -> str:
        recommended = self.recommended_temperature
        if recommended is None or not math.isclose(temperature, recommended):
            return ""
        return (f" τ = {temperature:g} is this checkpoint's recommended temperature: at it, decoded samples came "
                f"closest to real images (KID against {texts.validation_inputs(self.config.metadata)}).")

    def _text_note(self) -> str:
        if self.text_key is None:
            return ""
        return (f"  \n*The {_modality_label(self.config.modality(self.text_key).name)} has no decoder (text is not "
                "generated); its latent tokens still shape the prediction shown.*")

    def sample(self, temperature: Any, seed: Any, n: Any, progress: ProgressFn = _no_progress) -> tuple[np.ndarray, str]:
        temperature, seed, n = _sampling_args(temperature, seed, n)
        progress(0.1, f"drawing {n} latents and inverting the flow")
        generator = torch.Generator().manual_seed(seed)
        result = self.model.sample(n, temperature=temperature, generator=generator)
        titles = [f"sample {k + 1}" for k in range(n)]
        strip = self._strip(result, titles)
        readout = self._readout(result["features"], titles, drawn=True, output=result["output"]) + self._text_note()
        return strip, (f"Z ~ N(0, {temperature:g}² I), seed {seed}, F = G⁻¹(Z), each modality decoded."
                       f"{self._temperature_note(temperature)}  \n" + readout)

    def resample(self, a_in: Any, b_in: Any, keep: Any, temperature: Any, seed: Any, n: Any,
                 progress: ProgressFn = _no_progress) -> tuple[np.ndarray, str]:
        prepared = self.prepare(a_in, b_in)
        labels = self.labels()
        if keep not in labels:
            raise InputError(f"Choose which modality to keep: one of {list(labels)}.")
        temperature, seed, n = _sampling_args(temperature, seed, n)
        resampled = labels[1] if keep == labels[0] else labels[0]
        key = "b" if keep == labels[0] else "a"
        progress(0.1, f"encoding, redrawing the {resampled} latent tokens, inverting")
        a, b = self.inputs(prepared)
        a_n = a.expand(n, -1, -1, -1) if isinstance(a, torch.Tensor) else a * n
        b_n = b.expand(n, -1, -1, -1) if isinstance(b, torch.Tensor) else b * n
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            features, pad_mask = self.model.encode_with_pad_mask(a, b)
            original = self.model.flow.inverse(self.model.flow(features)[0])[0]
            original_result = {"features": original, **self.model.decode(original),
                               "output": self.model.head_output(self.model.flow(original)[0], pad_mask)}
            result = self.model.resample_modality(a_n, b_n, key, temperature=temperature, generator=generator)
        merged = {k: torch.cat([original_result[k], result[k]]) for k in ("features", "output", *self.model.decode(original).keys())}
        titles = ["input"] + [f"sample {k + 1}" for k in range(n)]
        strip = self._strip(merged, titles)
        readout = self._readout(merged["features"], titles, output=merged["output"]) + self._text_note()
        t = self.t
        kept_span, redrawn_span = (slice(0, t), slice(t, 2 * t)) if key == "b" else (slice(t, 2 * t), slice(0, t))
        counted = torch.ones(2 * t, dtype=torch.bool)  # a plot's pad positions (after ⟨end⟩) are not the plot
        if pad_mask is not None and self.text_key is not None:
            counted[slice(t, 2 * t) if self.text_key == "b" else slice(0, t)] = ~pad_mask[0].bool()
        kept_moved, redrawn_moved = (_relative_change(result["features"][:, span], features[:, span], counted[span])
                                     for span in (kept_span, redrawn_span))
        far = (" Above 100 %, a modality's features moved by more than their own size." if max(kept_moved, redrawn_moved) > 1
               else "")
        return strip, (f"Kept the {keep} latent tokens, redrew the {resampled} ones at temperature {temperature:g} "
                       f"(seed {seed}); first row: the input through G⁻¹(G(F)) and the decoders.  \n"
                       f"**How far the features moved** (‖F − F<sub>input</sub>‖ / ‖F<sub>input</sub>‖, mean of the "
                       f"samples): {keep} **{kept_moved:.0%}**, {resampled} {redrawn_moved:.0%}. The kept "
                       f"modality moves too: every flow layer mixes the two, so keeping its latent tokens does not keep "
                       f"its features. This is not a sample of {resampled} given the {keep} as it is.{far}  \n"
                       + self._decoded_change(merged, keep, resampled) + readout)

    def _decoded_change(self, merged: dict[str, Any], keep: str, resampled: str) -> str:
        """How much the decoded pictures changed against the input row: the features' move alone would
        suggest pictures that the decoders, trained to reconstruct real features only, may not draw (a
        kept shade whose features moved 89 % decoded with 4 % of its pixel range changed)."""
        parts = []
        names = dict(zip(self.labels(), self.names))
        for label in (keep, resampled):
            if names[label] in merged:  # text has no decoder (`_text_note` says so)
                decoded = merged[names[label]].clamp(0, 1)
                parts.append(f"{label} {float((decoded[1:] - decoded[:1]).abs().mean()):.1%}")
        return ("**What the decoders drew** (mean absolute change of each decoded pixel against the input row, as a "
                f"share of the 0–1 range): {', '.join(parts)}. Features and pictures need not move together: the "
                "decoders only learnt to reconstruct real inputs' features.  \n")

    def interpolate(self, a_in: Any, b_in: Any, a2_in: Any, b2_in: Any, steps: Any,
                    progress: ProgressFn = _no_progress, second_name: str = "the chosen example") -> tuple[np.ndarray, str]:
        first = self.prepare(a_in, b_in)
        second = self.prepare(a2_in, b2_in)
        steps = int(ranges.INTERPOLATION_STEPS.check(steps))
        progress(0.1, f"walking {steps} steps between the two latents")
        result = self.model.interpolate(self.inputs(first), self.inputs(second), steps=steps)
        titles = [f"t = {float(t):.2f}" for t in result["t"]]
        strip = self._strip(result, titles, by_column=True)
        readout = self._readout(result["features"], titles, output=result["output"]) + self._text_note()
        return strip, (f"Z(t) = (1 − t)·Z(first) + t·Z(second), from the current input (t = 0) to {second_name} "
                       "(t = 1), inverted and decoded at each step. The ends are exact in Z and in the features, but "
                       "drawn by the decoders, which are lossy: t = 0 is the decoders' picture of the input, not the "
                       "upload itself.  \n" + readout)


# ------------------------------------------------------------------------------- helpers
def _picker_size() -> int:
    """The side of each picker panel: on a phone, stacked, as wide as the screen allows (40 px patches)."""
    return plots.PHONE_PICKER if plots.on_phone() else DISPLAY


def _relative_change(moved: torch.Tensor, original: torch.Tensor, tokens: torch.Tensor | None = None) -> float:
    """Mean over the batch of ‖moved − original‖ / ‖original‖ (original: one example, broadcast), over
    the (B, T, D) tokens ``tokens`` selects (default all)."""
    if tokens is not None:
        moved, original = moved[:, tokens], original[:, tokens]
    moved, original = moved.flatten(1), original.flatten(1)
    return float(((moved - original).norm(dim=1) / original.norm(dim=1).clamp_min(1e-12)).mean())


@dataclass(frozen=True)
class TypicalBits:
    """What bits/dim the test set's inputs get: the mean, and when recorded the 5th–95th percentiles."""

    mean: float
    count: int | None
    noun: str  # "scenes" or "films"
    p5: float | None = None
    p50: float | None = None
    p95: float | None = None

    @property
    def has_range(self) -> bool:
        return self.p5 is not None and self.p95 is not None

    def verdict(self, bits: float) -> str:
        """Where one value falls: inside the typical range, or beyond it on which side."""
        assert self.p5 is not None and self.p95 is not None
        if bits > self.p95:
            return f"**less likely** than 95 % of test {self.noun}"
        if bits < self.p5:
            return f"**more likely** than 95 % of test {self.noun}"
        return f"typical (like the middle 90 % of test {self.noun})"

    def sentence(self) -> str:
        where = f"the {self.count} test {self.noun}" if self.count else f"the test {self.noun}"
        if self.has_range:
            return (f"**Typical:** 90 % of {where} lie between {self.p5:.3f} and {self.p95:.3f} bits/dim "
                    f"(median {self.p50:.3f}).")
        return (f"**Typical:** {where} average {self.mean:.3f} bits/dim (this checkpoint does not record "
                "their spread).")


def class_shares(labels: np.ndarray, n_classes: int) -> list[tuple[int, float]]:
    """(class, share of pixels) for each predicted class, largest first, counted on the model's own labels:
    the one count behind the class table, the overlay's legend and the "Explain" list."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=n_classes)
    return [(int(k), float(counts[k] / counts.sum())) for k in np.argsort(-counts, kind="stable") if counts[k] > 0]


def percent(share: float, decimals: int = 0) -> str:
    """A share as a percentage number ("43", "43.2"); one that is there never reads 0 ("<1"), and one
    short of all never reads 100 (">99")."""
    text = f"{100.0 * share:.{decimals}f}"
    step = 10.0 ** -decimals
    if share > 0 and float(text) == 0:
        return f"<{step:g}"
    if share < 1 and float(text) == 100:
        return f">{100 - step:g}"
    return text


def _share_percent(share: float) -> str:
    value = 100.0 * share
    if value < 0.1:
        return "under 0.1 %"
    if value > 99.9 and value < 100.0:
        return "over 99.9 %"
    return f"{value:.1f} %" if value < 10 or value > 90 else f"{value:.0f} %"


def _mixing_verdict(share: float) -> str:
    return ("barely mixes (close to the identity)" if share < 0.01 else
            "mixes a little" if share < 0.10 else "mixes moderately" if share < 0.30 else "mixes strongly")


def mixing_sentence(share: float) -> str:
    """One sentence on how much an ICA layer mixes, from its off-diagonal share
    (`AttentionMap.off_diagonal_share`: 1 − A_ii / Σ_j A_ij, averaged over the rows it updates)."""
    return (f"each token it updates keeps {_share_percent(1.0 - share)} of its own content and takes {_share_percent(share)} "
            f"from other tokens: it {_mixing_verdict(share)}.")


_VALUE_AFFINE = ("These shares count the value path **A** only. This model's ICA layers also scale and shift each "
                 "token they update by the tokens of the other half that ")
VALUE_AFFINE_NOTE = (
    _VALUE_AFFINE + "the same attention selects: where a layer's attention stays on its "
    "diagonal, that is the token paired with it (in an MMCA layer, the other modality's token at the same position). "
    "Such a layer still fuses the two halves, position by position, without mixing positions.")
# With S over earlier tokens only the scale and shift never read the paired token: A's diagonal, drawn at
# 1 − α, is the gate's, and S has none (but in row 0, where S can only weigh the token itself).
VALUE_AFFINE_NOTE_CAUSAL = (
    _VALUE_AFFINE + "the comparison weights S select. S covers earlier tokens only "
    "(the diagonal drawn in **A**, 1 − α, is the gate's share, not S's), so the scale and shift read the tokens "
    "before the paired one, never the paired token itself (in an MMCA layer, the other modality's earlier "
    "positions), except at the first position, which has none before it and reads its own pair. They fuse the "
    "halves beyond what the shares count.")


def layer_mixing_text(names: Sequence[str], shares: Sequence[float], selected: int | None = None,
                      value_affine: bool = False, exclude_self: bool = False) -> str:
    """Markdown: the selected layer in a full sentence, then one short sentence per ICA layer (on this input),
    and, for layers with a value affine, what the shares leave out."""
    lines = []
    if selected is not None:
        lines.append(f"**This layer ({names[selected]}):** {mixing_sentence(shares[selected])}\n")
    lines.append(f"**Every layer, on this input** (a layer updates half the tokens; the other half passes unchanged; "
                 f"mean {_share_percent(float(np.mean(shares)))} from other tokens):")
    for k, (name, share) in enumerate(zip(names, shares)):
        sentence = f"{name} keeps {_share_percent(1.0 - share)}, takes {_share_percent(share)} from other tokens: {_mixing_verdict(share)}."
        lines.append(f"- **{sentence}**" if k == selected else f"- {sentence}")
    if value_affine:
        lines.append("\n" + (VALUE_AFFINE_NOTE_CAUSAL if exclude_self else VALUE_AFFINE_NOTE))
    return "\n".join(lines)


def _strongest(weights: np.ndarray, label: Callable[[int], str], left_out: np.ndarray, top: int = 3,
               number: str = ".3f", shown: np.ndarray | None = None) -> str:
    """`plots.strongest_tokens` with the tokens named by ``label``, those in ``left_out`` skipped."""
    names = [None if left_out[t] else label(t) for t in range(len(weights))]
    return plots.strongest_tokens(weights, names, top, number, shown)


def predicted_genres(names: Sequence[str], probs: np.ndarray, threshold: float | np.ndarray = 0.5) -> str:
    """The genres above their decision threshold (one for all, or one per genre), most likely first, each
    with its probability."""
    limits = np.broadcast_to(np.asarray(threshold, dtype=float), np.shape(probs))
    chosen = [f"{names[k]} {plots.percent_beside(probs[k], limits[k])}" for k in np.argsort(-probs) if probs[k] > limits[k]]
    if chosen:  # with its probability: the chart's numbers, in words a screen reader reads in order
        return ", ".join(chosen)
    best = int(np.argmax(probs))
    above = f"{100 * limits[0]:g}%" if np.all(limits == limits[0]) else "its threshold"
    return f"none above {above} (most likely: {names[best]}, {plots.percent_beside(probs[best], limits[best])})"


def _identity(value: Any) -> Any:
    """A cache key for an input: file path + size + mtime, or a text's hash."""
    if isinstance(value, str) and value and os.path.isfile(value):
        stat = os.stat(value)
        return ("file", value, stat.st_size, stat.st_mtime_ns)
    if isinstance(value, str):
        return ("text", hashlib.sha1(value.encode("utf-8")).hexdigest())
    return ("other", repr(value)[:200])


def _value_range(modality: str, values: np.ndarray, bits: int, depth_max: float, label: str) -> str:
    """What a single-channel map's values mean, in the units of the training data."""
    lo, hi = float(values.min()), float(values.max())
    if "depth" in modality:  # an 8-bit map's value / 255 is read on the same scale: its metres too
        if modality == "depth":  # millimetres / depth_max
            metres = lo * depth_max, hi * depth_max
        else:  # Taskonomy: log(1 + raw) / 11.1, raw in 1/512 m
            metres = tuple(float(taskonomy_depth_metres(v)) for v in (lo, hi))
        return (f"{label} {metres[0]:.2f}–{metres[1]:.2f} m" + (", 8-bit" if bits == 8 else "")
                + " (dark blue near, yellow far)")
    if modality == "edge_texture":  # as plots.modality_image draws it
        return f"{label} {lo:.2f}–{hi:.2f} of its range (edges drawn dark on white, four times stronger, to be seen)"
    return f"{label} {lo:.2f}–{hi:.2f} of its range"


def _modality_label(name: str) -> str:
    return {"depth_zbuffer": "depth", "edge_texture": "texture", "reshading": "shade"}.get(name, name)


def _notices_md(notices: Sequence[str], loaded: LoadedModel) -> str:
    ordered = sorted(dict.fromkeys(notices), key=lambda n: not n.startswith("⚠️"))  # warnings first (stable)
    lines = [f"- {n}" for n in ordered]
    if not loaded.trained:
        lines.append("- ⚠️ This tab runs an **untrained** model: the prediction is noise until a checkpoint is bundled.")
    return "\n".join(lines) if lines else "Inputs read without changes."


def _percent(delta: float, change: float) -> str:
    """|delta| as a share of |change| ('0.4 %'; 'all' when the change is 0)."""
    if change == 0:
        return "all" if delta else "0%"
    return f"{abs(delta) / abs(change):.1%}"


def _sampling_args(temperature: Any, seed: Any, n: Any) -> tuple[float, int, int]:
    return (float(ranges.TEMPERATURE.check(temperature)), int(ranges.SEED.check(seed)),
            int(ranges.SAMPLES.check(n)))
