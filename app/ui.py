"""The Gradio layout and its wiring: tabs, inputs, views, and one named API endpoint per event.

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
(LIGHT_EVENTS, HEAVY_EVENTS) so a prediction never waits behind a contribution or a sampling request; numeric inputs pass through unchanged and are checked against
`app.ranges` by the handlers, so every error names its parameter.
"""

from __future__ import annotations

import contextvars
import functools
import html
import logging
import os
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable

import gradio as gr
import pandas as pd

from . import examples as example_files
from . import gradio_fixes, plots, ranges, resources, texts, trust
from .ablations import load_table
from .checkpoints import LoadedModel, chosen_sources, load_all
from .handlers import Runner
from .inputs import MAX_FILE_BYTES, InputError, is_missing
from .page import CSS, FIGURE, HEAD, READOUT, UNPREDICTED, theme
from .sessions import Replacements

log = logging.getLogger("mango.app")

SETTINGS = {"shade + texture → rgb": "translation-shade-texture", "depth + normal → rgb": "translation-depth-normal"}
INPUT_LABELS = {
    "segmentation": ("RGB image", "Depth map"),
    "translation-shade-texture": ("Shade (reshading)", "Edge texture"),  # short: the image's icons cover a long label
    "translation-depth-normal": ("Depth (z-buffer)", "Surface normals"),
    "genre": ("Poster", "Plot"),
}
PREDICT_BUTTONS = {"segmentation": "Segment", **{key: "Translate" for key in SETTINGS.values()}, "genre": "Predict genres"}
EMPTY_SHARES = pd.DataFrame({"class": [], "share of pixels (%)": []})
# The queue runs two kinds of events in separate lanes, so a light view never waits behind a heavy
# one: predictions, attention views and previews (~0.1 s each) two at a time; contributions and
# latent sampling (~1 s, and the most memory) one at a time by default (MANGO_HEAVY_CONCURRENCY).
# Up to 64 requests wait in all.
LIGHT_EVENTS = dict(concurrency_id="light", concurrency_limit=int(os.environ.get("MANGO_LIGHT_CONCURRENCY", "2")))
HEAVY_EVENTS = dict(concurrency_id="heavy", concurrency_limit=int(os.environ.get("MANGO_HEAVY_CONCURRENCY", "1")))
# Clearing after an upload or a plot edit goes through the queue, in a lane of its own that never waits: the
# queue sends a session's results in the order they finish, so a result finished just before the clear (and
# still on its way) arrives before it, not after it.
CLEAR_EVENTS = dict(concurrency_id="clear", concurrency_limit=None)
ERROR_TOAST_SECONDS = 8  # error messages close by themselves (and on a tab switch)


class ImageInput(gr.Image):
    """gr.Image that hands unreadable uploads on as a path, so the app explains what is wrong
    (gradio's own preprocessing would fail with a bare PIL error)."""

    is_template = True  # drawn by gradio's Image front end

    def preprocess(self, payload: Any) -> Any:
        try:
            return super().preprocess(payload)
        except Exception:  # not an image, damaged, too many pixels: inputs.load_image explains
            path = getattr(payload, "path", None)
            return str(path) if path else None


def _pass_through(self: Any, payload: Any) -> Any:
    """Preprocessing that hands the payload on unchanged: the handler checks it against `app.ranges`
    (or its list of choices) and says which parameter is wrong. gradio's own checks would answer a
    text seed with "upstream app raised an exception", name no parameter, round 3.7 to 4, and print
    a traceback for every out-of-range API call."""
    return payload


# Each is drawn by its parent's front end (is_template: gradio names the Svelte file after __base__).
class SliderInput(gr.Slider):
    is_template = True
    preprocess = _pass_through


class NumberInput(gr.Number):
    is_template = True
    preprocess = _pass_through


class DropdownInput(gr.Dropdown):
    is_template = True
    preprocess = _pass_through


class RadioInput(gr.Radio):
    is_template = True
    preprocess = _pass_through


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


def _control_without_inputs(evt: gr.EventData | None, *inputs: Any) -> bool:
    """A view's own control (layer, query modality, query token) fired while an input is missing. There is
    nothing to draw, and maybe nothing was asked: a dropdown fires .input when it merely loses focus
    (tabbing past it on a fresh page raised "Both inputs are missing"). A prediction or an API call
    (no event data) still says what is missing."""
    control = isinstance(getattr(evt, "target", None), (DropdownInput, RadioInput, SliderInput))
    return control and any(is_missing(x) for x in inputs)


