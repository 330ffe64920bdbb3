"""The app in a real browser: Debian's Chromium driven by playwright (never `playwright install`).

Loads the page, runs each tab's first example, opens every view, clicks a patch and a word, and
saves a screenshot of each step (into $MANGO_SCREENSHOT_DIR when set, else a temporary folder).
Skips cleanly without /usr/bin/chromium or the playwright package.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(launched_app):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(launched_app[1], wait_until="load", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="RGB-D segmentation").wait_for(timeout=TIMEOUT_MS)
        page.errors = errors  # type: ignore[attr-defined]
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("MANGO_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def shoot(page, shots: Path, name: str) -> None:
    page.wait_for_timeout(400)  # let plotly finish drawing
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def new_page(page) -> None:
    """The page loaded again: empty slots, and nothing left on it by the test before."""
    page.reload(wait_until="load")
    page.get_by_role("tab", name="RGB-D segmentation").wait_for(timeout=TIMEOUT_MS)


def error_marks(page) -> list[str]:
    """Where each "Error" mark on the page is (gradio's, on a component whose event raised): the component's
    elem_id, else its label, else a toast's whole text, else the classes around the mark."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => !e.childElementCount && e.textContent.trim() === 'Error')
        .map(e => { const b = e.closest('.block');
                   const label = b && b.querySelector('[data-testid=block-label], label');
                   const toast = e.closest('.toast-body');
                   return (b && b.id) || (label && label.textContent.trim())
                       || (toast && 'toast: ' + toast.textContent.trim().replace(/\\s+/g, ' '))
                       || e.parentElement.className; })""")


def plot_ready(page, elem_id: str, text: str | None = None):
    target = page.locator(f"#{elem_id} .js-plotly-plot")
    target.first.wait_for(timeout=TIMEOUT_MS)
    if text:
        page.locator(f"#{elem_id}").get_by_text(text).first.wait_for(timeout=TIMEOUT_MS)
    return target


def whole_value(dropdown) -> bool:
    """Whether a dropdown's value is drawn whole, clear of its arrow (which sits over the input's end)."""
    return dropdown.evaluate(
        "e => { const style = getComputedStyle(e), context = document.createElement('canvas').getContext('2d');"
        " context.font = style.font; const arrow = e.parentElement.querySelector('.icon-wrap');"
        " const end = arrow ? arrow.getBoundingClientRect().left : e.getBoundingClientRect().right;"
        " return e.getBoundingClientRect().left + parseFloat(style.paddingLeft)"
        " + context.measureText(e.value).width <= end + 1; }")


def announced(page, start: str) -> None:
    """A screen reader's status line (role=status, aria-live=polite) says a view is ready: gradio announced
    only errors, and results arrived in silence."""
    page.wait_for_function("start => { const s = document.querySelector('#mango-status[role=status][aria-live=polite]');"
                           " return s && s.textContent.startsWith(start); }", arg=start, timeout=TIMEOUT_MS)


def status_line(page) -> str:
    return page.evaluate("() => document.querySelector('#mango-status').textContent")


def said_from_now(page) -> None:
    """Keeps what the status line says from now on (`said`)."""
    page.evaluate("() => { window.mangoSaid = []; if (window.mangoListening) return; window.mangoListening = true;"
                  " const status = document.querySelector('#mango-status');"
                  " new MutationObserver(() => status.textContent && window.mangoSaid.push(status.textContent))"
                  ".observe(status, {childList: true, characterData: true, subtree: true}); }")


def said(page) -> list[str]:
    return page.evaluate("() => window.mangoSaid")


def view_done(page, elem_id: str) -> None:
    """The view's own request has ended (its progress hidden, not taken over by an event of hidden progress),
    and HEAD's script has said what it says after one."""
    page.wait_for_function("id => { const t = document.querySelector(`#${id} [data-testid=status-tracker]`);"
                           " return t && t.classList.contains('hide') && !t.classList.contains('hidden'); }",
                           arg=elem_id, timeout=TIMEOUT_MS)
    page.wait_for_timeout(600)


def open_views(page, shots: Path, prefix: str, name: str) -> None:
    views = page.locator(f"#{prefix}-views")
    views.get_by_role("tab", name="Modality contributions").click()
    page.locator(f"#{prefix}-explain").click()
    plot_ready(page, f"{prefix}-contrib-plot", "Shapley value")
    page.locator(f"#{prefix}-summary").get_by_text("Target:").wait_for(timeout=TIMEOUT_MS)
    announced(page, "Contributions ready")
    shoot(page, shots, f"{name}-2-contributions")
    views.get_by_role("tab", name="Latent sampling").click()
    page.locator(f"#{prefix}-sample").click()
    page.locator(f"#{prefix}-readout").get_by_text("Round-trip error").wait_for(timeout=TIMEOUT_MS)
    page.locator(f"#{prefix}-generated img").wait_for(timeout=TIMEOUT_MS)
    shoot(page, shots, f"{name}-3-sampling")
    assert whole_value(page.locator(f"#{prefix}-other input").first), "the example's name is cut under the arrow"
    page.locator(f"#{prefix}-interpolate").click()
    page.locator(f"#{prefix}-readout").get_by_text("t = 1.00").wait_for(timeout=TIMEOUT_MS)
    shoot(page, shots, f"{name}-4-interpolation")
    views.get_by_role("tab", name="Attention maps").click()


