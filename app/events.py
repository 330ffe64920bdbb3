"""Every event handler of the page, bound to gradio's types (`MangoApp`), and what they share: the settings,
the input components, how a user's error becomes a message. `app.ui` lays the page out and wires these in;
`app.handlers` computes (no gradio).
"""

from __future__ import annotations

import contextvars
import functools
import html
import logging
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable

import gradio as gr
import pandas as pd

from . import examples as example_files
from . import landing, plots, ranges, resources, texts
from .checkpoints import LoadedModel
from .handlers import Runner
from .inputs import InputError, is_missing
from .page import UNPREDICTED
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


def _no_change(outputs: int) -> Any:
    """What a handler of ``outputs`` outputs returns to leave them all as they are."""
    return gr.update() if outputs == 1 else tuple(gr.update() for _ in range(outputs))


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
        (`_after_replaced_prediction`). ``skip``: no change, and nothing computed. A result let go holds the
        clear of the session's next upload or edit back until gradio has postprocessed it
        (`Replacements.lands`): the clear then reaches the page after it."""
        session = _session(request)
        unchanged = _no_change(outputs)

        def replaced(ask: Callable[..., bool]) -> bool:
            return inputs is not None and not ask(session, _tab(inputs[0]), a=inputs[1], b=inputs[2])

        ask = (functools.partial(self.replaced.pressed, by_example=_EXAMPLE_RUN.get(), from_page=_from_page(request))
               if pressed else self.replaced.holds)
        if skip or self._after_replaced_prediction(marker, session) or replaced(ask):
            if pressed and not skip:
                log.info("a press of inputs the slots no longer hold changed nothing (%s)", _tab(inputs[0]))
            return unchanged
        before = self.replaced.count(session, kinds)
        with plots.phone_layout(_is_phone(request)):
            result = compute()
        read = dict(tab=_tab(inputs[0]), slots={"a": inputs[1], "b": inputs[2]}) if inputs is not None else {}
        return result if self.replaced.lands(session, kinds, before, **read, on_landed=landing.on_landed) else unchanged

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
        click on an old word would query whatever word now sits at its position. No change when the server
        already holds this plot: an example's, told by the example itself (`slots_filled`). Its change event
        can run after the example's own prediction on a busy server, and wiped it."""
        cleared = (*self.inputs_replaced("genre", "The plot was edited"), [])
        told = self.replaced.replace(_session(request), "genre", "plot", on_landed=landing.on_landed, b=plot)
        return cleared if told else _no_change(len(cleared))

    def replaced_by_hand(self, setting: str, a: Any = None, b: Any = None, removed: str | None = None,
                         request: gr.Request | None = None) -> tuple:
        """An upload or removal by the user (``a``, ``b``: the tab's inputs as the event read them; ``removed``:
        the slot a removal emptied, which the event still reads as the old file): `inputs_replaced`, and
        what still runs, or still waits in the queue to run, on the old files returns no change (see
        `_unless_replaced`); the genre tab's word list is cleared too. No change when the event tells
        nothing new (`Replacements.replace`)."""
        genre = SETTINGS.get(setting, setting) == "genre"
        cleared = (*self.inputs_replaced(setting), *(([],) if genre else ()))
        slots = {"a": a, "b": b}
        if removed is not None:
            slots[removed] = None
        if genre:  # its plot is told by its own edits: the value here was read when the upload began, and an
            del slots["b"]  # upload takes long enough for the plot to be typed meanwhile
        # a press that overtook this event waits for it (`Replacements.pressed`): its result reaches the page
        # after this clear, not before it
        new = self.replaced.replace(_session(request), _tab(setting), "inputs", on_landed=landing.on_landed, **slots)
        return cleared if new else _no_change(len(cleared))

    def page_opened(self, request: gr.Request | None = None) -> None:
        """A new page's slots are empty. Told so, a press that overtakes the page's first uploads waits for
        their events (`Replacements.pressed`); untold, it ran at once, as an API call does, and the uploads'
        clears then wiped its result. A press that overtakes this event too waits for it, or for the uploads'."""
        self.replaced.opened(_session(request), ("segmentation", "translation", "genre"))

    def example_clicked(self, setting: str, request: gr.Request | None = None) -> None:
        self.replaced.example_clicked(_session(request), _tab(setting))

    def check_inputs(self, setting: str, a: Any, b: Any, request: gr.Request | None = None) -> list:
        """A prediction button's check, run before its press is queued: an empty slot, or a plot too short
        or too long, is told so beside itself, and the views already shown stay as they are (an error from
        the prediction would mark them "Error"). A press with a slot empty that left just before an
        example's files reached the page is told nothing: the example fills the slots and runs its own
        prediction (`Replacements.empty_for_good`). Every parameter is named: gradio hands the request
        only to a parameter it can place, never to one after ``*args`` (it came as None, and the session
        was unknown here)."""
        ok = gr.validate(True, "")
        if SETTINGS.get(setting, setting) not in self.runners:
            return [ok, ok, ok]  # the prediction says which settings there are
        runner = self.runner(setting)
        try:
            problems = runner.slot_problems(a, b)
            if (is_missing(a) or is_missing(b)) and not self.replaced.empty_for_good(
                    _session(request), _tab(setting), a=a, b=b):
                log.info("a press with a slot empty, just after an example's click, is left to the example (%s)",
                         _tab(setting))
                problems = {}
        except Exception:  # a bug: the prediction, which reads the inputs again, gives its message
            log.exception("the check of a press failed")
            problems = {}
        if problems:
            log.info("user error in check_inputs: %s", " ".join(" ".join(problems.values()).split()))
        return [ok, *(gr.validate(key not in problems, problems.get(key, "")) for key in ("a", "b"))]

    def check_segment_inputs(self, setting: str, a: Any, b: Any, opacity: Any,
                             request: gr.Request | None = None) -> list:
        """`check_inputs` for the segmentation button, whose inputs end with the overlay's opacity (nothing
        to check there)."""
        return [*self.check_inputs(setting, a, b, request), gr.validate(True, "")]

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


def _from_page(request: gr.Request | None) -> bool:
    """Whether an event came from a web page (a browser says where a POST comes from, its Origin) and not
    from an API client: a page also sends a load event (`MangoApp.page_opened`) and its uploads' events."""
    return bool((getattr(request, "headers", None) or {}).get("origin"))


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


_EXAMPLE_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("example_run", default=False)


def example_run(fn: Callable) -> Callable:
    """The prediction an example click runs, marked as such for `Replacements.pressed`."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _EXAMPLE_RUN.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _EXAMPLE_RUN.reset(token)

    return run


