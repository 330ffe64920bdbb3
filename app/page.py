"""How the page looks and what its own script does in the browser: the theme, the CSS, and HEAD (app/page.js).

`app.ui` lays the page out; the class names and element ids that the CSS and the script look for are here.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

CSS = """
.model-card { background: #f8fafc; border-left: 4px solid #6366f1; padding: 8px 12px !important; border-radius: 6px; }
#segment-overlay img.mask:not(.inactive) { opacity: 1; }
.prose table { display: block; overflow-x: auto; }
.prose td { white-space: nowrap; }
.prose th, .prose td:first-child { white-space: normal; word-break: normal; overflow-wrap: normal; min-width: 8em; }
button:focus-visible, [role="tab"]:focus-visible, input[type="range"]:focus-visible, input[type="radio"]:focus-visible {
  outline: 3px solid #c2410c !important; outline-offset: 2px; transition: none; }
.picker .image-frame img { width: auto; height: auto; max-width: 100%; }  /* its own size, never upscaled */
.wrap.left-by-tab > .options { display: none; }  /* a dropdown left by Tab (HEAD's script) */
.picker button:focus-visible, .image-container button:focus-visible { outline-offset: -3px; }  /* its block clips */
.prose .token.string { color: #3f6212; }  /* code strings (About): gradio's #669900 was 3.1:1 */
.modebar-btn--logo { display: none !important; }  /* a link to plotly.com: a Tab stop out of an offline app */
/* for a screen reader only (HEAD's script): the status line, and each chart in words */
#mango-status, .mango-chart-words { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
  white-space: nowrap; margin: 0; }
@media (max-width: 640px) {
  .figure > label[data-testid="block-label"] { position: static; margin: 6px 6px 0; }
  .figure .image-container { position: static; }  /* its buttons then sit on the label's line, at the block's corner */
}
"""
# gradio draws the masks at 85 % opacity on top of the alpha the app gives them; the opacity slider's value is
# then the true opacity (1: the class colours alone). Hovering a legend item still hides the other classes.
# Tables of numbers in the text (the known-answer table) scroll sideways on a narrow screen rather than break
# "12 / 100" over two lines or a word into one letter per line; their headings (the top row and the first
# column) wrap, at words only. A keyboard user sees which button has the focus: gradio's own ring is a faint
# grey on the indigo buttons, and a slider, a chosen radio and a picture had none (the ring is 5:1 on white,
# where the brighter #f97316 was 2.8:1; a picture's block clips what lies outside it, so its ring is drawn
# inside). On a phone a figure's label takes two lines: it goes above the figure instead of floating over its
# title; a picture's buttons (full screen, download) sit on the label's line instead of over the captions of
# its top row. The patch picker shows at its own size, so its patches keep the size they were drawn for (on a
# phone, stacked, 40 px). A dropdown's list is hidden once Tab has left it (HEAD's script marks it, and a
# click or key in the dropdown shows it again).
FIGURE = ["figure"]
READOUT = ["mango-readout"]  # a text output: HEAD's script makes its box readonly instead of disabled


def theme() -> gr.themes.Base:
    """A quiet theme with system fonts (no font download: the app runs offline), its text darkened to
    WCAG AA contrast (4.5:1): Soft's labels were 3.6:1, its help text 2.6:1, its buttons 4.5:1 and 3:1 on hover."""
    soft = gr.themes.Soft(primary_hue="indigo", secondary_hue="orange", neutral_hue="slate",
                          font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
    return soft.set(block_label_text_color="*primary_700", block_title_text_color="*primary_700",
                    body_text_color_subdued="*neutral_600", button_primary_background_fill="*primary_600",
                    button_primary_background_fill_hover="*primary_700", link_text_color="*secondary_700",
                    checkbox_label_background_fill_selected="*primary_600")


# What a screen reader hears when a view has finished (gradio announces errors only): HEAD's script watches
# each view's progress and says this in one polite status line; the views' own texts hold the numbers. Some
# ends of progress bring nothing, and are not said to be ready:
# - a press refused by its button's check (`MangoApp.check_inputs`): the line says the check's messages
#   (gradio shows them beside the inputs, and says nothing);
# - a request of inputs replaced since (`MangoApp._unless_replaced`): the line says the tab's notice, which
#   then asks for a new prediction (it holds UNPREDICTED, `MangoApp.inputs_replaced`);
# - a view's control used on a tab with an input missing (`_control_without_inputs`): nothing is said.
# A view in DRAWN_WITHOUT_INPUTS can be drawn from nothing the tab holds (samples from the prior): it is ready
# when it shows a picture, whatever the slots and the notice say.
READY_MESSAGES = {
    "segment-overlay": "Segmentation ready: the class shares are in the table below it.",
    "translate-output": "Translation ready.",
    "genre-chart": "Genre prediction ready: the predicted genres and their probabilities are in the text box.",
    "-attention-plot": "Attention view ready: the text beside it names the strongest keys and values.",
    "-contrib-plot": "Contributions ready: the summary above the charts states each number.",
    "-generated": "Pictures ready: the text below gives each one's likelihood, and for segmentation and genres its "
                  "prediction.",
}
UNPREDICTED = "to predict it, then open the views"
DRAWN_WITHOUT_INPUTS = ["-generated"]
# the elem_id of each tab's inputs (app.ui gives them), by the views' id prefix
TAB_SLOTS = {"segment": ["segment-a", "segment-b"], "translate": ["translate-a", "translate-b"],
             "genre": ["genre-a", "genre-plot"]}

HEAD = "<script>\n" + (Path(__file__).with_name("page.js").read_text(encoding="utf-8")
                      .replace("__READY__", json.dumps(list(READY_MESSAGES.items())))
                      .replace("__UNPREDICTED__", json.dumps(UNPREDICTED))
                      .replace("__SLOTS__", json.dumps(TAB_SLOTS))
                      .replace("__WITHOUT_INPUTS__", json.dumps(DRAWN_WITHOUT_INPUTS))) + "</script>\n"
