"""The Gradio layout and its wiring: tabs, inputs, views, and one named API endpoint per event. The handlers
are `app.events.MangoApp`'s; the page's look and its own script are `app.page`'s.

Endpoints (``api_name``), per task prefix P in {segment, translate, genre}:
  /P                 the prediction
  /P_attention       one ICA layer's attention row, its full matrix and the rollout
  /P_targets         what the contributions view can explain (most relevant first)
  /P_contributions   Shapley values, ablation, Integrated Gradients maps, likelihood change
  /P_sample          samples from the prior through the inverse flow
  /P_resample        keep one modality, redraw the other's latent tokens
  /P_interpolate     walk in Z from the input to a bundled example
and /translate_setting (switch the translation checkpoint), /ablations (reload the table),
/segment_known_answer (explain an object whose revealing modality is known).
Clicks on pictures (/P_pick_patch, /genre_pick_word, each followed by /P_patch_attention or
/genre_word_attention) carry browser click data and are private; so are /segment_overlay (the opacity
slider: it re-blends the last prediction), /translate_clear (a setting switched by hand),
/P_inputs_replaced, /P_a_removed, /segment_b_removed, /translate_b_removed and /genre_plot_edited (an upload,
removal or plot edit by the user clears the
prediction and its views; what still computes, or still waits in the queue, on the old inputs then
changes nothing), /P_example_clicked (an example's files are on their way: a press that left before them
is not told its slots are empty), /P_slots_filled (an example's inputs are what the slots hold), /page_opened (a new
page's slots are empty), /P_new_prediction and
/translate_setting_results (clear the contributions and samples of the last prediction or setting).
/segment_preview and /translate_preview
(single-channel uploads as the model reads them) are undocumented. The attention view recomputes on a
new prediction and on what the user changes (layer, query modality or token, a click), never on a
value the app sets, such as a setting switch's reset of the layer and query: that would run the new
model on the files of the other setting.

The prediction buttons check their inputs before the press is queued (`MangoApp.check_inputs`, gradio's
validator): an empty slot or an unreadable plot is told beside it. Events run in two queue lanes
(LIGHT_EVENTS, HEAVY_EVENTS) so a prediction never waits behind a contribution or a sampling request,
and the clears and previews in lanes that never wait; numeric inputs pass through unchanged and are
checked against `app.ranges` by the handlers, so every error names its parameter.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from . import examples as example_files
from . import gradio_fixes, landing, plots, ranges, resources, texts, trust
from .ablations import load_table
from .checkpoints import LoadedModel, chosen_sources, load_all
from .events import (EMPTY_SHARES, INPUT_LABELS, PREDICT_BUTTONS, SETTINGS, DropdownInput, ImageInput, MangoApp,
                     NumberInput, RadioInput, SliderInput, default_query_token, example_run, user_errors)
from .handlers import Runner
from .inputs import MAX_FILE_BYTES
from .page import CSS, FIGURE, HEAD, READOUT, TAB_SLOTS, theme

# The queue runs two kinds of events in separate lanes, so a light view never waits behind a heavy
# one: predictions and attention views (~0.1 s each) two at a time; contributions and
# latent sampling (~1 s, and the most memory) one at a time by default (MANGO_HEAVY_CONCURRENCY).
# Up to 64 requests wait in all.
LIGHT_EVENTS = dict(concurrency_id="light", concurrency_limit=resources.env_count("MANGO_LIGHT_CONCURRENCY", 2))
HEAVY_EVENTS = dict(concurrency_id="heavy", concurrency_limit=resources.env_count("MANGO_HEAVY_CONCURRENCY", 1))
# Clearing after an upload or a plot edit goes through the queue, in a lane of its own that never waits: the
# queue sends a session's results in the order they finish, and the clear waits for a result let go just
# before it to finish (gradio's postprocessing: `app.landing`), so that result arrives before it, not after it.
CLEAR_EVENTS = dict(concurrency_id="clear", concurrency_limit=None)
# The preview of the slots (3-5 ms a pair, decoded once) never waits either. Each event whose inputs hold a slot
# rewrites the slot's status when it ends, and with it the message a press's check left beside the slot: a
# preview that waited behind the light lane's work ended after the press, and the message went.
PREVIEW_EVENTS = dict(concurrency_id="preview", concurrency_limit=None)
# How many sessions gradio keeps server-side state for (its copy of the page's config, the components' last
# updates, gr.State values), least recently used forgotten first. Each costs 0.7-3 MB here (two predictions;
# every view too), and gradio's default keeps 10,000: a Space's memory grew with every visitor. A
# forgotten session keeps working, since every event sends its inputs and `app.sessions` keeps its own account;
# only the opacity slider waits for the next prediction (test_a_session_gradio_forgot_keeps_working).
STATE_SESSIONS = resources.env_count("MANGO_STATE_SESSIONS", 256)


# What each picture is, for a screen reader (gradio wraps an output picture in a button with no other name);
# the numbers a picture shows are in the text beside it.
ALT_TEXTS = {
    "picker": "Both images with their patch grid, the query patch outlined. Click a patch to make it the query, "
              "or set the Query token slider.",
    "generated": "Pictures decoded through the inverse flow: samples one per row, an interpolation one step per "
                 "column (per row on a phone); the text below gives each one's likelihood, and for segmentation and "
                 "genres its prediction.",
    "translation": "The predicted RGB image, the translation of the two inputs.",
    "preview": "The uploaded single-channel image, as the model reads it.",
    "benchmark": "Known-answer benchmark figure; its numbers are in the text above.",
    "known_answer": "The scene with the object outlined in red; each method's verdict is in the text below.",
    "ablations": "Ablation chart; its numbers are in the table above.",
}


def slider(spec: ranges.NumericRange, **kwargs: Any) -> SliderInput:
    """A slider over a parameter's one range (`app.ranges`)."""
    kwargs.setdefault("value", spec.default)
    return SliderInput(spec.minimum, spec.maximum, step=spec.step, **kwargs)