def user_errors(fn: Callable, heavy: bool = False) -> Callable:
    """Input problems become a message in the UI and one line in the log; anything else a short
    message in the UI and its traceback in the log. After a heavy handler, freed memory is handed back."""
    name = getattr(fn, "__name__", str(fn))

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            log.info("user error in %s: %s", name, " ".join(str(err).split()))
            raise gr.Error(html.escape(str(err), quote=False), title="Please check the input", print_exception=False,
                           duration=ERROR_TOAST_SECONDS) from None
        except gr.Error as err:
            log.info("user error in %s: %s", name, " ".join(str(err.message).split()))
            err.print_exception = False
            raise
        except Exception as err:  # a bug: keep the trace in the server log, not in the page
            log.exception("handler %s failed", name)
            raise gr.Error(
                html.escape(f"Something went wrong while computing this view ({type(err).__name__}: {err}). "
                            "The details are in the server log.", quote=False),
                title="Unexpected error", print_exception=False, duration=ERROR_TOAST_SECONDS,
            ) from None
        finally:
            if heavy:
                resources.release_memory()

    return wrapper


class MangoApp:
    """The loaded models and every event handler, bound to gradio types."""

    def __init__(self, models: dict[str, LoadedModel]):
        self.models = models
        self.runners = {key: Runner(loaded) for key, loaded in models.items()}
        self.replaced = Replacements()

    def _unless_replaced(self, request: gr.Request | None, kinds: tuple[str, ...], outputs: int,
                         compute: Callable[[], Any], marker: Any = None, skip: bool = False,
                         inputs: tuple[str, Any, Any] | None = None, pressed: bool = False) -> Any:
        """``compute()``, or no change to its ``outputs`` when this session's inputs were replaced (of
        ``kinds``) while it ran: its result would land beside the cleared views. (Gradio's ``cancels``
        would mark each stopped view "Error", and cannot stop a result already on its way.) A handler of
        a tab's ``inputs`` (setting, a, b) changes nothing either when the slots no longer hold them: an
        upload or edit came while it waited in the queue (``pressed``: a prediction's button, which a
        second press of the same inputs makes go ahead, `Replacements.pressed`). A view that follows a
        prediction passes its ``marker``: no change either when that prediction is stale
        (`_after_replaced_prediction`). ``skip``: no change, and nothing computed."""
        session = _session(request)
        unchanged = gr.update() if outputs == 1 else tuple(gr.update() for _ in range(outputs))

        def replaced(ask: Callable[..., bool]) -> bool:
            return inputs is not None and not ask(session, _tab(inputs[0]), a=inputs[1], b=inputs[2])

        ask = functools.partial(self.replaced.pressed, by_example=_EXAMPLE_RUN.get()) if pressed else self.replaced.holds
        if skip or self._after_replaced_prediction(marker, session) or replaced(ask):
            return unchanged
        before = self.replaced.count(session, kinds)
        with plots.phone_layout(_is_phone(request)):
            result = compute()
        if session is not None and self.replaced.count(session, kinds) != before or replaced(self.replaced.holds):
            return unchanged
        return result

    def runner(self, setting: str) -> Runner:
        key = SETTINGS.get(setting, setting)
        if key not in self.runners:
            raise InputError(f"Unknown setting {setting!r}; choose one of {list(SETTINGS)}.")
        return self.runners[key]

    def example_inputs(self, setting: str, name: str) -> tuple[str, str]:
        key = SETTINGS.get(setting, setting)
        if key == "genre":
            for film in example_files.films():
                if film.name == name:
                    return film.poster, film.plot
        else:
            domains = self.runners[key].names  # scene files are named after the modality (its domain)
            for scene in example_files.scenes():
                if scene.name == name:
                    return scene.file(domains[0]), scene.file(domains[1])
        raise InputError(f"Unknown example {name!r}; choose one from the list.")

    # ------------------------------------------------------------------------- predictions
    def segment(self, setting: str, a: Any, b: Any, opacity: Any = ranges.OVERLAY_OPACITY.default,
                request: gr.Request | None = None) -> tuple:
        made = self._marker(request)

        def compute() -> tuple:
            overlay, table, notices, prediction = self.runner(setting).segment(a, b, opacity)
            return overlay, table, notices, made, prediction

        return self._unless_replaced(request, UPLOADS, 5, compute, inputs=(setting, a, b), pressed=True)

    def segment_overlay(self, setting: str, prediction: Any, opacity: Any, request: gr.Request | None = None) -> Any:
        """The last prediction's overlay at another opacity. It never runs the model: on inputs uploaded
        since, it would draw a prediction that the class table, notices and views do not describe."""
        if prediction is None:
            return gr.update()
        return self._unless_replaced(request, UPLOADS, 1, lambda: self.runner(setting).overlay(prediction, opacity))

    def preview(self, setting: str, a: Any, b: Any) -> Any:
        image, caption = self.runner(setting).preview(a, b)
        return gr.update(value=image, label=caption, visible=image is not None)

    def translate(self, setting: str, a: Any, b: Any, request: gr.Request | None = None) -> tuple:
        made = self._marker(request)
        return self._unless_replaced(request, UPLOADS, 3, lambda: (*self.runner(setting).translate(a, b), made),
                                     inputs=(setting, a, b), pressed=True)

    def genre(self, setting: str, a: Any, b: Any, request: gr.Request | None = None) -> tuple:
        made = self._marker(request)
        return self._unless_replaced(request, UPLOADS, 4, lambda: (*self.runner(setting).genre(a, b), made),
                                     inputs=(setting, a, b), pressed=True)

    def _marker(self, request: gr.Request | None) -> tuple[int, int]:
        """What a prediction leaves in its tab's marker state: when it was made, and how many uploads this
        session had made by then. Its change recomputes the views (`_after_replaced_prediction`)."""
        return time.time_ns(), self.replaced.count(_session(request), UPLOADS)

    def _after_replaced_prediction(self, marker: Any, session: str | None) -> bool:
        """Whether the prediction shown (its ``marker``) was made before an upload: its views would read
        the new files, a pair nobody predicted. (A prediction that finished just before an upload still
        arrives, and is then cleared; the views its marker triggers must not follow it.)"""
        if not isinstance(marker, (tuple, list)) or len(marker) != 2:
            return False  # nothing predicted in this session (an API call): the views read what they are given
        return self.replaced.count(session, UPLOADS) != marker[1]

    def targets(self, setting: str, a: Any, b: Any, marker: Any = None, request: gr.Request | None = None) -> Any:
        def compute() -> Any:
            choices = self.runner(setting).target_choices(a, b)
            return gr.update(choices=choices, value=choices[0][1])

        return self._unless_replaced(request, EDITS, 1, compute, marker, inputs=(setting, a, b))

    def known_answer(self, setting: str, choice: Any) -> tuple:
        return self.runner(setting).known_answer(choice)

    # ---------------------------------------------------------------------------- attention
    def attention(self, setting: str, a: Any, b: Any, layer: Any, modality: Any, index: Any, marker: Any = None,
                  request: gr.Request | None = None, evt: gr.EventData = None) -> tuple:
        return self._unless_replaced(request, EDITS, 5,
                                     lambda: self.runner(setting).attention(a, b, layer, modality, index),
                                     marker, skip=_control_without_inputs(evt, a, b), inputs=(setting, a, b))

    def attention_with_words(self, setting: str, a: Any, b: Any, layer: Any, modality: Any, index: Any,
                             marker: Any = None, request: gr.Request | None = None, evt: gr.EventData = None) -> tuple:
        def compute() -> tuple:
            runner = self.runner(setting)
            result = runner.attention(a, b, layer, modality, index)
            prepared = runner.prepare(a, b)
            words = prepared.words or []
            text_label = runner.labels()["ab".index(runner.text_key)] if runner.text_key else None
            token = runner.query(prepared, modality, index)[0]  # a position past the plot's end moves to its last word
            selected = token % runner.t if modality == text_label else -1
            highlighted = [(w + " ", "query" if k == selected else None) for k, w in enumerate(words)]
            return (*result, highlighted)

        return self._unless_replaced(request, EDITS, 6, compute, marker, skip=_control_without_inputs(evt, a, b),
                                     inputs=(setting, a, b))

    def pick_patch(self, setting: str, evt: gr.SelectData, request: gr.Request | None = None) -> tuple:
        runner = self.runner(setting)
        x, y = evt.index if isinstance(evt.index, (list, tuple)) else (None, None)
        with plots.phone_layout(_is_phone(request)):  # the picker was drawn stacked on a phone
            hit = runner.pick(x, y) if x is not None else None
        if hit is None:
            return gr.update(), gr.update()
        return hit[0], hit[1]

    def pick_word(self, setting: str, evt: gr.SelectData) -> tuple:
        runner = self.runner(setting)
        if runner.text_key is None or not isinstance(evt.index, int):
            return gr.update(), gr.update()
        return runner.labels()["ab".index(runner.text_key)], evt.index

    # ------------------------------------------------------------------------ contributions
    def contributions(self, setting: str, a: Any, b: Any, target: Any, steps: Any, progress: gr.Progress = gr.Progress(),
                      request: gr.Request | None = None) -> tuple:
        return self._unless_replaced(request, EDITS, 4, lambda: self.runner(setting).contributions(
            a, b, target, steps, progress=lambda f, m: progress(f, desc=m)), inputs=(setting, a, b))

    # ----------------------------------------------------------------------------- sampling
    def sample(self, setting: str, temperature: Any, seed: Any, n: Any, progress: gr.Progress = gr.Progress(),
               request: gr.Request | None = None) -> tuple:
        return self._unless_replaced(request, EDITS, 2, lambda: self.runner(setting).sample(
            temperature, seed, n, progress=lambda f, m: progress(f, desc=m)))

    def resample(self, setting: str, a: Any, b: Any, keep: Any, temperature: Any, seed: Any, n: Any,
                 progress: gr.Progress = gr.Progress(), request: gr.Request | None = None) -> tuple:
        return self._unless_replaced(request, EDITS, 2, lambda: self.runner(setting).resample(
            a, b, keep, temperature, seed, n, progress=lambda f, m: progress(f, desc=m)), inputs=(setting, a, b))

    def interpolate(self, setting: str, a: Any, b: Any, other: Any, steps: Any, progress: gr.Progress = gr.Progress(),
                    request: gr.Request | None = None) -> tuple:
        def compute() -> tuple:
            a2, b2 = self.example_inputs(setting, other)
            return self.runner(setting).interpolate(a, b, a2, b2, steps, progress=lambda f, m: progress(f, desc=m),
                                                    second_name=str(other))

        return self._unless_replaced(request, EDITS, 2, compute, inputs=(setting, a, b))

    def plot_edited(self, plot: Any = None, request: gr.Request | None = None) -> tuple:
        """The old plot's prediction and views, cleared (see `inputs_replaced`); also its word list: a
        click on an old word would query whatever word now sits at its position."""
        self.replaced.bump(_session(request), "plot")
        self.replaced.hold(_session(request), "genre", b=plot)
        return (*self.inputs_replaced("genre", "The plot was edited"), [])

    def replaced_by_hand(self, setting: str, a: Any = None, b: Any = None, removed: str | None = None,
                         request: gr.Request | None = None) -> tuple:
        """An upload or removal by the user (``a``, ``b``: the tab's inputs as the event read them; ``removed``:
        the slot a removal emptied, which the event still reads as the old file): `inputs_replaced`, and
        what still runs, or still waits in the queue to run, on the old files returns no change (see
        `_unless_replaced`); the genre tab's word list is cleared too."""
        genre = SETTINGS.get(setting, setting) == "genre"
        self.replaced.bump(_session(request), "inputs")
        cleared = (*self.inputs_replaced(setting), *(([],) if genre else ()))
        slots = {"a": a, "b": b}
        if removed is not None:
            slots[removed] = None
        if genre:  # its plot is told by its own edits: the value here was read when the upload began, and an
            del slots["b"]  # upload takes long enough for the plot to be typed meanwhile
        # held last: a press that overtook this event waits for the hold (`Replacements.pressed`), and its
        # result must reach the page after this clear, not before it
        self.replaced.hold(_session(request), _tab(setting), **slots)
        return cleared

    def page_opened(self, request: gr.Request | None = None) -> None:
        """A new page's slots are empty. Told so, a press that overtakes the page's first uploads waits for
        their events (`Replacements.pressed`); untold, it ran at once, as an API call does, and the uploads'
        clears then wiped its result."""
        for tab in ("segmentation", "translation", "genre"):
            self.replaced.hold(_session(request), tab, a=None, b=None)

    def example_clicked(self, setting: str, request: gr.Request | None = None) -> None:
        self.replaced.example_clicked(_session(request), _tab(setting))

    def check_inputs(self, setting: str, a: Any, b: Any, *rest: Any, request: gr.Request | None = None) -> list:
        """A prediction button's check, run before its press is queued: an empty slot, or a plot too short
        or too long, is told so beside itself, and the views already shown stay as they are (an error from
        the prediction would mark them "Error"). A press with a slot empty that left just before an
        example's files reached the page is told nothing: the example fills the slots and runs its own
        prediction (`Replacements.empty_for_good`)."""
        ok = gr.validate(True, "")
        if SETTINGS.get(setting, setting) not in self.runners:
            return [ok, ok, ok, *(ok for _ in rest)]  # the prediction says which settings there are
        runner = self.runner(setting)
        try:
            problems = runner.slot_problems(a, b)
            if (is_missing(a) or is_missing(b)) and not self.replaced.empty_for_good(
                    _session(request), _tab(setting), a=a, b=b):
                problems = {}
        except Exception:  # a bug: the prediction, which reads the inputs again, gives its message
            log.exception("the check of a press failed")
            problems = {}
        if problems:
            log.info("user error in check_inputs: %s", " ".join(" ".join(problems.values()).split()))
        return [ok, *(gr.validate(key not in problems, problems.get(key, "")) for key in ("a", "b")), *(ok for _ in rest)]

    def slots_filled(self, setting: str, a: Any = None, b: Any = None, request: gr.Request | None = None) -> None:
        """What the tab's slots hold now, after an example or a setting switch's reset: what still waits to
        compute on other inputs then changes nothing (`_unless_replaced`)."""
        self.replaced.fill(_session(request), _tab(setting), a=a, b=b)

    def inputs_replaced(self, setting: str, what: str = "New input") -> tuple:
        """After the user uploads or removes an input: the prediction shown and every view of it,
        cleared. Left in place they would sit beside views that read the files now in the slots
        (attention, contributions, resampling), each describing other inputs. Outputs: the tab's
        prediction outputs, the Explain list, the attention view, the contributions and the sampling
        panel (`_replaced_outputs`)."""
        key = SETTINGS.get(setting, setting)
        message = f"{what}: press “{PREDICT_BUTTONS[key]}” {UNPREDICTED}."
        blanks = {"segmentation": (None, EMPTY_SHARES, message, None),  # overlay, shares, notices, last prediction
                  "genre": (plots.empty_figure(message), "", message)}.get(key, (None, message))
        choices = self.runner(setting).target_choices(None, None)
        return (*blanks, gr.update(choices=choices, value=choices[0][1]), *blank_attention(message), *blank_results())

    def new_prediction(self) -> tuple:
        """A new prediction clears the contributions and sampling panels: they explained the last one."""
        return blank_results()

    # ------------------------------------------------------------------------------ settings
    def clear_setting(self, setting: str, request: gr.Request | None = None) -> tuple:
        """After a setting is switched by hand: empty inputs, no prediction, notices, preview or views, since
        all of them belong to the other setting's model and files. Cleared rather than filled with the
        setting's first example: who switches by hand has that setting's files to bring, and an example
        would fill the slots with files they did not choose and run a prediction they did not ask for;
        the examples stay one click away below. (An example of the other setting switches without this.)
        A prediction of the old files still to come then changes nothing (`_unless_replaced`)."""
        key = SETTINGS.get(setting)
        if key is None:
            raise InputError(f"Unknown setting {setting!r}; choose one of {list(SETTINGS)}.")
        self.slots_filled(setting, None, None, request)
        first, second = (label.split(" (")[0].lower() for label in INPUT_LABELS[key])
        notice = (f"Switched to **{setting}**: upload its {first} and {second} (or click one of its examples), "
                  "then Translate.")
        return (None, None, None, notice, gr.update(value=None, visible=False),
                *blank_attention("Run a prediction (or click an example) to see the attention."), *blank_results())

    def switch_setting(self, setting: str) -> tuple:
        key = SETTINGS.get(setting)
        if key is None:
            raise InputError(f"Unknown setting {setting!r}; choose one of {list(SETTINGS)}.")
        runner = self.runners[key]
        labels = runner.labels()
        a_label, b_label = INPUT_LABELS[key]
        return (
            gr.update(label=a_label), gr.update(label=b_label), texts.model_card(runner.loaded),
            gr.update(choices=runner.layer_choices, value=runner.layer_choices[0]),
            gr.update(choices=list(labels), value=labels[0]),
            gr.update(choices=list(labels), value=labels[0]),
            gr.update(value=runner.default_temperature),  # each checkpoint's recommended sampling temperature
            # the settings' checkpoints may have different token grids (16x16 and 8x8)
            gr.update(maximum=runner.t - 1, value=default_query_token(runner)),
        )


