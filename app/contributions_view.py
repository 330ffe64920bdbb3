"""The "Modality contributions" tab: what each modality adds to a target (exact Shapley values, ablation,
Integrated Gradients, the exact likelihood with a modality removed), and the known-answer check of these
explanations on a bundled scene."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mango import interpret, known_answers

from . import examples as example_files
from . import plots, ranges, trust, wording
from .inputs import InputError
from .prepared import DISPLAY, Prepared, ProgressFn, no_progress, percent, strongest

TRANSLATION_TARGETS = {"mean brightness": None, "red channel": 0, "green channel": 1, "blue channel": 2}
IG_BATCH = 16  # path points per pass: bounds memory whatever the step count


class ContributionsView:
    """The contributions and known-answer views of a model slot. Mixed into `app.handlers.Runner`: it reads the slot's
    model, config and token layout (`model`, `config`, `t`, `grid`, `names`, `text_key`) and calls its
    `prepare`, `inputs`, `predict`, `labels`, `token_label` and `padding`."""

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

    def contributions(self, a_in: Any, b_in: Any, choice: Any, steps: Any, progress: ProgressFn = no_progress) -> tuple:
        """(contribution bars, IG maps, likelihood bars, summary markdown)."""
        prepared = self.prepare(a_in, b_in)
        asked = n_steps = int(ranges.IG_STEPS.check(steps))
        target, described, subject, log_prob_target = self._target_spec(prepared, choice)
        a, b = self.inputs(prepared)
        labels = list(self.labels())
        progress(0.05, "Shapley values and ablation (a few forward passes)")
        contrib = interpret.modality_contributions(self.model, a, b, target)
        blurred = interpret.blurred_shapley(self.model, a, b, target)[0].tolist()
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
        colour = known_answers.METHOD_COLOURS  # as in the known-answer benchmark's figure
        series = [("Shapley value (exact, 2 players)", shap, colour["shapley"]),
                  ("Shapley value, blurred baseline", blurred, colour["blurred_shapley"]),
                  ("ablation: f(both) − f(without it)", ablation, colour["ablation"])]
        if ig_ok:
            series.append(("Integrated Gradients total", ig_totals, colour["integrated_gradients"]))
        bars = plots.bar_figure(
            labels, series, f"What each modality adds to {described}",
            "change in the target (positive: raises it, negative: lowers it)", height=140 + 60 * len(series),  # 320 for 3
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
            *self._starting_point(prepared, choice, shap, subject),
            f"- **Shapley values:** {wording.effects(labels, shap, subject)} {wording.share(labels, shap)} "
            f"Together they add up exactly to f(both) − f(none) = {co['both'] - co['none']:+.3f}.",
        ]
        if by_log_prob is not None:
            lines.append(
                f"- **The same on the class's log-probability** (evidence for {choice} against the other classes): "
                f"{wording.effects(labels, by_log_prob[0].tolist(), 'it')}")
        blur = (f"each image blurred by a Gaussian of σ = {self.config.patch_size} px, one patch of the "
                f"model's {self.config.image_size} px" + ("; the plot still empty" if self.text_key else ""))
        lines.append(f"- **Against a second baseline** ({blur}): {wording.effects(labels, blurred, subject)} "
                     f"{wording.same_split(labels, shap, blurred)}")
        lines.append(f"- **Ablation** (each modality added last): {wording.effects(labels, ablation, subject)}")
        if ig_ok:
            raised = f", raised from {asked} to converge" if n_steps > asked else ""
            lines.append(f"- **Integrated Gradients** ({n_steps} steps{raised}, on the encoder tokens): "
                         f"{wording.effects(labels, ig_totals, subject)} Convergence delta {delta:+.1e}, "
                         f"{_percent(delta, change)} of the change: within the {interpret.IG_TOLERANCE:.0%} limit "
                         "(a check of both totals' sum, not of each).")
            tokens = np.concatenate([ig.maps[key][0].numpy().reshape(-1) for key in ("a", "b")])
            pad, label = self.padding(prepared.words), lambda t: self.token_label(t, prepared.words)  # noqa: E731
            lines.append(f"  Raised most by {strongest(tokens, label, pad, number='+.2g')}; lowered most by "
                         f"{strongest(-tokens, label, pad, number='+.2g', shown=tokens)} (the map's tokens, in words).")
        else:
            advice = f"tried {asked} to {n_steps} steps" if n_steps > asked else "the largest step count"
            lines.append(f"- **Integrated Gradients** ({n_steps} steps): **not converged**, the completeness error "
                         f"{delta:+.1e} is {_percent(delta, change)} of the change {change:+.3g} "
                         f"(limit {interpret.IG_TOLERANCE:.0%}); no totals or map are shown ({advice}).")
        lines.append(f"- **Likelihood:** {bpd['both']:.3f} bits/dim as given. "
                     + wording.likelihood(labels, d_bpd))
        if min(bpd.values()) < 0:  # the chart's subtitle lists all three
            lines.append(f"  <small>{wording.NEGATIVE_BITS}</small>")
        caveat = self._class_caveat(choice)
        if caveat:
            lines.append(f"\n{caveat}")
        progress(1.0, "done")
        return bars, ig_fig, ll_fig, "\n".join(lines)

    def _starting_point(self, prepared: Prepared, choice: Any, shap: list[float], subject: str) -> list[str]:
        """A paragraph when the pair with both modalities removed is itself predicted as the explained class:
        every value is a change from there, so a negative one need not be evidence against the class (the
        mean poster with an empty plot gives the bundled genre model's Drama 92 %). Nothing otherwise."""
        task, names = self.config.task, list(self.config.class_names)
        if task not in ("segmentation", "genre") or choice not in names:
            return []
        index = names.index(choice)
        with torch.no_grad():  # the model itself on the removed pair: what the sentence says it predicts
            removed = self.model(*interpret.modality_baselines(self.model, *self.inputs(prepared))).output
            output = self.predict(prepared).output
        if task == "genre":
            probability, threshold = float(torch.sigmoid(removed[0, index])), float(self.thresholds()[index])
            if probability <= threshold:
                return []
            there = (f"the model gives {choice} {plots.percent_beside(probability, threshold)}, above its "
                     f"{100 * threshold:g}% threshold")
            still = float(torch.sigmoid(output[0, index])) > threshold
        else:
            predicted = output.argmax(dim=1) == index
            region = predicted if bool(predicted.any()) else torch.ones_like(predicted)
            share = float((removed.argmax(dim=1) == index)[region].float().mean())
            if share < 0.5:
                return []
            where = "of its predicted region" if bool(predicted.any()) else "of the image"
            there = f"the model labels {percent(share)}% {where} {choice}"
            still = bool(predicted.any())
        noun = "film" if task == "genre" else "input"
        lines = [f"**The starting point already predicts {choice}:** with both modalities removed, {there}. The "
                 "Shapley values, ablation and Integrated Gradients below are measured from that point (the second "
                 "baseline's values from their own)."]
        if min(shap) < 0:
            lines[0] += (f" A negative one means that modality lowers {subject} from there"
                         + (f", though the model still predicts {choice} for this {noun}." if still else "."))
        return [*lines, ""]

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


def _percent(delta: float, change: float) -> str:
    """|delta| as a share of |change| ('0.4%'; '<0.1%' for a delta too small for one decimal but not 0; 'all'
    when the change is 0)."""
    if change == 0:
        return "all" if delta else "0%"
    return f"{percent(abs(delta) / abs(change), 1)}%"
