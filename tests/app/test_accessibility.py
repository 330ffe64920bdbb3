"""What a low-vision, colour-blind or screen-reader user gets (an axe-core and keyboard audit found each gap)."""

from __future__ import annotations

import re

import numpy as np

import pytest

from app import colours, page, plots, texts


def _resolved(theme, value: str) -> str:
    while value.startswith("*"):  # gradio themes name other variables: "*primary_700"
        value = getattr(theme, value[1:])
    return {"white": "#ffffff", "black": "#000000"}.get(value, value)


@pytest.mark.parametrize("text, background", [
    ("block_label_text_color", "block_label_background_fill"),  # every component's label
    ("block_title_text_color", "block_title_background_fill"),
    ("body_text_color_subdued", "block_background_fill"),  # help text, slider limits
    ("body_text_color_subdued", "background_fill_primary"),
    ("button_primary_text_color", "button_primary_background_fill"),  # Segment, Explain, Sample
    ("button_primary_text_color", "button_primary_background_fill_hover"),
    ("link_text_color", "background_fill_primary"),
    ("checkbox_label_text_color_selected", "checkbox_label_background_fill_selected"),  # a chosen radio: 4.46:1
    ("body_text_color", "background_fill_primary"),
    ("error_text_color", "error_background_fill"),  # a prediction button's check, beside an image slot: 5.9:1
    ("error_text_color", "block_label_background_fill"),  # and in the plot box's label: 5.3:1
])
def test_the_theme_s_text_meets_wcag_aa(text, background):
    # gradio's Soft theme gave labels 3.6:1, help text 2.6:1 and a hovered button 3.0:1
    theme = page.theme()
    ratio = colours.contrast_ratio(_resolved(theme, getattr(theme, text)), _resolved(theme, getattr(theme, background)))
    assert ratio >= 4.5, f"{text} on {background}: {ratio:.2f}:1"


def test_the_focus_ring_stands_out_on_the_page_and_on_the_buttons():
    ring = re.search(r"button:focus-visible[^{]*\{\s*outline: 3px solid (#[0-9a-f]{6})", page.CSS).group(1)
    theme = page.theme()
    assert 'input[type="radio"]:focus-visible' in page.CSS  # a chosen radio showed no focus
    assert colours.contrast_ratio(ring, "#ffffff") >= 3.0  # WCAG 1.4.11, non-text: the orange #f97316 was 2.8:1
    assert colours.contrast_ratio(ring, _resolved(theme, theme.background_fill_primary)) >= 3.0


def test_headings_step_down_one_level_at_a_time():
    # the page has one h1 (its title); the sections' texts started at h3 (axe: heading-order)
    for name in ("ATTENTION", "CONTRIBUTIONS", "SAMPLING", "ABLATIONS", "API"):
        text = getattr(texts, name)
        levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.M)]
        assert levels and levels[0] == 2, name
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), name


def test_every_output_picture_has_a_text_alternative(launched_app):
    # gradio wraps an output picture in a button named only by its alt text (axe: button-name, critical)
    import gradio as gr

    demo = launched_app[0]
    pictures = [block for block in demo.blocks.values() if isinstance(block, gr.Image) and block.interactive is False]
    assert len(pictures) >= 10  # pickers, samples, translation, previews, trust figures, ablations
    for picture in pictures:
        assert picture.alt_text and len(picture.alt_text) > 20, picture.label


def test_sample_rows_say_what_they_predict(launched_app):
    # a strip's predictions are drawn (class colours, captions in the picture); its text now says them
    import torch

    runners = launched_app[0].mango_app.runners
    segmentation, genre = runners["segmentation"], runners["genre"]
    logits = torch.zeros(1, len(segmentation.config.class_names), 4, 4)
    logits[0, 0] = 1.0  # wall everywhere...
    logits[0, 2, :1] = 2.0  # ...but the top row: ceiling
    names = segmentation.config.class_names
    assert segmentation._row_predictions(logits) == [f"predicted {names[0]} 75%, {names[2]} 25%"]
    scores = torch.full((1, len(genre.config.class_names)), -4.0)
    scores[0, 3], scores[0, 5] = 2.0, 0.0
    assert genre._row_predictions(scores)[0].startswith(f"predicted {genre.config.class_names[3]} 88%, "
                                                        f"{genre.config.class_names[5]} 50%")
    _, readout = segmentation.sample(1.0, 0, 2)
    rows = [line for line in readout.splitlines() if line.startswith("- sample")]
    assert len(rows) == 2 and all("; predicted " in row and row.rstrip().endswith("%") for row in rows)