NARROW_WINDOW_PX = 1100  # CSS px: a window narrower gets the phone's figures (its figures are under 700 px)


def _is_phone(request: gr.Request | None) -> bool:
    """Whether the page was opened on a phone, or in a window as narrow as one: its browser says "Mobi" in
    the user agent (MDN's advice; tablets and "desktop site" do not), or the page's script (app/page.js)
    says the window is under `NARROW_WINDOW_PX` (a desktop zoomed to 200 % is 683 px wide: plotly cut the
    desktop figures' titles, caveats included). Its figures are then drawn phone-wide (`plots.phone_layout`)."""
    headers = getattr(request, "headers", None) or {}
    if "Mobi" in (headers.get("user-agent") or ""):
        return True
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie") or "")
    except CookieError:
        return False
    width = cookie.get("mango_width")
    return width is not None and width.value.isdigit() and int(width.value) < NARROW_WINDOW_PX


def _session(request: gr.Request | None) -> str | None:
    """The browser session a request came from (None for a direct call, as the tests make)."""
    return getattr(request, "session_hash", None)


UPLOADS = ("inputs",)  # what a prediction is stale after: an upload or removal (a plot edit may be an example's)
EDITS = ("inputs", "plot")  # what a view is stale after: that, or a plot edit


def _tab(setting: str) -> str:
    """The tab a setting's slots belong to: both translation settings share one pair."""
    key = SETTINGS.get(setting, setting)
    return "translation" if key.startswith("translation") else key


