"""What each button does: read inputs, run the model and `mango.interpret`, return what the UI shows.

One `Runner` per model slot (segmentation, the two translation settings, genre). Its methods take
plain values (file paths, strings, numbers) and return numpy images, plotly figures, tables and
markdown, so they can be called from tests without a browser. Problems with the input raise
`InputError` (shown to the user as it is); `events.py` turns them into gradio messages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from mango import interpret
from mango.data.transforms import taskonomy_depth_metres
from mango.text_coverage import language, vocabulary_coverage

from . import colours, plots, ranges
from .attention_view import AttentionView
from .checkpoints import LoadedModel
from .contributions_view import TRANSLATION_TARGETS, ContributionsView
from .inputs import InputError, LoadedImage, check_pair_sizes, check_plot, is_missing, load_image, missing_message
from .prepared import DISPLAY, Prepared, class_shares, modality_label, percent
from .sampling_view import SamplingView

log = logging.getLogger("mango.app")
LOW_COVERAGE = 0.6  # below this share of covered words, the prediction on a plot gets a warning
CONFIDENT_LANGUAGE = 0.8  # a plot is called non-English only when py3langid is this sure (short texts are not)
LANGUAGE_NAMES = {"fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
                  "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "pl": "Polish", "cs": "Czech",
                  "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian", "el": "Greek", "ro": "Romanian", "hu": "Hungarian",
                  "id": "Indonesian", "vi": "Vietnamese", "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "ja": "Japanese",
                  "zh": "Chinese", "ko": "Korean", "ca": "Catalan", "la": "Latin"}


@dataclass
class SegmentPrediction:
    """One segmentation, kept for redrawing its overlay: the picture it is drawn on, the model's labels
    enlarged to it, and each predicted class's share of the model's labels (largest first)."""

    base: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) class index per pixel
    shares: list[tuple[int, float]]


class Runner(AttentionView, ContributionsView, SamplingView):
    """A loaded model slot and every view of it: inputs and predictions here, each view tab's methods in its
    own module (`attention_view`, `contributions_view`, `sampling_view`)."""

    # ------------------------------------------------------------------------------ inputs
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

    def labels(self) -> tuple[str, str]:
        return tuple(modality_label(self.config.modality(k).name) for k in ("a", "b"))  # type: ignore[return-value]

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
            label = modality_label(modality.name)
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
            label = modality_label(modality.name)
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
        return {name: colours.class_colour(k) for k, name in enumerate(self.config.class_names)}

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

    # --------------------------------------------------------------------------------- tokens
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


# ------------------------------------------------------------------------------- helpers
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


def _notices_md(notices: Sequence[str], loaded: LoadedModel) -> str:
    ordered = sorted(dict.fromkeys(notices), key=lambda n: not n.startswith("⚠️"))  # warnings first (stable)
    lines = [f"- {n}" for n in ordered]
    if not loaded.trained:
        lines.append("- ⚠️ This tab runs an **untrained** model: the prediction is noise until a checkpoint is bundled.")
    return "\n".join(lines) if lines else "Inputs read without changes."