def test_the_attention_text_names_where_the_weight_goes(launched_app, scene):
    # the figure shows each patch's weight on hover only
    import numpy as np

    from app.prepared import strongest

    weights = np.array([0.1, 0.5, 0.0, 0.3, 0.05, 0.05])
    label = lambda t: f"token {t}"  # noqa: E731
    left_out = np.array([False, False, False, False, True, False])
    assert strongest(weights, label, left_out) == "token 1 0.500, token 3 0.300, token 0 0.100"
    assert strongest(np.zeros(3), label, np.zeros(3, bool)) == "none"
    runner = launched_app[0].mango_app.runners["segmentation"]
    text = runner.attention(scene.file("rgb"), scene.file("depth"), runner.layer_choices[0], "rgb", 5)[-1]
    line = next(line for line in text.splitlines() if line.startswith("- strongest keys: "))
    keys = [float(w) for w in re.findall(r"\) (\d\.\d{3})", line.split(";")[0])]  # "rgb (row 0, col 1) 0.290, …"
    assert len(keys) == 3 and keys == sorted(keys, reverse=True) and keys[0] > 0


def test_each_ready_message_belongs_to_a_view_of_the_page(launched_app):
    # HEAD's script announces a view's message when the view's progress goes away; a renamed view would
    # fall silent (the browser test hears two of them)
    ids = [block.elem_id for block in launched_app[0].blocks.values() if getattr(block, "elem_id", None)]
    for suffix in page.READY_MESSAGES:
        assert any(elem_id.endswith(suffix) for elem_id in ids), suffix
        # nothing ready is said for a view whose tab's inputs or notices it cannot find
        prefixes = {elem_id.split("-")[0] for elem_id in ids if elem_id.endswith(suffix)}
        assert prefixes <= set(page.TAB_SLOTS), (suffix, prefixes)
    for prefix, slots in page.TAB_SLOTS.items():
        assert {*slots, f"{prefix}-notices"} <= set(ids), prefix
    assert page.UNPREDICTED in launched_app[0].mango_app.inputs_replaced("segmentation")[2]
    assert set(page.DRAWN_WITHOUT_INPUTS) <= set(page.READY_MESSAGES)
    assert not any(marker in page.HEAD for marker in ("__READY__", "__UNPREDICTED__", "__SLOTS__", "__WITHOUT_INPUTS__"))
    assert "Segmentation ready" in page.HEAD


def test_the_contributions_summary_names_the_tokens_integrated_gradients_weighs_most(launched_app, scene):
    # the map gives each token's attribution on hover only
    import numpy as np

    runner = launched_app[0].mango_app.runners["segmentation"]
    _, ig_figure, _, summary = runner.contributions(scene.file("rgb"), scene.file("depth"), "wall", 32)
    line = next(line for line in summary.splitlines() if line.strip().startswith("Raised most by"))
    raised, lowered = (re.findall(r"\) ([+-][\d.e+-]+)", part) for part in line.split("; lowered most by"))
    drawn = np.concatenate([np.asarray(t.z, float).ravel() for t in ig_figure.data if t.type == "heatmap"])
    assert len(raised) == len(lowered) == 3
    assert raised[0] == f"{np.nanmax(drawn):+.2g}" and lowered[0] == f"{np.nanmin(drawn):+.2g}"
    assert all(float(v) > 0 for v in raised) and all(float(v) < 0 for v in lowered)


def _panels():
    image = plots.Panel("poster", image=np.zeros((64, 64, 3), np.uint8), grid=(4, 4))
    return [image, plots.Panel("plot", words=["a", "storm", "hits"])]  # 16 tokens each: 13 of the plot's are padding


