"""The sampling view's readouts: each sample's bits/dim beside the test set's typical range, and the
temperature the checkpoint recommends (issue 14), with graceful fallbacks on older checkpoints."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch

from app import colours, plots, ranges
from app.checkpoints import TASK_SPECS, LoadedModel
from app.handlers import Runner
from app.sampling_view import TypicalBits
from mango.data.constants import SYNTHROOMS_CLASSES
from mango.models import MangoConfig, MangoModel

TINY = dict(image_size=32, patch_size=8, dim=32, encoder_width=32, encoder_depth=1, decoder_width=32, num_blocks=1,
            head_width=32, class_names=SYNTHROOMS_CLASSES)


@pytest.fixture(scope="module")
def tiny_model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield MangoModel(MangoConfig.preset("tiny", "segmentation", **TINY)).eval()
    torch.set_num_threads(threads)


def runner_with(model: MangoModel, **metadata) -> Runner:
    model = copy.deepcopy(model)
    model.config.metadata.update(metadata)
    return Runner(LoadedModel(TASK_SPECS["segmentation"], model, "bundled", "a tiny test model"))


def sample_bits(readout: str) -> list[float]:
    return [float(v) for v in re.findall(r"- sample \d+: (-?\d+\.\d+)", readout)]


def test_typical_bits_verdicts():
    typical = TypicalBits(mean=0.1, count=600, noun="scenes", p5=-0.3, p50=0.0, p95=0.2)
    assert typical.verdict(0.0).startswith("typical") and typical.verdict(0.2).startswith("typical")
    assert "**less likely** than 95 % of test scenes" == typical.verdict(0.21)
    assert "**more likely** than 95 % of test scenes" == typical.verdict(-0.31)
    assert "between -0.300 and 0.200" in typical.sentence() and "600 test scenes" in typical.sentence()
    assert "average 0.100" in TypicalBits(0.1, None, "films").sentence()


def test_each_sample_is_set_beside_the_test_range(tiny_model):
    plain = runner_with(tiny_model)
    _, readout = plain.sample(0.7, 3, 3)
    bits = sample_bits(readout)
    assert len(bits) == 3 and "Typical" not in readout and "typical" not in readout  # nothing recorded: no claim
    # the same draws, now with a range that holds them and one they all lie above
    holds = {"bits_per_dim": 0.0, "samples": 50, "bits_per_dim_p5": min(bits) - 1, "bits_per_dim_p50": min(bits),
             "bits_per_dim_p95": max(bits) + 1}
    _, readout = runner_with(tiny_model, test_metrics=holds).sample(0.7, 3, 3)
    assert sample_bits(readout) == bits and readout.count("typical (like the middle 90 % of test scenes)") == 3
    assert "90 % of the 50 test scenes lie between" in readout
    below = {**holds, "bits_per_dim_p5": min(bits) - 3, "bits_per_dim_p95": min(bits) - 2}
    _, readout = runner_with(tiny_model, test_metrics=below).sample(0.7, 3, 3)
    assert readout.count("**less likely** than 95 % of test scenes") == 3
    assert "Every sample here is less likely than almost all real test scenes" in readout  # said once, with why
    assert "Every sample here" not in runner_with(tiny_model, test_metrics=holds).sample(0.7, 3, 3)[1]
    _, readout = runner_with(tiny_model, test_metrics={"bits_per_dim": -0.128, "samples": 600}).sample(0.7, 3, 1)
    assert "the 600 test scenes average -0.128 bits/dim" in readout and "less likely" not in readout


def test_resample_and_interpolate_carry_the_same_readouts(tiny_model, scene, other_scene):
    metrics = {"bits_per_dim": 0.0, "samples": 9, "bits_per_dim_p5": -50.0, "bits_per_dim_p50": 0.0,
               "bits_per_dim_p95": 50.0}
    runner = runner_with(tiny_model, test_metrics=metrics)
    rgb, depth = scene.file("rgb"), scene.file("depth")
    strip, readout = runner.resample(rgb, depth, "rgb", 0.7, 0, 2)
    assert re.search(r"- input: -?\d+\.\d+, typical", readout) and len(re.findall(r"- sample \d: .*typical", readout)) == 2
    # how far each modality's features moved, computed here independently
    kept, redrawn = map(int, re.search(r"rgb \*\*(\d+)%\*\*, depth (\d+)%", readout).groups())
    model = runner.model
    prepared = runner.prepare(rgb, depth)
    a, b = runner.inputs(prepared)
    with torch.no_grad():
        features = model.encode_with_pad_mask(a, b)[0]
        result = model.resample_modality(a.expand(2, -1, -1, -1), b.expand(2, -1, -1, -1), "b", temperature=0.7,
                                         generator=torch.Generator().manual_seed(0))
        round_trip = model.decode(model.flow.inverse(model.flow(features)[0])[0])
    moved = result["features"]
    t = model.tokens_per_modality
    change = [float(((moved[:, s] - features[:, s]).flatten(1).norm(dim=1) / features[:, s].flatten(1).norm(dim=1)).mean())
              for s in (slice(0, t), slice(t, 2 * t))]
    assert (kept, redrawn) == (round(100 * change[0]), round(100 * change[1])) and change[0] > 0
    assert "The kept modality moves too" in readout
    # and what the decoders drew of it: the mean pixel change against the input row, per modality
    drawn = re.search(r"What the decoders drew.*?: rgb (\d+\.\d)%, depth (\d+\.\d)%", readout).groups()
    pixels = [float((result[m].clamp(0, 1) - round_trip[m].clamp(0, 1)).abs().mean()) for m in ("rgb", "depth")]
    assert [float(x) for x in drawn] == [round(100 * p, 1) for p in pixels] and pixels[0] > 0
    # rows that all lie above the range: the note about samples is not made where an input is among them
    above = {**metrics, "bits_per_dim_p5": -90.0, "bits_per_dim_p95": -80.0}
    _, readout = runner_with(tiny_model, test_metrics=above).resample(rgb, depth, "rgb", 0.7, 0, 2)
    assert readout.count("**less likely**") == 3 and "Every sample here" not in readout
    _, readout = runner.interpolate(rgb, depth, other_scene.file("rgb"), other_scene.file("depth"), 3)
    assert len(re.findall(r"- t = \d\.\d\d: -?\d+\.\d+, typical", readout)) == 3 and "lie between" in readout


def test_default_temperature_is_the_recommended_one_when_valid(tiny_model):
    assert runner_with(tiny_model).default_temperature == ranges.TEMPERATURE.default
    recommended = runner_with(tiny_model, sampling={"temperature": 0.55})
    assert recommended.default_temperature == 0.55
    _, readout = recommended.sample(0.55, 0, 1)
    assert "τ = 0.55 is this checkpoint's recommended temperature" in readout
    _, readout = recommended.sample(0.9, 0, 1)
    assert "recommended" not in readout
    for bad in (5.0, "hot", None):  # outside the slider, not a number, missing: the slider's default
        runner = runner_with(tiny_model, sampling={"temperature": bad})
        assert runner.default_temperature == ranges.TEMPERATURE.default and runner.recommended_temperature is None


def test_the_smallest_diagonal_is_this_inputs_even_when_another_request_runs_between(tiny_model):
    """The app serves several requests on one model at once: the readout's smallest A_ii must come
    from its own features, not from whichever call the ICA layers saw last."""
    runner = runner_with(tiny_model)
    flow = runner.model.flow
    with torch.no_grad():  # open the gates and sharpen the softmax, so that inputs differ in A_ii
        for name, value in flow.named_parameters():
            if name.endswith(("gate_logit", "log_temperature")):
                value.fill_(5.0 if name.endswith("gate_logit") else 2.0)
    torch.manual_seed(1)
    mine = torch.randn(1, flow.num_tokens, flow.dim)
    other = torch.randn(1, flow.num_tokens, flow.dim) * 4  # another request's features
    alone = runner._readout(mine, ["sample 1"])
    own = min(row["min_diagonal"] for row in flow.mixing_report(mine))
    assert f"A<sub>ii</sub> = {own:.3f}" in alone
    assert min(row["min_diagonal"] for row in flow.mixing_report(other)) < own - 1e-3  # tells them apart

    def interleave(module, args, output):  # the other request runs right after this one's forward
        handle.remove()
        module(other)

    handle = flow.register_forward_hook(interleave)
    assert runner._readout(mine, ["sample 1"]) == alone


def test_negative_bits_in_the_readout_come_with_their_note(tiny_model):
    from app import wording

    _, readout = runner_with(tiny_model).sample(0.7, 3, 2)
    bits = sample_bits(readout)
    assert (wording.NEGATIVE_BITS in readout) == (min(bits) < 0)
    below = {"bits_per_dim": -0.2, "samples": 50, "bits_per_dim_p5": -0.7, "bits_per_dim_p50": -0.2,
             "bits_per_dim_p95": 0.4}
    _, readout = runner_with(tiny_model, test_metrics=below).sample(0.7, 3, 2)
    assert wording.NEGATIVE_BITS in readout  # the typical range shown is negative


def test_predicted_maps_in_a_strip_come_with_their_classes_named(tiny_model):
    runner = runner_with(tiny_model)
    n_classes = tiny_model.config.num_classes
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[0, 0, 0], labels[1, 3, 3] = 2, n_classes - 1  # wall everywhere, one pixel each of two more classes
    output = torch.nn.functional.one_hot(labels, n_classes).permute(0, 3, 1, 2).float()
    legend = runner._class_legend({"output": output})
    names = tiny_model.config.class_names
    assert legend == [(names[k], colours.class_colour(k)) for k in (0, 2, n_classes - 1)]
    # drawn under the grid: the strip grows by the legend's rows
    image = [np.zeros((8, 8, 3), np.uint8)]
    assert plots.image_strip(image, ["x"], legend=legend).shape[0] > plots.image_strip(image, ["x"]).shape[0]


def test_genre_strips_caption_the_genres_from_the_prediction_itself(launched_app, film, monkeypatch):
    """Genres are words, not a picture: each row's poster carries the top two with their probabilities,
    an interpolation's column titles the top one, and each matches the head's own output."""
    runner = launched_app[0].mango_app.runner("genre")
    drawn: list[tuple[list[str], list[str] | None]] = []
    real = plots.image_strip
    monkeypatch.setattr(plots, "image_strip",
                        lambda images, captions, rows_titles=None, **kw: drawn.append((list(captions), rows_titles))
                        or real(images, captions, rows_titles, **kw))
    outputs: list[torch.Tensor] = []
    strip = runner._strip
    monkeypatch.setattr(runner, "_strip", lambda result, *a, **kw: outputs.append(result["output"]) or strip(result, *a, **kw))
    runner.sample(0.7, 3, 2)
    captions, _ = drawn[-1]
    probs = torch.sigmoid(outputs[-1])
    assert len(captions) == 2  # one poster per sample, no picture for the prediction
    for k, caption in enumerate(captions):
        top = torch.argsort(probs[k], descending=True)[:2].tolist()
        names = [runner.config.class_names[i] for i in top]
        assert caption == f"poster · predicted: {names[0]} {probs[k, top[0]]:.0%}, {names[1]} {probs[k, top[1]]:.0%}"
    runner.interpolate(film.poster, film.plot, film.poster, "A detective hunts a killer.", 3)
    captions, rows = drawn[-1]
    probs = torch.sigmoid(outputs[-1])
    assert rows == ["poster"] and len(captions) == 3
    for k, caption in enumerate(captions):
        best = int(probs[k].argmax())
        assert caption.endswith(f" · {runner.config.class_names[best]} {probs[k, best]:.0%}"), caption


def test_an_interpolation_reads_left_to_right_on_a_desktop_and_top_to_bottom_on_a_phone(tiny_model, scene,
                                                                                         other_scene):
    # six steps side by side are thumbnails at a phone's 390 px: there each step takes a row, like the samples
    runner = runner_with(tiny_model)
    rgb, depth = scene.file("rgb"), scene.file("depth")
    desk, _ = runner.interpolate(rgb, depth, other_scene.file("rgb"), other_scene.file("depth"), 6)
    with plots.phone_layout():
        phone, _ = runner.interpolate(rgb, depth, other_scene.file("rgb"), other_scene.file("depth"), 6)
    assert desk.shape[1] > 1.5 * desk.shape[0]  # six columns of three pictures
    assert phone.shape[0] > 1.5 * phone.shape[1]  # six rows of three


def test_the_examples_shrinking_shift_that_the_help_text_states(launched_app):
    # the bundled scenes are drawn at 256 px and shrunk to the model's 128 px; the test scenes that set the
    # typical range were drawn at 128 px. The "What is typical?" text states how far the shrinking alone
    # moves a scene's bits/dim: measured here against the same scenes drawn at 128 px
    import json

    from app import examples, texts
    from mango.data.synthrooms import render_scene, scene_to_sample

    app = launched_app[0].mango_app
    shifts = []
    for key in ("segmentation", "translation-depth-normal", "translation-shade-texture"):
        runner = app.runners[key]
        if not runner.loaded.trained:
            pytest.skip("needs the bundled checkpoints")
        a, b = runner.names
        for scene in examples.scenes():
            meta = json.loads((scene.folder / "meta.json").read_text())
            assert meta["size"] == 256 and runner.config.image_size == 128
            layout = "nyudv2" if key == "segmentation" else "taskonomy"
            native = scene_to_sample(render_scene(meta["seed"], runner.config.image_size), a=a,
                                     b="depth_zbuffer" if b == "depth" else b, target="rgb" if layout == "taskonomy"
                                     else "labels", layout=layout, depth_max=runner.depth_max)
            prepared = runner.prepare(scene.file(a), scene.file(b))
            with torch.no_grad():
                read = float(runner.model(*runner.inputs(prepared)).bits_per_dim[0])
                drawn = float(runner.model(native["a"][None], native["b"][None]).bits_per_dim[0])
            shifts.append(read - drawn)
    stated = f"by {min(shifts):.2f} to +{max(shifts):.2f} on the bundled".replace("-", "−")
    assert stated in " ".join(texts.SAMPLING.split()), (stated, shifts)


def test_the_readout_builds_no_autograd_graph(tiny_model, monkeypatch):
    # a helper placed between `torch.no_grad()` and `_readout` once took its decorator: every readout then
    # kept the flow's whole graph alive for nothing
    runner = runner_with(tiny_model)
    seen = []
    forward = runner.model.forward_features
    monkeypatch.setattr(runner.model, "forward_features",
                        lambda *a, **k: seen.append(torch.is_grad_enabled()) or forward(*a, **k))
    runner.sample(0.7, 0, 2)
    assert seen and not any(seen)


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_the_every_sample_note_needs_every_sample_above_the_range(tiny_model):
    _, readout = runner_with(tiny_model).sample(0.7, 3, 3)
    bits = sorted(sample_bits(readout))
    assert bits[0] < bits[-1]
    some = {"bits_per_dim": 0.0, "samples": 50, "bits_per_dim_p5": bits[0] - 1, "bits_per_dim_p50": bits[0],
            "bits_per_dim_p95": (bits[0] + bits[-1]) / 2}  # the largest lies above, the smallest inside
    _, readout = runner_with(tiny_model, test_metrics=some).sample(0.7, 3, 3)
    assert "**less likely** than 95 % of test scenes" in readout
    assert "Every sample here" not in readout


# -- found unguarded by a sixth mutation audit (each fails on its mutant) ----------------------------------


def test_the_help_text_states_the_slider_s_own_fallback_temperature():
    """The Latent sampling help says where the slider starts without a recommended temperature: it must
    be the slider's default (`ranges.TEMPERATURE`), which `Runner.default_temperature` falls back to."""
    from app import texts

    said = " ".join(texts.SAMPLING.split())
    assert f"when the checkpoint records one; otherwise at {ranges.TEMPERATURE.default:g}." in said