def test_page_tabs_examples_and_views(page, shots):
    shoot(page, shots, "0-page")
    # the status line is in the page from the start, empty (a live region inserted with its text is often
    # not read)
    assert page.evaluate("() => document.querySelector('#mango-status[role=status]')?.textContent") == ""

    # segmentation: run the first example, pick a patch, open every view
    page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
    page.locator("#segment-overlay img").first.wait_for(timeout=TIMEOUT_MS)
    attention = plot_ready(page, "segment-attention-plot", "picked")
    announced(page, "Attention view ready")  # after "Segmentation ready"
    # plotly's drag modes and its link out leave the Tab order (24 of 72 stops were modebar buttons)
    page.wait_for_function("() => [...document.querySelectorAll('#segment-attention-plot .modebar-btn')].filter("
                           "b => b.tabIndex === -1 || getComputedStyle(b).display === 'none').length === 3",
                           timeout=TIMEOUT_MS)
    # every class of the legend is in the table, none behind an inner scroll (it showed 5 of 7)
    page.locator("#segment-shares").get_by_text("rug", exact=True).wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#segment-shares").evaluate(
        "e => [...e.querySelectorAll('*')].every(x => x.scrollHeight <= x.clientHeight + 1"
        " || !['auto', 'scroll'].includes(getComputedStyle(x).overflowY))")
    picker = page.locator("#segment-picker img").first
    box = picker.bounding_box()
    # The picker is 528x278 px (rgb at x 0-255, depth at 272-527, images from y 22), drawn with
    # object-fit: scale-down; click the centre of depth patch (row 2, col 6).
    scale = min(1.0, box["width"] / 528, box["height"] / 278)  # object-fit: scale-down
    left, top = (box["width"] - 528 * scale) / 2, (box["height"] - 278 * scale) / 2
    picker.click(position={"x": left + (272 + 6.5 * 32) * scale, "y": top + (22 + 2.5 * 32) * scale})
    page.wait_for_function(
        "() => { const t = document.querySelector('#segment-attention-plot .gtitle');"
        " return t && t.textContent.includes('picked depth (row 2, col 6)'); }", timeout=TIMEOUT_MS)
    assert attention.count() == 1
    shoot(page, shots, "segmentation-1-attention")
    open_views(page, shots, "segment", "segmentation")

    # translation: an example of the second setting switches the checkpoint and the labels
    page.get_by_role("tab", name="Translation").click()
    page.get_by_text("SynthRooms scene 1 · depth + normal → rgb").first.click()
    page.locator("#translate-output img").first.wait_for(timeout=TIMEOUT_MS)
    plot_ready(page, "translate-attention-plot", "picked")
    assert page.get_by_text("Surface normals").first.is_visible()
    shoot(page, shots, "translation-1-attention")
    open_views(page, shots, "translate", "translation")

    # genre: an example, then a word as the query
    page.get_by_role("tab", name="Movie genre").click()
    page.get_by_text("Lantern Tide (Mystery, Drama)").first.click()
    plot_ready(page, "genre-chart", "sigmoid of each genre")
    plot_ready(page, "genre-attention-plot", "picked")
    # a screen reader gets each chart in words, not its SVG's labels in drawing order ("78% 68% … Sport War")
    page.wait_for_function("() => document.querySelector('#genre-chart .mango-chart-words')?.textContent"
                           ".startsWith('Genre probabilities')", timeout=TIMEOUT_MS)
    chart = page.locator("#genre-chart").aria_snapshot()
    assert "most likely first. Above the threshold" in chart and "20% 40%" not in chart and "Box Select" not in chart
    box = page.locator(".mango-readout textarea")
    assert box.evaluate("e => !e.disabled && e.readOnly")  # "unavailable" and out of the Tab order when disabled
    assert box.input_value() in chart  # the genres above their thresholds, as the chart's words say them
    page.locator("#genre-words").get_by_text("lighthouse", exact=True).first.click()
    page.locator("#genre-attention-plot .gtitle").get_by_text("lighthouse").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('#genre-attention-plot .mango-chart-words')?.textContent"
                           ".includes(\"receives the mix, plot token 18 'lighthouse'\")", timeout=TIMEOUT_MS)
    shoot(page, shots, "genre-1-attention")
    open_views(page, shots, "genre", "genre")

    page.get_by_role("tab", name="Ablations").click()
    page.get_by_role("button", name="Reload the table").wait_for(timeout=TIMEOUT_MS)
    shoot(page, shots, "ablations")
    assert not page.errors, page.errors  # no JavaScript errors on the way


def test_bad_input_shows_a_message_not_a_trace(page, shots):
    page.get_by_role("tab", name="Movie genre").click()
    page.locator("#genre-plot textarea").fill("")
    page.get_by_role("button", name="Predict genres").click()
    page.locator("#genre-plot").get_by_text("The plot is empty").wait_for(timeout=TIMEOUT_MS)  # beside the plot
    assert page.get_by_text("Traceback").count() == 0
    shoot(page, shots, "genre-bad-input")


def test_overlay_opacity_preview_and_units(page, shots, scene):
    page.get_by_role("tab", name="RGB-D segmentation").click()
    assert page.get_by_text("a 16-bit PNG holds millimetres").first.is_visible()

    def legend_and_table() -> tuple[list[str], list[str]]:
        legend = page.locator("#segment-overlay .legend-item").all_inner_texts()
        cells = [line.strip() for line in page.locator("#segment-shares").inner_text().splitlines() if line.strip()]
        classes = cells[cells.index("share of pixels (%)") + 1 :: 2] if "share of pixels (%)" in cells else []
        return legend, classes

    old_classes = legend_and_table()[1]  # an earlier test's prediction (scene 1: other classes), if any
    page.get_by_text("SynthRooms scene 2 (seed 23)").first.click()
    preview = page.locator("#segment-preview")
    preview.locator("img").first.wait_for(timeout=TIMEOUT_MS)
    preview.get_by_text("dark blue near, yellow far").first.wait_for(timeout=TIMEOUT_MS)  # 16-bit depth, colourised
    masks = page.locator("#segment-overlay .image-container img:not(.base-image)")
    masks.first.wait_for(timeout=TIMEOUT_MS)

    # an earlier test's overlay may still be on screen, and the two outputs arrive one after the other:
    # wait (bounded) for this scene's classes in the table, and its overlay, before comparing them. The
    # table's text changes while it is pending too, with the old classes still in it: waiting for "any
    # change" let a loaded machine compare the earlier scene's table and legend
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    legend, classes = legend_and_table()
    while (not classes or classes == old_classes or classes != [label.strip() for label in legend]) \
            and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        legend, classes = legend_and_table()
    assert legend and len(legend) == len(set(legend)) and classes != old_classes  # this scene's prediction arrived
    assert classes == [label.strip() for label in legend]  # the table's classes, in its order
    # the slider re-blends the prediction the table describes
    before = masks.first.get_attribute("src")
    box = page.locator("#segment-opacity input[type=number]")
    box.fill("0.9")
    box.press("Enter")
    page.wait_for_function(
        "(old) => { const m = document.querySelector('#segment-overlay .image-container img:not(.base-image)');"
        " return m && m.src !== old; }",
        arg=before, timeout=TIMEOUT_MS)
    assert page.locator("#segment-overlay .legend-item").all_inner_texts() == legend
    # the slider's value is the true opacity: gradio's own 85 % on the masks is undone by the app's CSS
    assert masks.first.evaluate("m => getComputedStyle(m).opacity") == "1"
    shoot(page, shots, "segmentation-5-opacity")
    # another scene's photo, uploaded by hand: the old prediction and its views go, so nothing shown
    # describes other files than those in the slots
    page.locator("#segment-a input[type=file]").set_input_files(scene.file("rgb"))
    page.locator("#segment-notices").get_by_text("New input: press “Segment”").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('#segment-overlay .image-container img')",
                           timeout=TIMEOUT_MS)
    assert page.locator("#segment-overlay .legend-item").count() == 0 and legend_and_table()[1] == []
    assert page.locator("#segment-attention-plot").get_by_text("New input").count() > 0
    shoot(page, shots, "segmentation-6-new-input")