def test_every_chart_says_in_words_what_it_shows():
    # a screen reader got each chart's SVG text in drawing order: "78% 68% … 20% 40% … Sport War … Comedy"
    keys, values = np.zeros(32), np.zeros(32)
    keys[[5, 17, 20]] = 0.6, 0.3, 0.9  # token 20 is padding: not drawn, so not named
    values[[1, 16, 17]] = 0.9, 0.1, 0.95  # 17 receives the mix: its own weight is not among the others
    alt = plots.figure_alt(plots.attention_figure(_panels(), keys, values, 5, 17, "Layer 1<br><b>row 5</b>"))
    assert alt.startswith("Layer 1 row 5. Drawn over poster (4 × 4 patches) and plot (3 tokens)")
    assert "the query, poster (row 1, col 1) (solid black)" in alt and "plot token 1 'storm' (dashed green)" in alt
    assert "Strongest keys: poster (row 1, col 1) 0.600, plot token 1 'storm' 0.300." in alt
    assert "Strongest values other than its own: poster (row 0, col 1) 0.900, plot token 0 'a' 0.100." in alt

    # a poster query past the plot's end mixes into a padding token: named, not "None"
    alt = plots.figure_alt(plots.attention_figure(_panels(), keys, values, 15, 31, "Layer 1"))
    assert "the token that receives the mix, plot token 15 (padding) (dashed green)" in alt and "None" not in alt
    assert "plot (3 tokens)" in alt  # word pieces with the start and end tokens, not words

    alt = plots.figure_alt(plots.token_weights_figure(_panels(), keys, "Rollout", None, "rollout weight"))
    assert alt.endswith("Largest: poster (row 1, col 1) 0.600, plot token 1 'storm' 0.300.") and "outlined" not in alt

    maps = [np.full((8, 8), 0.01), np.array([-0.5, 0.25, 0.0])]
    alt = plots.figure_alt(plots.signed_maps_figure(_panels(), maps, "IG", "attribution"))
    assert "Values: poster from +0.01 to +0.01; plot from -0.5 to +0.25." in alt and "red raises" in alt

    alt = plots.figure_alt(plots.matrix_figure([np.eye(32) * 0.9, -np.eye(32) * 0.5], ["layer", "rollout"],
                                               [str(i) for i in range(32)], ("poster", "plot"), "Mixing"))
    assert "2 matrices of 32 tokens, poster first" in alt and "layer 0.90, rollout 0.50." in alt

    alt = plots.figure_alt(plots.bar_figure(["poster", "plot"], [("Shapley", [0.6, -1.5], "#2563eb"),
                                                                  ("ablation", [0.55, 1.51], "#f59e0b")],
                                            "Adds", "change", subtitle="f(both) = 1.2"))
    assert alt == ("Adds. f(both) = 1.2. Horizontal bars, change. "
                   "poster: Shapley +0.6, ablation +0.55; plot: Shapley -1.5, ablation +1.51.")

    names, probs = ["Drama", "Comedy", "War"], [0.3, 0.78, 0.01]
    alt = plots.figure_alt(plots.probability_figure(names, probs, 0.5, "Genres"))
    assert alt == "Genres, most likely first. Above the threshold 50%: Comedy 78%. Below: Drama 30%, War 1%."
    alt = plots.figure_alt(plots.probability_figure(names, probs, [0.2, 0.8, 0.005], "Genres"))
    assert alt == ("Genres, most likely first. Above its own threshold: Drama 30% (threshold 20%), War 1% "
                   "(threshold 0.5%). Below: Comedy 78% (threshold 80%).")

    assert plots.figure_alt(plots.empty_figure("Click “Explain”,<br>then wait")) == "Click “Explain”, then wait."
    tested = {"attention_figure", "token_weights_figure", "signed_maps_figure", "matrix_figure", "bar_figure",
              "probability_figure", "empty_figure"}
    assert {name for name in dir(plots) if name.endswith("_figure") and not name.startswith("_")} == tested  # a new chart needs its words


def test_the_app_s_charts_carry_their_words(launched_app, film):
    # what HEAD's script reads out: the real genre chart and attention view, not only the builders
    runners = launched_app[0].mango_app.runners
    chart, genres, _ = runners["genre"].genre(film.poster, film.plot)
    alt = plots.figure_alt(chart)
    said = genres.split(", ") if not genres.startswith("none") else []
    assert alt.startswith("Genre probabilities") and all(genre in alt.split("Below:")[0] for genre in said)
    _, attention, rollout, matrices, text = runners["genre"].attention(film.poster, film.plot,
                                                                      runners["genre"].layer_choices[0], "plot", 2)
    keys = re.search(r"strongest keys: (.*?); strongest values other than itself: (.*)", text)
    alt = plots.figure_alt(attention)
    assert f"Strongest keys: {keys.group(1)}. Strongest values other than its own: {keys.group(2)}." in alt
    assert all(plots.figure_alt(figure).startswith(("Rollout", "Value-path")) for figure in (rollout, matrices))
    assert page.READOUT[0] in page.HEAD and ".mango-chart-words" in page.CSS and "layout.meta.alt" in page.HEAD


def test_what_the_texts_say_of_the_views_is_where_and_how_they_are(launched_app):
    # a truth audit found: the summary announced "below the charts" sits above them, and the texts said
    # the matrices leave negative weights out where they draw them by their absolute value
    blocks = launched_app[0].blocks
    ids = {getattr(b, "elem_id", None): k for k, b in blocks.items()}
    for prefix in ("segment", "translate", "genre"):
        assert ids[f"{prefix}-summary"] < ids[f"{prefix}-contrib-plot"]  # made first: above it in its column
    assert "summary above the charts" in page.READY_MESSAGES["-contrib-plot"]
    matrix = np.array([[0.9, -0.4], [0.2, 0.8]])
    fig = plots.matrix_figure([matrix], ["layer"], ["a", "b"], ("x", "y"), "t")
    assert np.allclose(fig.data[0].z, np.abs(matrix))  # the negative weight is drawn, at its size
    assert "absolute" in texts.ATTENTION and "negative weights are not drawn" not in texts.ATTENTION