def _wrap(fn: Callable, heavy: bool = False) -> Callable:
    return user_errors(fn, heavy=heavy)


# ------------------------------------------------------------------------------ layout
def _image_input(label: str, elem_id: str) -> ImageInput:
    return ImageInput(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], height=230,
                      format="png", elem_id=elem_id)


def _views(app: MangoApp, slot: gr.components.Component, inputs: list, marker: gr.State, prefix: str,
           runner: Runner, example_names: list[str]) -> dict[str, Any]:
    """The three "looking inside" views under a task's prediction."""
    labels = runner.labels()
    has_text = runner.text_key is not None
    c: dict[str, Any] = {}
    with gr.Tabs(elem_id=f"{prefix}-views", overflow_behavior="wrap"):
        with gr.Tab("Attention maps", id=f"{prefix}-attention"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Row():
                        c["layer"] = DropdownInput(runner.layer_choices, value=runner.layer_choices[0],
                                                   label="Block · layer · partition",
                                                   info="2 MMCA, 4 IMCA, 2 LICA layers per block",
                                                   min_width=240)  # "block 1 · layer 1 · MMCA" whole on a phone
                        c["qmod"] = RadioInput(list(labels), value=labels[0], label="Query modality")
                        c["qidx"] = slider(ranges.query_token(runner.t), value=default_query_token(runner),
                                           label="Query token",
                                           info="patch index in raster order, or word position"
                                           + (" (past the plot's end: its last word)" if has_text else ""))
                    gr.Markdown("**Click a patch** in either image to make it the query"
                                + (" (or a word below)." if has_text else "."))
                    c["picker"] = gr.Image(label="Click a patch to make it the query", show_label=False, interactive=False,
                                           type="numpy", format="png", buttons=[], elem_id=f"{prefix}-picker",
                                           alt_text=ALT_TEXTS["picker"],
                                           elem_classes=["picker"])
                    if has_text:
                        c["words"] = gr.HighlightedText(label="…or click a word", color_map={"query": "#111827"},
                                                        show_legend=False, combine_adjacent=False, interactive=False,
                                                        elem_id=f"{prefix}-words")
                    c["attn_plot"] = gr.Plot(plots.empty_figure("Run a prediction (or click an example) to see the attention."),
                                             label="The chosen row: S on the keys, A on the values", elem_id=f"{prefix}-attention-plot",
                                             elem_classes=FIGURE)
                    c["rollout_plot"] = gr.Plot(label="Attention rollout through the whole flow", elem_id=f"{prefix}-rollout-plot",
                                                elem_classes=FIGURE)
                    c["matrix_plot"] = gr.Plot(label="Full matrices in original token positions", elem_id=f"{prefix}-matrix-plot",
                                               elem_classes=FIGURE)
                with gr.Column(scale=1, min_width=280):
                    c["row_text"] = gr.Markdown()
                    gr.Markdown(texts.ATTENTION)
        with gr.Tab("Modality contributions", id=f"{prefix}-contributions"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Row():
                        initial = runner.target_choices(None, None)
                        c["target"] = DropdownInput(initial, value=initial[0][1], label="Explain",
                                                    info="a class over its predicted region / a genre's logit / an output statistic")
                        c["steps"] = slider(ranges.IG_STEPS, label="Integrated Gradients steps",
                                            info="where it starts: doubled until the convergence delta is within 5 %")
                    c["explain"] = gr.Button("Explain this output", variant="primary", elem_id=f"{prefix}-explain")
                    c["summary"] = gr.Markdown(elem_id=f"{prefix}-summary")
                    c["bars"] = gr.Plot(plots.empty_figure("Click “Explain this output”."), label="Per-modality contribution",
                                        elem_id=f"{prefix}-contrib-plot", elem_classes=FIGURE)
                    c["ig_plot"] = gr.Plot(label="Integrated Gradients per modality", elem_id=f"{prefix}-ig-plot",
                                           elem_classes=FIGURE)
                    c["ll_plot"] = gr.Plot(label="Exact likelihood with a modality removed", elem_classes=FIGURE)
                    if runner.config.task == "segmentation":
                        c.update(_trust_section(app, slot, runner))
                with gr.Column(scale=1, min_width=280):
                    gr.Markdown(texts.CONTRIBUTIONS)
        with gr.Tab("Latent sampling", id=f"{prefix}-sampling"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Row():
                        c["temperature"] = slider(ranges.TEMPERATURE, label="Temperature τ", value=runner.default_temperature)
                        c["seed"] = NumberInput(ranges.SEED.default, precision=0, minimum=ranges.SEED.minimum,
                                                maximum=ranges.SEED.maximum, label="Seed")
                        c["n"] = slider(ranges.SAMPLES, label="Samples")
                    with gr.Row():
                        c["sample_btn"] = gr.Button("Sample from the prior", variant="primary", elem_id=f"{prefix}-sample")
                    with gr.Row():
                        c["keep"] = RadioInput(list(labels), value=labels[0], label="Keep this modality, redraw the other")
                        c["resample_btn"] = gr.Button("Resample the other modality", elem_id=f"{prefix}-resample")
                    with gr.Row():
                        c["other"] = DropdownInput(example_names, value=example_names[-1] if example_names else None,
                                                   label="Interpolate from the current input to", elem_id=f"{prefix}-other",
                                                   min_width=320)  # a whole example name beside its arrow
                        c["isteps"] = slider(ranges.INTERPOLATION_STEPS, label="Steps")
                        c["interp_btn"] = gr.Button("Interpolate", elem_id=f"{prefix}-interpolate")
                    c["generated"] = gr.Image(label="Generated through G⁻¹", interactive=False, type="numpy", format="png",
                                              buttons=["download", "fullscreen"], elem_id=f"{prefix}-generated",
                                              alt_text=ALT_TEXTS["generated"],
                                              elem_classes=FIGURE)
                    c["readout"] = gr.Markdown(elem_id=f"{prefix}-readout")
                with gr.Column(scale=1, min_width=280):
                    gr.Markdown(texts.SAMPLING)

    attention_fn = app.attention_with_words if has_text else app.attention
    attention_outputs = [c["picker"], c["attn_plot"], c["rollout_plot"], c["matrix_plot"], c["row_text"]]
    if has_text:
        attention_outputs.append(c["words"])
    # .input, not .change: a value the app sets (a setting switch resets layer and query) must not recompute
    # the view on inputs meant for the other setting; the clicks set the query and then recompute it
    attention_inputs = [slot, *inputs, c["layer"], c["qmod"], c["qidx"], marker]
    gr.on([marker.change, c["layer"].input, c["qmod"].input, c["qidx"].input], _wrap(attention_fn),
          attention_inputs, attention_outputs, api_name=f"{prefix}_attention",
          trigger_mode="always_last", show_progress="minimal", **LIGHT_EVENTS)
    picks = {"patch": c["picker"].select(_wrap(app.pick_patch), [slot], [c["qmod"], c["qidx"]],
                                         api_name=f"{prefix}_pick_patch", api_visibility="private", queue=False)}
    if has_text:
        picks["word"] = c["words"].select(_wrap(app.pick_word), [slot], [c["qmod"], c["qidx"]],
                                          api_name=f"{prefix}_pick_word", api_visibility="private", queue=False)
    for kind, pick in picks.items():
        pick.then(_wrap(attention_fn), attention_inputs, attention_outputs, api_name=f"{prefix}_{kind}_attention",
                  api_visibility="private", trigger_mode="always_last", show_progress="minimal", **LIGHT_EVENTS)
    c["attention_outputs"] = attention_outputs
    marker.change(_wrap(app.targets), [slot, *inputs, marker], [c["target"]], api_name=f"{prefix}_targets",
                  show_progress="hidden", **LIGHT_EVENTS)
    c["results"] = [c["bars"], c["ig_plot"], c["ll_plot"], c["summary"], c["generated"], c["readout"]]
    marker.change(app.new_prediction, None, c["results"], api_name=f"{prefix}_new_prediction",
                  api_visibility="private", queue=False, show_progress="hidden")
    c["explain"].click(_wrap(app.contributions, heavy=True), [slot, *inputs, c["target"], c["steps"]],
                       [c["bars"], c["ig_plot"], c["ll_plot"], c["summary"]], api_name=f"{prefix}_contributions",
                       **HEAVY_EVENTS)
    c["sample_btn"].click(_wrap(app.sample, heavy=True), [slot, c["temperature"], c["seed"], c["n"]],
                          [c["generated"], c["readout"]], api_name=f"{prefix}_sample", **HEAVY_EVENTS)
    c["resample_btn"].click(_wrap(app.resample, heavy=True), [slot, *inputs, c["keep"], c["temperature"], c["seed"], c["n"]],
                            [c["generated"], c["readout"]], api_name=f"{prefix}_resample", **HEAVY_EVENTS)
    c["interp_btn"].click(_wrap(app.interpolate, heavy=True), [slot, *inputs, c["other"], c["isteps"]],
                          [c["generated"], c["readout"]], api_name=f"{prefix}_interpolate", **HEAVY_EVENTS)
    return c


def _trust_section(app: MangoApp, slot: gr.components.Component, runner: Runner) -> dict[str, Any]:
    """"Can these explanations be trusted?": the bundled known-answer benchmark and one example to check."""
    benchmark = trust.load_benchmark()
    weights = trust.checkpoint_weights(runner.loaded)
    c: dict[str, Any] = {}
    with gr.Accordion("Can these explanations be trusted?", open=False, elem_id="segment-trust"):
        gr.Markdown(trust.section_markdown(benchmark, weights, trust.class_iou(runner.config.metadata, runner.config.class_names)))
        if benchmark.figure and trust.applies(benchmark, weights):
            gr.Image(benchmark.figure, label="Known answers on unseen scenes", show_label=False, interactive=False,
                     buttons=["fullscreen"], alt_text=ALT_TEXTS["benchmark"])  # the figure has its own title, which the label would cover
        choices = list(trust.KNOWN_ANSWER_CHOICES)
        with gr.Row():
            c["ka_choice"] = gr.Radio(choices, value=choices[0], label="Check a known answer (bundled SynthRooms scenes)")
            c["ka_button"] = gr.Button("Check it", elem_id="segment-known-answer")
        c["ka_image"] = gr.Image(label="The object (outlined in red)", interactive=False, type="numpy", format="png",
                                 height=270, buttons=[], alt_text=ALT_TEXTS["known_answer"])
        c["ka_text"] = gr.Markdown(elem_id="segment-known-answer-text")
    c["ka_button"].click(_wrap(app.known_answer), [slot, c["ka_choice"]], [c["ka_image"], c["ka_text"]],
                         api_name="segment_known_answer", **HEAVY_EVENTS)
    return c


def _examples(app: MangoApp, rows: list, inputs: list, labels: list[str], title: str, fn: Callable, fn_inputs: list,
              outputs: list, prefix: str) -> gr.Examples | None:
    """Clickable examples that fill the inputs and run the prediction (no caching: nothing runs at start-up)."""
    if not rows:  # assets/examples missing: `python -m app.examples` makes them
        gr.Markdown("*No examples found: run `python -m app.examples`.*")
        return None
    examples = gr.Examples(rows, inputs, cache_examples=False, label=title, example_labels=labels,
                           api_name=f"{prefix}_load_example", api_visibility="undocumented", examples_per_page=8)
    # the example's files are what the slots hold now (before its prediction waits in the queue, where an
    # upload may overtake it: `MangoApp._unless_replaced`)
    examples.dataset.click(app.example_clicked, fn_inputs[:1], None, api_name=f"{prefix}_example_clicked",
                           api_visibility="private", queue=False, show_progress="hidden")
    loaded = examples.load_input_event.then(app.slots_filled, fn_inputs[:3], None, api_name=f"{prefix}_slots_filled",
                                            api_visibility="private", queue=False, show_progress="hidden")
    loaded.then(_wrap(example_run(fn)), fn_inputs, outputs, api_name=f"{prefix}_run_example",
                api_visibility="undocumented", **_prediction_events(outputs))
    return examples


def _prediction_events(outputs: list) -> dict[str, Any]:
    """How a prediction runs, from its button or an example: in the light lane, its progress and an error's
    mark shown on its first output (the picture or chart) alone; on the notices the mark covered their text.
    A press or example click while one is pending runs once it is done, on the inputs then in the slots
    (gradio's "once" dropped it, and the pending prediction, of the inputs before, was all that came back)."""
    return dict(show_progress_on=outputs[0], trigger_mode="always_last", **LIGHT_EVENTS)


def _preview_image(prefix: str) -> gr.Image:
    """Where single-channel uploads (depth, shading, edges) are shown as the model reads them:
    the browser's own preview of a 16-bit PNG is nearly black."""
    return gr.Image(label="As the model reads them", interactive=False, type="numpy", format="png", height=200,
                    visible=False, buttons=[], elem_id=f"{prefix}-preview", alt_text=ALT_TEXTS["preview"])


def _wire_preview(app: MangoApp, slot: Any, a: Any, b: Any, preview: gr.Image, prefix: str) -> None:
    gr.on([a.change, b.change], _wrap(app.preview), [slot, a, b], [preview], api_name=f"{prefix}_preview",
          api_visibility="undocumented", show_progress="hidden", trigger_mode="always_last", **PREVIEW_EVENTS)


def _replaced_outputs(prediction: list, views: dict[str, Any]) -> list:
    """What `MangoApp.inputs_replaced` clears, in its order."""
    return [*prediction, views["target"], *views["attention_outputs"][:5], *views["results"]]


def _wire_replaced(app: MangoApp, slot: Any, inputs: list, prediction: list, views: dict[str, Any], prefix: str) -> None:
    """An upload or removal by the user in one of the image ``inputs`` (never a value the app sets, such
    as an example's) clears the prediction and its views (`MangoApp.replaced_by_hand`); what still
    computes, or waits to, on the old files then changes nothing (`MangoApp._unless_replaced`), and the
    views never follow a prediction of them."""
    outputs = _replaced_outputs(prediction, views)
    if "words" in views:
        outputs.append(views["words"])
    images = {name: image for name, image in zip("ab", inputs) if isinstance(image, gr.Image)}
    # always_last: two uploads in quick succession (the rgb, then its depth) each clear, and the last one
    # reads both files (gradio's "once" would drop the second, and the slots would seem to hold the first)
    gr.on([image.upload for image in images.values()], _wrap(app.replaced_by_hand), [slot, *inputs], outputs,
          api_name=f"{prefix}_inputs_replaced", api_visibility="private", show_progress="hidden",
          trigger_mode="always_last", **CLEAR_EVENTS)
    # a removal's event reads the removed file as it was, so each names its slot
    for name, image in images.items():
        image.clear(_wrap(app.replaced_by_hand), [slot, *inputs, gr.State(name)], outputs,
                    api_name=f"{prefix}_{name}_removed", api_visibility="private", show_progress="hidden",
                    trigger_mode="always_last", **CLEAR_EVENTS)


def _segmentation_tab(app: MangoApp) -> None:
    runner = app.runners["segmentation"]
    slot = gr.State("segmentation")
    marker = gr.State(0)
    gr.Markdown("Upload an RGB image and its depth map (or click a SynthRooms scene). MANGO fuses them and labels every "
                "pixel.\n\n" + texts.depth_units("segmentation", runner.depth_max))
    gr.Markdown(texts.model_card(runner.loaded), elem_classes=["model-card"])
    scenes = example_files.scenes()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            with gr.Row():
                a = _image_input(INPUT_LABELS["segmentation"][0], TAB_SLOTS["segment"][0])
                b = _image_input(INPUT_LABELS["segmentation"][1], TAB_SLOTS["segment"][1])
            preview = _preview_image("segment")
            run = gr.Button(PREDICT_BUTTONS["segmentation"], variant="primary")
        with gr.Column(scale=3):
            overlay = gr.AnnotatedImage(label="Predicted classes (hover or focus a class name)", color_map=runner.class_colours(),
                                        height=330, format="png", elem_id="segment-overlay")
            opacity = slider(ranges.OVERLAY_OPACITY, label="Overlay opacity", elem_id="segment-opacity",
                             info="0: the photo alone · 1: the class colours alone")
            with gr.Row():
                shares = gr.Dataframe(EMPTY_SHARES, label="Class shares",
                                      interactive=False, max_height=520, elem_id="segment-shares",
                                      min_width=240)  # on a phone: the whole table, the notices below
                with gr.Column(min_width=200):  # a Markdown's own min_width is not drawn; squeezed to a word per line
                    notices = gr.Markdown(elem_id="segment-notices")
    last = gr.State(None)  # the last prediction, which the opacity slider re-blends
    outputs = [overlay, shares, notices, marker, last]
    _examples(app, [[s.file(runner.names[0]), s.file(runner.names[1])] for s in scenes], [a, b], [s.name for s in scenes],
              "SynthRooms scenes (procedural, made by the project)", app.segment, [slot, a, b, opacity], outputs, "segment")
    run.click(_wrap(app.segment), [slot, a, b, opacity], outputs, api_name="segment", validator=app.check_segment_inputs,
              **_prediction_events(outputs))
    opacity.input(_wrap(app.segment_overlay), [slot, last, opacity], [overlay], api_name="segment_overlay",
                  api_visibility="private", show_progress="hidden", trigger_mode="always_last", **LIGHT_EVENTS)
    _wire_preview(app, slot, a, b, preview, "segment")
    views = _views(app, slot, [a, b], marker, "segment", runner, [s.name for s in scenes])
    _wire_replaced(app, slot, [a, b], [overlay, shares, notices, last], views, "segment")


def _translation_tab(app: MangoApp) -> None:
    first = list(SETTINGS)[0]
    runner = app.runners[SETTINGS[first]]
    marker = gr.State(0)
    gr.Markdown("Two input domains of a scene go in, an RGB image comes out. Choose the setting, then upload both inputs "
                "(or click a SynthRooms example).\n\n" + texts.depth_units("translation"))
    setting = RadioInput(list(SETTINGS), value=first, label="Setting")
    card = gr.Markdown(texts.model_card(runner.loaded), elem_classes=["model-card"])
    scenes = example_files.scenes()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            with gr.Row():
                a = _image_input(INPUT_LABELS[SETTINGS[first]][0], TAB_SLOTS["translate"][0])
                b = _image_input(INPUT_LABELS[SETTINGS[first]][1], TAB_SLOTS["translate"][1])
            preview = _preview_image("translate")
            run = gr.Button(PREDICT_BUTTONS[SETTINGS[first]], variant="primary")
        with gr.Column(scale=3):
            with gr.Row():
                predicted = gr.Image(label="Predicted RGB", interactive=False, type="numpy", format="png", height=300,
                                     elem_id="translate-output", min_width=280, alt_text=ALT_TEXTS["translation"])  # on a phone: full width, notices below
                notices = gr.Markdown(elem_id="translate-notices")
    outputs = [predicted, notices, marker]
    rows, row_labels = [], []
    for name, key in SETTINGS.items():
        first_domain, second_domain = app.runners[key].names
        for scene in scenes[:2]:
            rows.append([name, scene.file(first_domain), scene.file(second_domain)])
            row_labels.append(f"{scene.name.split(' (')[0]} · {name}")
    _examples(app, rows, [setting, a, b], row_labels, "SynthRooms scenes (procedural, made by the project)",
              app.translate, [setting, a, b], outputs, "translate")
    run.click(_wrap(app.translate), [setting, a, b], outputs, api_name="translate", validator=app.check_inputs,
              **_prediction_events(outputs))
    _wire_preview(app, setting, a, b, preview, "translate")
    views = _views(app, setting, [a, b], marker, "translate", runner, [s.name for s in scenes])
    _wire_replaced(app, setting, [a, b], [predicted, notices], views, "translate")
    # any switch (by hand or by an example of the other setting) relabels; only one by hand clears
    switched = setting.change(_wrap(app.switch_setting), [setting], [a, b, card, views["layer"], views["qmod"],
                                                                   views["keep"], views["temperature"], views["qidx"]],
                              api_name="translate_setting", queue=False)
    # an example of the other setting switches it and predicts; what was explained or sampled was the other model's.
    # Chained after the switch, not a second listener of the same change: two at once left the attention of the
    # example's prediction unanswered on a loaded machine (the browser test timed out)
    switched.then(app.new_prediction, None, views["results"], api_name="translate_setting_results",
                  api_visibility="private", queue=False, show_progress="hidden")
    setting.input(_wrap(app.clear_setting), [setting],
                  [a, b, predicted, notices, preview, *views["attention_outputs"][:5], views["bars"], views["ig_plot"],
                   views["ll_plot"], views["summary"], views["generated"], views["readout"]],
                  api_name="translate_clear", api_visibility="private", queue=False)


def _genre_tab(app: MangoApp) -> None:
    runner = app.runners["genre"]
    slot = gr.State("genre")
    marker = gr.State(0)
    gr.Markdown("A poster and a plot summary go in; MANGO predicts the film's genres (several can apply).")
    gr.Markdown(texts.model_card(runner.loaded), elem_classes=["model-card"])
    films = example_files.films()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            with gr.Row():
                a = _image_input(INPUT_LABELS["genre"][0], TAB_SLOTS["genre"][0])
                b = gr.Textbox(label="Plot", lines=9, placeholder="A few sentences about the film…",
                               elem_id=TAB_SLOTS["genre"][1])
            run = gr.Button(PREDICT_BUTTONS["genre"], variant="primary")
        with gr.Column(scale=3):
            chart = gr.Plot(plots.empty_figure("Genre probabilities appear here."), label="Genre probabilities",
                            elem_id="genre-chart", elem_classes=FIGURE)
            genres = gr.Textbox(label="Predicted genres (probability above the decision threshold)", interactive=False,
                                elem_classes=READOUT)
            notices = gr.Markdown(elem_id="genre-notices")
    outputs = [chart, genres, notices, marker]
    _examples(app, [[f.poster, f.plot] for f in films], [a, b], [f"{f.name} ({', '.join(f.genres)})" for f in films],
              "Films written for the project (posters drawn procedurally)", app.genre, [slot, a, b], outputs, "genre")
    run.click(_wrap(app.genre), [slot, a, b], outputs, api_name="genre", validator=app.check_inputs,
              **_prediction_events(outputs))
    views = _views(app, slot, [a, b], marker, "genre", runner, [f.name for f in films])
    _wire_replaced(app, slot, [a, b], [chart, genres, notices], views, "genre")
    # .change, not .input: gradio's textbox sends .input on key presses only, so a paste would keep the old words.
    # It also tells the server the plot the slot holds: what still computes or waits on another changes nothing
    # (`MangoApp._unless_replaced`); an example's own plot is the one its prediction carries
    b.change(app.plot_edited, [b], [*_replaced_outputs([chart, genres, notices], views), views["words"]],
             api_name="genre_plot_edited", api_visibility="private", show_progress="hidden", **CLEAR_EVENTS)


def _ablations_tab() -> None:
    table, figure, status = load_table()
    explanation = gr.Markdown(texts.ABLATIONS if table is not None else texts.ABLATIONS_MISSING)
    status_md = gr.Markdown(f"*{status}*")
    frame = gr.Dataframe(table, label="Ablations (mean ± std over seeds)", interactive=False, visible=table is not None)
    image = gr.Image(figure, label="Ablations", interactive=False, visible=figure is not None, format="png",
                     alt_text=ALT_TEXTS["ablations"])
    reload = gr.Button("Reload the table", size="sm")

    def refresh() -> tuple:
        table, figure, status = load_table()
        return (texts.ABLATIONS if table is not None else texts.ABLATIONS_MISSING, f"*{status}*",
                gr.update(value=table, visible=table is not None), gr.update(value=figure, visible=figure is not None))

    reload.click(refresh, None, [explanation, status_md, frame, image], api_name="ablations", queue=False)


def launch_kwargs() -> dict[str, Any]:
    """What app.py and the tests pass to launch(): the theme, CSS and script of app/page.py, the upload limit,
    the sessions whose state is kept."""
    return dict(theme=theme(), css=CSS, head=HEAD, max_file_size=MAX_FILE_BYTES, show_error=False,
                state_session_capacity=STATE_SESSIONS)


def build_demo(models: dict[str, LoadedModel] | None = None) -> gr.Blocks:
    """The whole app. ``models`` defaults to each slot's checkpoint (see app/checkpoints.py)."""
    gradio_fixes.apply()
    resources.limit_allocator()
    resources.set_torch_threads()
    models = models if models is not None else load_all(chosen_sources())
    app = MangoApp(models)
    with landing.Blocks(title="MANGO: see how two modalities fuse", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(texts.INTRO)
        with gr.Tabs(elem_id="main-tabs", overflow_behavior="wrap"):  # on a phone, every task stays in sight
            with gr.Tab("RGB-D segmentation", id="segmentation"):
                _segmentation_tab(app)
            with gr.Tab("Translation", id="translation"):
                _translation_tab(app)
            with gr.Tab("Movie genre", id="genre"):
                _genre_tab(app)
            with gr.Tab("Ablations", id="ablations"):
                _ablations_tab()
            with gr.Tab("About & API", id="about"):
                gr.Markdown(texts.API)
        demo.load(app.page_opened, None, None, api_name="page_opened", api_visibility="private", queue=False,
                  show_progress="hidden")
    demo.queue(default_concurrency_limit=1, max_size=64)  # every model event names its lane (LIGHT/HEAVY_EVENTS)
    demo.mango_app = app  # type: ignore[attr-defined]  # for tests and the benchmark
    resources.freeze_startup_objects()
    return demo