def test_an_explanation_still_computing_when_the_input_changes_never_lands(page, shots, scene, other_scene):
    page.get_by_role("tab", name="RGB-D segmentation").click()
    page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
    plot_ready(page, "segment-attention-plot", "picked")
    views = page.locator("#segment-views")
    views.get_by_role("tab", name="Modality contributions").click()
    page.locator("#segment-explain").click()  # about 1-3 s of Shapley values and Integrated Gradients
    page.wait_for_timeout(300)
    # another photo: the example's own one, uploaded again, changes nothing (the explanation is of it)
    page.locator("#segment-a input[type=file]").set_input_files(other_scene.file("rgb"))
    page.locator("#segment-notices").get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(6000)  # the explanation would have landed by now
    assert page.locator("#segment-summary").inner_text().strip() == ""
    assert page.locator("#segment-contrib-plot").get_by_text("Shapley value").count() == 0
    shoot(page, shots, "segmentation-7-explain-discarded")
    views.get_by_role("tab", name="Attention maps").click()


def test_an_explanation_on_its_way_when_an_upload_is_told_lands_before_the_upload_s_clear(
        page, shots, launched_app, scene, other_scene, monkeypatch):
    # the explanation has passed its last check when the upload is told, and gradio still postprocesses
    # it (its figures; made to take until the upload is told, and a little longer): the upload's clear must
    # reach the page after it, not before (it landed beside the cleared views: a flake of the test above)
    import asyncio
    import threading

    from app.events import UPLOADS

    demo = launched_app[0]
    app = demo.mango_app
    told: dict[str, int] = {}
    entered = threading.Event()
    real_replace, real_postprocess = app.replaced.replace, demo.postprocess_data

    def replace(session, *args, **kwargs) -> bool:
        told.setdefault(session, app.replaced.count(session, UPLOADS))
        return real_replace(session, *args, **kwargs)

    async def postprocess(block_fn, predictions, state):
        if block_fn.api_name == "segment_contributions":
            entered.set()
            for _ in range(TIMEOUT_MS // 50):
                if any(app.replaced.count(session, UPLOADS) != count for session, count in told.items()):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the upload's clear, not held back, would be on the page by now
        return await real_postprocess(block_fn, predictions, state)

    page.get_by_role("tab", name="RGB-D segmentation").click()
    page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
    plot_ready(page, "segment-attention-plot", "picked")
    views = page.locator("#segment-views")
    views.get_by_role("tab", name="Modality contributions").click()
    monkeypatch.setattr(app.replaced, "replace", replace)
    monkeypatch.setattr(demo, "postprocess_data", postprocess)
    page.locator("#segment-explain").click()
    assert entered.wait(TIMEOUT_MS / 1000), "the explanation never reached its postprocessing"
    page.locator("#segment-a input[type=file]").set_input_files(other_scene.file("rgb"))
    page.locator("#segment-notices").get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(2500)  # sent after the clear, the explanation would be on the page by now
    assert page.locator("#segment-summary").inner_text().strip() == ""
    assert page.locator("#segment-contrib-plot").get_by_text("Shapley value").count() == 0
    shoot(page, shots, "segmentation-7b-explain-on-its-way-cleared")
    views.get_by_role("tab", name="Attention maps").click()


def fill_lane(monkeypatch, target: object, method: str, submit, places: int):
    """Other users fill a queue lane: ``places`` requests made by ``submit()``, each held inside
    ``target.method`` until the returned function lets them finish."""
    import threading

    real, entered, release = getattr(target, method), threading.Semaphore(0), threading.Event()

    def held(*args, **kwargs):
        entered.release()
        release.wait(TIMEOUT_MS / 1000)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, method, held)
    jobs = [submit() for _ in range(places)]
    for _ in jobs:
        assert entered.acquire(timeout=TIMEOUT_MS / 1000), "the other users' requests never started"

    def finish() -> None:
        release.set()
        monkeypatch.setattr(target, method, real)
        for job in jobs:
            job.result(timeout=TIMEOUT_MS / 1000)

    return finish