def blank_attention(message: str) -> tuple:
    """The attention view with nothing in it: picker, row plot (saying ``message``), rollout, matrices, text."""
    return None, plots.empty_figure(message), None, None, ""


def blank_results() -> tuple:
    """The contributions view (bars, Integrated Gradients, likelihood, summary) and the sampling panel
    (image, readout), empty."""
    return plots.empty_figure("Click “Explain this output”."), None, None, "", None, ""


def default_query_token(runner: Runner) -> int:
    """The patch just below and right of the grid's centre: inside the room, not on a border."""
    return runner.t // 2 + runner.grid[1] // 2


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
    loaded.then(_wrap(_example_run(fn)), fn_inputs, outputs, api_name=f"{prefix}_run_example",
                api_visibility="undocumented", **_prediction_events(outputs))
    return examples


_EXAMPLE_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("example_run", default=False)


def _example_run(fn: Callable) -> Callable:
    """The prediction an example click runs, marked as such for `Replacements.pressed`."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _EXAMPLE_RUN.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _EXAMPLE_RUN.reset(token)

    return run


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
          api_visibility="undocumented", show_progress="hidden", trigger_mode="always_last", **LIGHT_EVENTS)


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
                a = _image_input(INPUT_LABELS["segmentation"][0], "segment-a")
                b = _image_input(INPUT_LABELS["segmentation"][1], "segment-b")
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
    run.click(_wrap(app.segment), [slot, a, b, opacity], outputs, api_name="segment", validator=app.check_inputs,
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
                a = _image_input(INPUT_LABELS[SETTINGS[first]][0], "translate-a")
                b = _image_input(INPUT_LABELS[SETTINGS[first]][1], "translate-b")
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
                a = _image_input(INPUT_LABELS["genre"][0], "genre-a")
                b = gr.Textbox(label="Plot", lines=9, placeholder="A few sentences about the film…", elem_id="genre-plot")
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
    """What app.py and the tests pass to launch(): the theme, CSS and script of app/page.py, the upload limit."""
    return dict(theme=theme(), css=CSS, head=HEAD, max_file_size=MAX_FILE_BYTES, show_error=False)


def build_demo(models: dict[str, LoadedModel] | None = None) -> gr.Blocks:
    """The whole app. ``models`` defaults to each slot's checkpoint (see app/checkpoints.py)."""
    gradio_fixes.apply()
    resources.limit_allocator()
    resources.set_torch_threads()
    models = models if models is not None else load_all(chosen_sources())
    app = MangoApp(models)
    with gr.Blocks(title="MANGO: see how two modalities fuse", delete_cache=(1800, 3600)) as demo:
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
