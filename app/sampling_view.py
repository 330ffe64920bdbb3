"""The "Latent sampling" tab: samples from the prior, one modality redrawn, and interpolation, all through
the inverse flow and the decoders, each row with its exact likelihood beside the test set's range."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import colours, plots, ranges, texts, wording
from .inputs import InputError
from .prepared import ProgressFn, class_shares, modality_label, no_progress, percent

log = logging.getLogger("mango.app")


class SamplingView:
    """The sampling views of a model slot. Mixed into `app.handlers.Runner`: it reads the slot's
    model, config and token layout (`model`, `config`, `t`, `grid`, `names`, `text_key`) and calls its
    `prepare`, `inputs`, `predict`, `labels`, `token_label` and `padding`."""

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
            row = [(plots.modality_image(result[name][k].numpy(), name), modality_label(name)) for name in image_names]
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
        return [(self.config.class_names[int(i)], colours.class_colour(int(i))) for i in present]

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
        return (f"  \n*The {modality_label(self.config.modality(self.text_key).name)} has no decoder (text is not "
                "generated); its latent tokens still shape the prediction shown.*")

    def sample(self, temperature: Any, seed: Any, n: Any, progress: ProgressFn = no_progress) -> tuple[np.ndarray, str]:
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
                 progress: ProgressFn = no_progress) -> tuple[np.ndarray, str]:
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
                    progress: ProgressFn = no_progress, second_name: str = "the chosen example") -> tuple[np.ndarray, str]:
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


def _sampling_args(temperature: Any, seed: Any, n: Any) -> tuple[float, int, int]:
    return (float(ranges.TEMPERATURE.check(temperature)), int(ranges.SEED.check(seed)),
            int(ranges.SAMPLES.check(n)))