def test_what_an_upload_overtakes_in_the_queue_never_lands(page, shots, launched_app, client, scene, other_scene,
                                                            monkeypatch):
    # on a busy Space a pressed button's prediction or explanation can wait in the queue for seconds; an
    # upload meanwhile clears the views at once, and what was asked of the old files must not land beside it
    from gradio_client import handle_file

    from app.ui import HEAVY_EVENTS, LIGHT_EVENTS

    app = launched_app[0].mango_app
    runner = app.runner("segmentation")
    page.reload(wait_until="load")  # empty slots, and no notice left by the test before
    page.get_by_role("tab", name="RGB-D segmentation").click()
    notices = page.locator("#segment-notices")
    overlay = page.locator("#segment-overlay .image-container img")
    segment = page.get_by_role("button", name="Segment", exact=True)
    # files uploaded by hand are predicted: the slots hold what the uploads named (pressed before both
    # uploads have finished, gradio asks for a retry in a toast)
    page.locator("#segment-a input[type=file]").set_input_files(scene.file("rgb"))
    page.locator("#segment-b input[type=file]").set_input_files(scene.file("depth"))
    for slot in ("a", "b"):
        page.locator(f"#segment-{slot} img").first.wait_for(timeout=TIMEOUT_MS)
    notices.get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    segment.click()
    overlay.first.wait_for(timeout=TIMEOUT_MS)
    asked: list[str] = []  # each handler of the page's inputs asks whether the slots still hold them

    def counted(method: str) -> None:
        real = getattr(app.replaced, method)

        def ask(session, *args, **kwargs) -> bool:
            answer = real(session, *args, **kwargs)  # a press may wait for an upload's event first
            asked.append(session)
            return answer

        monkeypatch.setattr(app.replaced, method, ask)

    counted("holds")
    counted("pressed")
    rgb, depth = handle_file(other_scene.file("rgb")), handle_file(other_scene.file("depth"))

    def overtaken(click, upload: str, places: int, lane_method: str, submit) -> None:
        """``click`` waits behind a full lane; ``upload`` replaces the rgb; then the lane is let go."""
        finish = fill_lane(monkeypatch, runner, lane_method, submit, places)
        try:
            click()
            page.wait_for_timeout(500)
            page.locator("#segment-a input[type=file]").set_input_files(upload)
            notices.get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
            waited = len(asked)
        finally:
            finish()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(asked) == waited and time.monotonic() < deadline:  # the page's request has run
            page.wait_for_timeout(200)
        page.wait_for_timeout(1500)  # its answer would have reached the page by now

    announced(page, "Attention view ready")  # what the prediction before brought has been said
    said_from_now(page)
    overtaken(segment.click, other_scene.file("rgb"), LIGHT_EVENTS["concurrency_limit"], "segment",
              lambda: client.submit(rgb, depth, api_name="/segment"))
    view_done(page, "segment-overlay")
    assert overlay.count() == 0, "the old files' prediction landed beside the new upload"
    assert notices.get_by_text("New input").count() > 0
    # a screen reader hears the notice that asks for a new prediction, never "Segmentation ready" (the upload's
    # clear hides the view's progress before its notice arrives, and the press's own end comes seconds later)
    assert said(page) and said(page)[-1] == notices.inner_text().strip(), said(page)
    assert not any(line.startswith("Segmentation ready") for line in said(page)), said(page)
    shoot(page, shots, "segmentation-8-overtaken-prediction-discarded")
    # pressed again, the button predicts the files now in the slots; then an explanation is overtaken
    segment.click()
    overlay.first.wait_for(timeout=TIMEOUT_MS)
    views = page.locator("#segment-views")
    views.get_by_role("tab", name="Modality contributions").click()
    target = runner.target_choices(None, None)[0][1]
    said_from_now(page)
    overtaken(page.locator("#segment-explain").click, scene.file("rgb"), HEAVY_EVENTS["concurrency_limit"],
              "contributions", lambda: client.submit(rgb, depth, target, 8, api_name="/segment_contributions"))
    view_done(page, "segment-contrib-plot")
    assert page.locator("#segment-summary").inner_text().strip() == ""
    assert page.locator("#segment-contrib-plot").get_by_text("Shapley value").count() == 0
    assert said(page) and said(page)[-1].startswith("New input: press “Segment”"), said(page)
    assert not any(line.startswith("Contributions ready") for line in said(page)), said(page)
    views.get_by_role("tab", name="Attention maps").click()


def test_a_button_pressed_right_after_an_upload_predicts_it(page, shots, launched_app, scene, other_scene,
                                                             monkeypatch):
    # the press can reach the server before the upload's own event (here it is made to): it must wait for
    # it, not be refused (the first press was dead), and the upload's clear must not wipe its result
    app = launched_app[0].mango_app
    told: list[dict] = []  # the slots each upload's event left, once told
    slow = threading.Event()
    real_replace = app.replaced.replace

    def replace(*args, **slots):
        if slow.is_set():
            time.sleep(1.0)
        answer = real_replace(*args, **slots)
        told.append(slots)
        return answer

    monkeypatch.setattr(app.replaced, "replace", replace)
    page.get_by_role("tab", name="RGB-D segmentation").click()
    notices = page.locator("#segment-notices")
    overlay = page.locator("#segment-overlay .image-container img")
    page.locator("#segment-a input[type=file]").set_input_files(other_scene.file("rgb"))
    page.locator("#segment-b input[type=file]").set_input_files(scene.file("depth"))
    notices.get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not any(slots.get("a") and slots.get("b") for slots in told):  # both uploads' events have been told
        assert time.monotonic() < deadline, told
        page.wait_for_timeout(100)
    slow.set()
    page.locator("#segment-b input[type=file]").set_input_files(other_scene.file("depth"))
    page.get_by_role("button", name="Segment", exact=True).click()
    overlay.first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)  # a clear after the prediction would have wiped it by now
    assert overlay.count() > 0 and notices.get_by_text("New input").count() == 0
    shoot(page, shots, "segmentation-9-pressed-right-after-an-upload")


def upload_both_and_segment_at_once(page, scene) -> None:
    """An rgb and its depth uploaded, and Segment pressed right after: its overlay comes, and stays."""
    notices = page.locator("#segment-notices")
    overlay = page.locator("#segment-overlay .image-container img")
    page.locator("#segment-a input[type=file]").set_input_files(scene.file("rgb"))
    page.locator("#segment-b input[type=file]").set_input_files(scene.file("depth"))
    page.get_by_role("button", name="Segment", exact=True).click()
    overlay.first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(2000)  # a clear after the prediction would have wiped it by now
    assert overlay.count() > 0 and notices.get_by_text("New input").count() == 0


@pytest.mark.parametrize("late", ["events", "clears"])
def test_a_new_page_s_first_press_right_after_its_uploads_predicts_them(page, shots, launched_app, scene,
                                                                         monkeypatch, late):
    # a new page's first uploads, overtaken by the press (here they are made to be): the press waits for
    # them, and their clears land before its result instead of wiping it, even when a clear is slow on its
    # way (here it is made to be, after its event was told): the press's result waits for it
    app = launched_app[0].mango_app
    opened = threading.Event()
    real_opened = app.replaced.opened
    monkeypatch.setattr(app.replaced, "opened", lambda *a, **kw: real_opened(*a, **kw) or opened.set())
    # a new page: the test before left an overlay, which the wait below took for this press's prediction
    new_page(page)
    # the page's load event has told the server its slots are empty (a fixed 0.5 s was too short in CI;
    # a load event that arrives later than the first press is not this test's race)
    assert opened.wait(TIMEOUT_MS / 1000)
    real_replace = app.replaced.replace

    def late_replace(*args, **kwargs):
        if late == "events":
            time.sleep(0.6)
        told = real_replace(*args, **kwargs)
        if late == "clears":
            time.sleep(1.0)
        return told

    monkeypatch.setattr(app.replaced, "replace", late_replace)
    upload_both_and_segment_at_once(page, scene)


def test_a_new_page_s_first_press_ahead_of_its_load_event_predicts_its_uploads(page, launched_app, scene,
                                                                             monkeypatch):
    # ...and when the press reaches the server before the page's load event too (here it is made to): the
    # press, which a browser's Origin header tells from an API call, waits for the page to tell its slots
    app = launched_app[0].mango_app
    pressing, opened = threading.Event(), threading.Event()
    real_pressed, real_opened = app.replaced.pressed, app.replaced.opened

    def pressed(*args, **kwargs):
        pressing.set()
        return real_pressed(*args, **kwargs)

    def late_opened(*args, **kwargs):
        pressing.wait(TIMEOUT_MS / 1000)
        time.sleep(0.3)
        real_opened(*args, **kwargs)
        opened.set()

    monkeypatch.setattr(app.replaced, "pressed", pressed)
    monkeypatch.setattr(app.replaced, "opened", late_opened)
    real_replace = app.replaced.replace

    def late_replace(*args, **kwargs):  # the uploads' events come after the load event, late too
        opened.wait(TIMEOUT_MS / 1000)
        time.sleep(0.6)
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(app.replaced, "replace", late_replace)
    new_page(page)
    upload_both_and_segment_at_once(page, scene)
    assert opened.is_set()


def test_a_poster_and_a_plot_given_by_hand_are_predicted(page, shots, launched_app, film, monkeypatch):
    # the poster's upload event reads the plot box when the upload begins, and may reach the server after
    # the plot typed meanwhile (here it is made to): the plot must still count as the one the slots
    # hold, or the prediction would change nothing
    app = launched_app[0].mango_app
    real_replace = app.replaced.replace
    monkeypatch.setattr(app.replaced, "replace", lambda session, tab, kind, **slots: (
        time.sleep(1.0) if kind == "inputs" else None) or real_replace(session, tab, kind, **slots))
    page.get_by_role("tab", name="Movie genre").click()
    page.locator("#genre-a input[type=file]").set_input_files(film.poster)
    page.locator("#genre-plot textarea").fill(film.plot)
    plot_ready(page, "genre-chart", "New input")  # the upload's clear, after the plot's
    page.get_by_role("button", name="Predict genres").click()
    plot_ready(page, "genre-chart", "Drama")
    plot_ready(page, "genre-attention-plot", "picked")
    shoot(page, shots, "genre-6-by-hand")


def test_switching_the_setting_by_hand_clears_the_old_inputs_and_views(page, shots):
    page.get_by_role("tab", name="Translation").click()
    page.get_by_text("SynthRooms scene 1 · shade + texture → rgb").first.click()
    page.locator("#translate-output img").first.wait_for(timeout=TIMEOUT_MS)
    plot_ready(page, "translate-attention-plot", "picked shade")
    assert page.locator("#translate-a img").count() > 0
    page.get_by_label("depth + normal → rgb").check()
    page.locator("#translate-notices").get_by_text("Switched to").wait_for(timeout=TIMEOUT_MS)
    page.locator("#translate-attention-plot").get_by_text("Run a prediction").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)  # a view recomputed on the old files would have arrived by now
    assert page.locator("#translate-output img").count() == 0
    assert page.locator("#translate-a img").count() == 0 and page.locator("#translate-b img").count() == 0
    assert page.locator("#translate-attention-plot").get_by_text("picked").count() == 0
    assert page.locator(".toast-body").count() == 0 and page.get_by_text("Surface normals").first.is_visible()
    shoot(page, shots, "translation-5-setting-switched")
    # an example of the other setting switches back and keeps its own files
    page.get_by_text("SynthRooms scene 2 · shade + texture → rgb").first.click()
    page.locator("#translate-output img").first.wait_for(timeout=TIMEOUT_MS)
    plot_ready(page, "translate-attention-plot", "picked shade")
    assert page.locator("#translate-a img").count() > 0 and page.locator(".toast-body").count() == 0


def test_editing_the_plot_clears_the_old_words(page, shots):
    page.get_by_role("tab", name="Movie genre").click()
    page.get_by_text("Lantern Tide (Mystery, Drama)").first.click()
    words = page.locator("#genre-words")
    words.get_by_text("lighthouse", exact=True).first.wait_for(timeout=TIMEOUT_MS)
    page.locator("#genre-plot textarea").fill("A cheerful baker opens a flower shop and falls for the florist next door.")
    page.locator("#genre-attention-plot").get_by_text("The plot was edited").first.wait_for(timeout=TIMEOUT_MS)
    assert words.get_by_text("lighthouse", exact=True).count() == 0
    # the old plot's genre chart goes too: it would sit beside views computed on the new plot
    page.locator("#genre-chart").get_by_text("The plot was edited").first.wait_for(timeout=TIMEOUT_MS)
    shoot(page, shots, "genre-5-plot-edited")
    page.get_by_role("button", name="Predict genres").click()
    words.get_by_text("shop", exact=True).first.click()  # the new plot's words, and a click queries the one clicked
    page.locator("#genre-attention-plot .gtitle").get_by_text("'shop'").first.wait_for(timeout=TIMEOUT_MS)


def test_error_toasts_show_once_and_close_on_a_tab_switch(page, shots):
    new_page(page)
    page.locator("#segment-views").get_by_role("tab", name="Modality contributions").click()
    page.locator("#segment-explain").click()
    page.locator(".toast-body").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)  # a second toast, if any, has arrived by now
    assert page.locator(".toast-body").count() == 1
    assert "Both inputs are missing" in page.locator(".toast-body").first.inner_text()
    shoot(page, shots, "segmentation-error-toast")
    page.get_by_role("tab", name="Movie genre").click()
    page.wait_for_timeout(500)
    assert page.locator(".toast-body").count() == 0


def test_a_press_after_a_removal_says_what_is_missing_beside_the_slot(page, shots):
    # a removal's event reads the removed file as it still was: the server held the old file, refused the
    # press of the emptied slot as stale, and the first press did nothing at all. Now the button's own check
    # tells the emptied slot, beside it, and leaves the views as they are (a toast, with the picture marked
    # "Error", said it before)
    new_page(page)
    page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
    page.locator("#segment-overlay img").first.wait_for(timeout=TIMEOUT_MS)
    page.locator("#segment-b button[aria-label='Remove Image']").first.click()
    page.locator("#segment-notices").get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Segment", exact=True).click()
    page.locator("#segment-b").get_by_text("The depth is missing: upload one, or click an example.").wait_for(
        timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert page.locator("#segment-a").get_by_text("is missing").count() == 0
    assert page.get_by_text("Error", exact=True).count() == 0 and page.locator(".toast-body").count() == 0, \
        error_marks(page)
    shoot(page, shots, "segmentation-missing-after-removal")
    # an example fills the slot, and the message goes
    page.get_by_text("SynthRooms scene 2 (seed 23)").first.click()
    page.locator("#segment-b").get_by_text("is missing").wait_for(state="detached", timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Movie genre").click()
    page.get_by_text("Lantern Tide (Mystery, Drama)").first.click()
    # the example's own prediction, before the removal ("Genre probabilities" is the empty chart's text too)
    plot_ready(page, "genre-chart", "sigmoid of each genre")
    page.locator("#genre-a button[aria-label='Remove Image']").first.click()
    page.locator("#genre-chart").get_by_text("New input").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Predict genres").click()
    page.locator("#genre-a").get_by_text("The poster is missing").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert page.get_by_text("Error", exact=True).count() == 0 and page.locator(".toast-body").count() == 0, \
        error_marks(page)


def test_a_press_s_message_beside_an_emptied_slot_stays_while_the_light_lane_is_busy(page, shots, launched_app,
                                                                                     client, scene, monkeypatch):
    # every event whose inputs hold a slot rewrites the slot's status when it ends, and with it the message
    # a press's check left there: the removal's preview, waiting behind others' predictions in the light
    # lane, ended after the press and took the message away (most likely why the test above failed once,
    # beside two CPU hogs: no message and no toast)
    from gradio_client import handle_file

    from app.ui import LIGHT_EVENTS

    runner = launched_app[0].mango_app.runner("segmentation")
    new_page(page)
    page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
    plot_ready(page, "segment-attention-plot", "picked")  # the example's views have run
    rgb, depth = handle_file(scene.file("rgb")), handle_file(scene.file("depth"))
    message = page.locator("#segment-b").get_by_text("The depth is missing: upload one, or click an example.")
    finish = fill_lane(monkeypatch, runner, "segment", lambda: client.submit(rgb, depth, api_name="/segment"),
                       LIGHT_EVENTS["concurrency_limit"])
    try:
        page.locator("#segment-b button[aria-label='Remove Image']").first.click()
        page.locator("#segment-notices").get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Segment", exact=True).click()
        message.wait_for(timeout=TIMEOUT_MS)
    finally:
        finish()
    page.wait_for_timeout(1500)  # what waited in the lane has run, and its end reached the page
    assert message.count() == 1


def test_an_empty_press_on_a_fresh_page_is_told_beside_each_slot(page, shots):
    page.reload(wait_until="load")
    page.get_by_role("tab", name="Movie genre").click()
    button = page.get_by_role("button", name="Predict genres")
    button.wait_for(timeout=TIMEOUT_MS)
    button.click()  # told at once (`test_an_empty_press_is_told_at_once...` times it): it waited 2 s for an example
    page.locator("#genre-plot").get_by_text("The plot is empty").wait_for(timeout=TIMEOUT_MS)
    page.locator("#genre-a").get_by_text("The poster is missing").wait_for(timeout=TIMEOUT_MS)
    # a screen reader hears the messages (gradio only draws them), not "Genre prediction ready"
    announced(page, "The poster is missing: upload one, or click an example. The plot is empty")
    assert "ready" not in status_line(page)
    assert page.get_by_text("Error", exact=True).count() == 0 and page.locator(".toast-body").count() == 0, \
        error_marks(page)
    shoot(page, shots, "genre-empty-press")


def test_samples_from_the_prior_on_a_fresh_page_are_said_ready(page, shots, scene):
    # the one view drawn without the tab's inputs: "Pictures ready" is said though both slots are empty,
    # and after an upload's clear (whose notice asks for a prediction) too
    new_page(page)
    page.locator("#segment-views").get_by_role("tab", name="Latent sampling").click()
    page.locator("#segment-sample").click()
    page.locator("#segment-generated img").wait_for(timeout=TIMEOUT_MS)
    announced(page, "Pictures ready")
    page.locator("#segment-a input[type=file]").set_input_files(scene.file("rgb"))
    page.locator("#segment-notices").get_by_text("New input").wait_for(timeout=TIMEOUT_MS)
    said_from_now(page)
    page.wait_for_timeout(2000)  # the same words within 2 s are said once (one view's events in a row)
    page.locator("#segment-sample").click()
    page.locator("#segment-generated img").wait_for(timeout=TIMEOUT_MS)
    view_done(page, "segment-generated")
    assert said(page) and said(page)[-1].startswith("Pictures ready"), said(page)
    page.locator("#segment-views").get_by_role("tab", name="Attention maps").click()


def test_tabbing_past_a_view_control_on_a_fresh_page_raises_no_error(page, shots):
    # gradio's dropdown fires .input when it loses focus unchanged: with nothing uploaded this said
    # "Both inputs are missing" to someone who had only pressed Tab
    new_page(page)
    layer = page.locator("#segment-views").get_by_role("combobox").first
    layer.focus()
    page.keyboard.press("Tab")
    page.wait_for_timeout(2500)  # the old error arrived within a second
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    # nothing was drawn, so a screen reader is told of nothing (it was "Attention view ready")
    assert status_line(page) == ""
    # its list, opened by a click, closes when Tab leaves it (gradio's stayed open over the next line);
    # choosing with the mouse or the keyboard still works
    options = page.locator("#segment-views ul[role=listbox]")
    layer.click()
    options.first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.keyboard.press("Tab")
    options.first.wait_for(state="hidden", timeout=5000)
    layer.click()
    layer.fill("")
    options.first.get_by_role("option").nth(2).click()
    options.first.wait_for(state="hidden", timeout=5000)
    assert layer.input_value().startswith("block 1 · layer 3")
    layer.click()
    layer.fill("block 1 · layer 4")  # typed, as gradio's filterable dropdown allows, then chosen by the keyboard
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    options.first.wait_for(state="hidden", timeout=5000)
    assert layer.input_value().startswith("block 1 · layer 4")
    # a slider reached by the keyboard shows that it has the focus, as buttons and tabs do
    opacity = page.locator("#segment-opacity input[type=range]").first
    page.locator("#segment-opacity input[type=number]").first.focus()
    for _ in range(4):  # the number box, its reset button, then the slider
        page.keyboard.press("Tab")
        if opacity.evaluate("e => e === document.activeElement"):
            break
    assert opacity.evaluate("e => e === document.activeElement && getComputedStyle(e).outlineStyle === 'solid'")


def test_tabs_and_radios_take_the_arrow_keys(page, shots):
    # gradio's tabs took Tab and Enter only, and gave each input of a radio its own name: arrows did nothing
    page.reload(wait_until="load")
    first = page.get_by_role("tab", name="RGB-D segmentation")
    first.wait_for(timeout=TIMEOUT_MS)
    chosen = "() => [document.activeElement.textContent.trim(), document.querySelector('#main-tabs [role=tab]" \
             "[aria-selected=true]').textContent.trim()]"
    first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate(chosen) == ["Translation", "Translation"]
    page.keyboard.press("End")
    assert page.evaluate(chosen) == ["About & API", "About & API"]
    page.keyboard.press("ArrowRight")  # round to the first
    assert page.evaluate(chosen) == ["RGB-D segmentation", "RGB-D segmentation"]
    stops = "() => [...document.querySelectorAll('#main-tabs [role=tab]')].filter(t => t.closest('[role=tablist]')" \
            " === document.querySelector('#main-tabs [role=tablist]')).map(t => t.tabIndex)"
    assert page.evaluate(stops) == [0, -1, -1, -1, -1]  # a roving tabindex: the open tab alone is a Tab stop
    page.keyboard.press("Tab")  # into the open panel, not onto the next tab
    assert page.evaluate("() => document.activeElement.getAttribute('role')") != "tab"
    page.get_by_role("tab", name="Movie genre").click()  # a click moves the stop too
    page.wait_for_function("() => document.querySelector('#main-tabs [role=tab][aria-selected=true]').tabIndex === 0",
                           timeout=TIMEOUT_MS)
    assert page.evaluate(stops) == [-1, -1, 0, -1, -1]
    first.click()
    radios = page.locator("#segment-views input[type=radio]")
    page.wait_for_function("() => { const r = document.querySelectorAll('#segment-views input[type=radio]');"
                           " return r.length === 2 && r[0].name === r[1].name; }", timeout=TIMEOUT_MS)
    radios.first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert radios.evaluate_all("rs => rs.map(r => r.checked)") == [False, True]
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(300)
    assert radios.evaluate_all("rs => rs.map(r => r.checked)") == [True, False]
    assert radios.evaluate_all("rs => rs[0].name === rs[1].name")  # gradio renames them on each change
    page.keyboard.press("Tab")  # one Tab stop for the group: on to the query token
    assert page.evaluate("() => document.activeElement.type") == "number"
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    assert not page.errors, page.errors


def test_gradio_s_markup_that_axe_flags_is_mended(page, shots):
    page.get_by_role("tab", name="RGB-D segmentation").click()
    page.wait_for_function("() => document.querySelectorAll('button.upload-container').length >= 2", timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)
    mended = page.evaluate("() => [document.querySelectorAll('div.empty[aria-label]:not([role])').length,"
                           " document.querySelectorAll('button.upload-container[aria-label]').length,"
                           " [...document.querySelectorAll('footer img')].filter(i => i.alt).length]")
    assert mended == [0, 0, 0]  # axe: aria-prohibited-attr, label-content-name-mismatch, image-redundant-alt
    assert "Click to Upload" in page.locator("button.upload-container").first.aria_snapshot()


def test_a_phone_sees_every_task_and_whole_controls(page, shots):
    # at 390 px gradio used to hide four of the five tasks behind "…", cut the layer dropdown's
    # "block 1 · layer 1 · MMCA A→B" to "block 1 · layer", cut an empty plot's message at both ends and
    # squeezed the class table to two half-hidden columns
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        new_page(page)
        page.wait_for_timeout(1000)
        main_tabs = page.locator("#main-tabs [role='tablist']").first
        assert main_tabs.get_by_role("tab").all_inner_texts() == [
            "RGB-D segmentation", "Translation", "Movie genre", "Ablations", "About & API"]
        assert page.get_by_label("More tabs").count() == 0
        layer = page.locator("#segment-views").get_by_role("combobox").first
        assert whole_value(layer), "the layer's name is cut"
        message = page.locator("#segment-attention-plot .annotation-text").first
        box, plot = message.bounding_box(), page.locator("#segment-attention-plot .js-plotly-plot").bounding_box()
        assert box and plot and plot["x"] <= box["x"] and box["x"] + box["width"] <= plot["x"] + plot["width"]
        shares = page.locator("#segment-shares").bounding_box()
        assert shares and shares["width"] >= 240, "the class table is not squeezed beside the notices"
        # with a prediction's notices too: they went beside the table, squeezed to a few letters per line
        page.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
        notices = page.locator("#segment-notices")
        notices.get_by_text("Inputs are resized").wait_for(timeout=TIMEOUT_MS)
        shares, said = page.locator("#segment-shares").bounding_box(), notices.bounding_box()
        assert shares and said and shares["width"] >= 300 and said["width"] >= 300, (shares, said)
        header = page.locator("#segment-shares th").nth(1)
        assert header.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the column's name is cut"
        page.get_by_role("tab", name="Translation").click()
        output = page.locator("#translate-output").bounding_box()
        assert output and output["width"] >= 280, "the translated picture keeps a readable width"
        shoot(page, shots, "phone")
    finally:
        page.set_viewport_size({"width": 1440, "height": 1000})


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")


def genre_example_in(context, url: str):
    """A new page of ``context`` (another window size or device) with the genre tab's first example run."""
    opened = context.new_page()
    opened.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    opened.get_by_role("tab", name="Movie genre").click()
    opened.get_by_text("Lantern Tide (Mystery, Drama)").first.click()
    return opened


def test_a_narrow_desktop_window_gets_the_phone_s_figures(page, shots):
    # a desktop zoomed to 200 % is 683 px wide; its user agent is a desktop's, so it got the desktop
    # figures, and plotly cut their titles at the figure's edge (a caveat included)
    context = page.context.browser.new_context(viewport={"width": 683, "height": 900})
    try:
        narrow = genre_example_in(context, page.url)
        plot_ready(narrow, "genre-rollout-plot", "Rollout")
        narrow.wait_for_timeout(500)
        for elem_id in ("genre-attention-plot", "genre-rollout-plot", "genre-matrix-plot"):
            figure = narrow.locator(f"#{elem_id} .js-plotly-plot").first.bounding_box()
            title = narrow.locator(f"#{elem_id} .gtitle").first.bounding_box()
            assert figure and title and title["x"] + title["width"] <= figure["x"] + figure["width"], elem_id
        narrow.screenshot(path=str(shots / "narrow-genre.png"), full_page=True)
    finally:
        context.close()


def test_a_phone_gets_figures_drawn_for_its_width(page, shots):
    from app import plots

    # plotly neither wraps titles nor restacks subplots: at 390 px the titles ran off both edges, a
    # figure's two-line label covered its title, and eight words per row overlapped in a 110 px panel
    context = page.context.browser.new_context(viewport={"width": 390, "height": 844}, user_agent=IPHONE,
                                               is_mobile=True, has_touch=True)
    try:
        phone = genre_example_in(context, page.url)
        plot_ready(phone, "genre-chart", "Genre probabilities")
        plot_ready(phone, "genre-attention-plot", "picked")
        plot_ready(phone, "genre-matrix-plot", "rollout")
        phone.wait_for_timeout(500)
        attention = phone.locator("#genre-attention-plot")
        poster = attention.locator(".annotation-text", has_text="poster").first.bounding_box()
        words = attention.locator(".annotation-text", has_text="plot").first.bounding_box()
        assert poster and words and words["y"] > poster["y"] + 200, "the poster and the plot are not stacked"
        for elem_id in ("genre-chart", "genre-attention-plot", "genre-rollout-plot", "genre-matrix-plot"):
            figure = phone.locator(f"#{elem_id} .js-plotly-plot").first.bounding_box()
            title = phone.locator(f"#{elem_id} .gtitle").first.bounding_box()
            label = phone.locator(f"#{elem_id} label[data-testid='block-label']").first.bounding_box()
            assert figure and title and label
            assert figure["x"] <= title["x"] and title["x"] + title["width"] <= figure["x"] + figure["width"], elem_id
            assert label["y"] + label["height"] <= title["y"], f"{elem_id}: the label covers the title"
        phone.screenshot(path=str(shots / "phone-genre.png"), full_page=True)
        # a picture's label and buttons sit above it, not over the captions of its top row
        phone.locator("#genre-views").get_by_role("tab", name="Latent sampling").click()
        phone.locator("#genre-sample").click()
        strip = phone.locator("#genre-generated img").first
        strip.wait_for(timeout=TIMEOUT_MS)
        phone.wait_for_timeout(500)
        picture = strip.bounding_box()
        label = phone.locator("#genre-generated label[data-testid='block-label']").first.bounding_box()
        buttons = phone.locator("#genre-generated .icon-button-wrapper").first.bounding_box()
        assert picture and label and buttons
        assert label["y"] + label["height"] <= picture["y"] and buttons["y"] + buttons["height"] <= picture["y"]
        phone.locator("#genre-generated").screenshot(path=str(shots / "phone-genre-sampling.png"))
        # the patch picker stacks rgb over depth at the column's width: side by side a patch was 20 px wide,
        # too small for a finger; a tap still picks the patch under it
        phone.get_by_role("tab", name="RGB-D segmentation").click()
        phone.get_by_text("SynthRooms scene 1 (seed 11)").first.click()
        plot_ready(phone, "segment-attention-plot", "picked")
        picker = phone.locator("#segment-picker img").first
        box = picker.bounding_box()
        assert box and box["width"] >= 8 * 36 and box["height"] > 2 * box["width"], box
        scale = box["width"] / plots.PHONE_PICKER
        below = plots.PHONE_PICKER + plots.PICKER_HEADER + 16 + plots.PICKER_HEADER  # the depth panel's top
        picker.tap(position={"x": 6.5 * 40 * scale, "y": (below + 2.5 * 40) * scale})
        phone.wait_for_function(
            "() => { const t = document.querySelector('#segment-attention-plot .gtitle');"
            " return t && /picked\\s*depth \\(row 2, col 6\\)/.test(t.textContent); }", timeout=TIMEOUT_MS)
        phone.locator("#segment-picker").screenshot(path=str(shots / "phone-segmentation-picker.png"))
    finally:
        context.close()
