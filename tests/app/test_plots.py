"""app.plots: clicks map to the right patch, figures draw what they say."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app import colours, plots


def test_picker_clicks_land_on_the_patch_under_them():
    grid, size, gap = (8, 8), 256, 16
    picture = plots.grid_picker([np.zeros((64, 64, 3), np.uint8)] * 2, grid, ["rgb", "depth"], size=size, gap=gap,
                                marked=(1, 10))
    assert picture.shape == (size + 22, 2 * size + gap, 3)
    cell = size / 8
    for panel in (0, 1):
        for token in (0, 9, 63):
            r, c = divmod(token, 8)
            x = panel * (size + gap) + (c + 0.5) * cell
            y = 22 + (r + 0.5) * cell
            assert plots.picker_hit(x, y, 2, grid, size=size, gap=gap) == (panel, token)
    assert plots.picker_hit(size + gap / 2, 100, 2, grid, size=size, gap=gap) is None  # the gap
    assert plots.picker_hit(10, 5, 2, grid, size=size, gap=gap) is None  # the title row
    # on a phone the panels are stacked, each under its title
    with plots.phone_layout(True):
        picture = plots.grid_picker([np.zeros((64, 64, 3), np.uint8)] * 2, grid, ["rgb", "depth"], size=size, gap=gap)
        assert picture.shape == (2 * (size + 22) + gap, size, 3)
        for panel in (0, 1):
            for token in (0, 9, 63):
                r, c = divmod(token, 8)
                y = panel * (size + 22 + gap) + 22 + (r + 0.5) * cell
                assert plots.picker_hit((c + 0.5) * cell, y, 2, grid, size=size, gap=gap) == (panel, token)
        assert plots.picker_hit(100, size + 22 + gap / 2, 2, grid, size=size, gap=gap) is None  # the gap
        assert plots.picker_hit(100, size + 22 + gap + 5, 2, grid, size=size, gap=gap) is None  # depth's title


def test_attention_figure_puts_keys_and_values_on_their_tokens():
    panels = [plots.Panel("rgb", image=np.zeros((64, 64, 3), np.uint8), grid=(2, 2)),
              plots.Panel("plot", words=["⟨start⟩", "a", "cat", "⟨end⟩"])]
    keys = np.array([0.7, 0.3, 0, 0, 0, 0, 0, 0], float)
    values = np.array([0, 0, 0, 0, 0.7, 0.3, 0, 0], float)
    fig = plots.attention_figure(panels, keys, values, query_token=1, output_token=5, title="t")
    heat = [t for t in fig.data if t.type == "heatmap" and t.coloraxis in ("coloraxis", "coloraxis2")]
    image_keys = np.asarray(heat[0].z, float)
    assert image_keys[0, 0] == 0.7 and np.isnan(image_keys[1, 1])  # zero weights are transparent
    word_values = np.asarray(heat[3].z, float)
    assert word_values.flat[1] == 0.3  # token 5 = plot word 1
    # query and receiving token outlined, each over a white halo; the receiving one dashed, so that it
    # is told apart by its shape too (green on its orange value cell vanished for protanopes)
    halos, lines = fig.layout.shapes[0::2], fig.layout.shapes[1::2]
    assert len(lines) == 2 and all(h.line.color == "white" and h.line.width > l.line.width for h, l in zip(halos, lines))
    assert [(l.line.color, l.line.dash) for l in lines] == [(plots.QUERY_COLOUR, "solid"), (plots.OUTPUT_COLOUR, "dash")]
    # fixed 0-1 scales: never rescaled to the largest weight, so faint weights stay faint
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (0, 1)
    faint = plots.attention_figure(panels, keys * 1e-4, values * 1e-4, 1, 5, "t")
    assert faint.layout.coloraxis.cmax == 1


def test_matrices_and_rollout_use_a_linear_0_to_1_scale():
    identity = np.eye(8)
    fig = plots.matrix_figure([identity, identity], ["layer", "rollout"], [str(k) for k in range(8)], ("a", "b"), "t")
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    z = np.asarray(fig.data[0].z, float)
    assert z[0, 0] == 1 and z[0, 1] == 0  # off-diagonal zeros stay at the bottom of the scale (no log floor)
    panels = [plots.Panel("rgb", image=np.zeros((64, 64, 3), np.uint8), grid=(2, 2))] * 2
    roll = plots.token_weights_figure(panels, np.full(8, 1e-3), "t", 0, "rollout weight")
    assert roll.layout.coloraxis.cmax == 1


def test_signed_maps_give_each_modality_its_own_scale_over_a_grey_input():
    # on one shared scale a poster whose total was spread over 64 patches looked empty beside two strong words
    poster = np.zeros((64, 64, 3), np.uint8)
    poster[..., 1] = 200  # green: drawn grey, so red and blue read over it
    panels = [plots.Panel("poster", image=poster, grid=(8, 8)), plots.Panel("plot", words=["⟨start⟩", "vampire", "⟨end⟩"])]
    patches = np.full((8, 8), 0.04)
    patches[0, 0] = -0.2
    fig = plots.signed_maps_figure(panels, [patches, np.array([1.4, 1.5, 0.0])], "t", "attribution")
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-0.2, 0.2)
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (-1.5, 1.5)
    assert fig.layout.coloraxis.colorbar.title.text == "poster: attribution"
    assert fig.layout.coloraxis2.colorbar.title.text == "plot: attribution"
    # each colour bar beside its own panel, none over the other panel
    assert fig.layout.xaxis.domain[1] <= fig.layout.coloraxis.colorbar.x < fig.layout.xaxis2.domain[0]
    heat = {t.coloraxis for t in fig.data if t.type == "heatmap" and t.coloraxis}
    assert heat == {"coloraxis", "coloraxis2"}
    ground = plots._light_grey(poster)
    assert np.all(ground[..., 0] == ground[..., 1]) and ground.min() >= 127
    with plots.phone_layout(True):
        stacked = plots.signed_maps_figure(panels, [patches, np.array([1.4, 1.5, 0.0])], "t", "attribution")
    bar, top = stacked.layout.coloraxis.colorbar, stacked.layout.yaxis.domain
    assert top[0] < bar.y < top[1]  # beside the poster, stacked above the plot


def test_a_long_word_keeps_to_its_cell():
    # on one line "expedition" ran into its neighbours
    panels = [plots.Panel("rgb", image=np.zeros((64, 64, 3), np.uint8), grid=(2, 2)),
              plots.Panel("plot", words=["⟨start⟩", "astronomers", "expedition", "antidisestablishmentarianism"])]
    fig = plots.attention_figure(panels, np.zeros(8), np.zeros(8), query_token=0, output_token=4, title="t")
    words = next(t for t in fig.data if t.type == "scatter" and t.mode == "text")
    assert words.text[0] == "⟨start⟩" and words.textfont.size[0] == 11
    for label in words.text[1:]:
        lines = label.split("<br>")
        assert len(lines) == 2 and all(len(line) <= plots.CELL_CHARS + 1 for line in lines), label
    assert words.text[1] == "astron-<br>omers" and words.text[3].endswith("…") and set(words.textfont.size[1:]) == {10}


def test_class_colours_are_far_apart():
    palette = [colours.class_colour(k) for k in range(12)]  # SynthRooms' 12 classes
    assert len(set(palette)) == 12
    lab = colours.rgb_to_lab(np.array([colours.hex_to_rgb(c) for c in palette]))
    distance = colours.delta_e94(lab[:, None], lab[None])
    np.fill_diagonal(distance, np.inf)
    # CIE94; the CIE76 ordering before had floor #16FF32 and camouflaged #1CBE4F at 21, and cabinet / lamp at 14
    assert distance.min() > 20
    assert all(25 <= lightness <= 88 for lightness in lab[:, 0])
    # and for colour-blind eyes (Machado 2009): ordered for normal vision alone, sofa and lamp were 2.4
    # apart under deuteranopia, ceiling and picture 4.9
    for kind in colours.DICHROMACY:
        seen = colours.rgb_to_lab(colours.simulate_dichromacy(np.array([colours.hex_to_rgb(c) for c in palette]), kind))
        distance = colours.delta_e94(seen[:, None], seen[None])
        np.fill_diagonal(distance, np.inf)
        assert distance.min() > 8, kind
    assert np.allclose(colours.rgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.05)


def test_dichromacy_simulation_keeps_greys_and_merges_red_and_green_for_deuteranopes():
    grey = np.array([128.0, 128.0, 128.0])
    for kind in colours.DICHROMACY:  # each matrix's rows sum to 1: a neutral colour stays itself
        np.testing.assert_allclose(colours.simulate_dichromacy(grey, kind), grey, atol=0.6)
    red, green = np.array([200.0, 60.0, 40.0]), np.array([90.0, 150.0, 40.0])
    def apart(kind: str | None) -> float:
        a, b = ((colours.simulate_dichromacy(x, kind) if kind else x) for x in (red, green))
        return float(colours.delta_e94(colours.rgb_to_lab(a), colours.rgb_to_lab(b)))
    assert apart("deuteranopia") < apart(None) / 3 and apart("tritanopia") > apart("deuteranopia")


def test_delta_e94_matches_its_definition():
    grey, red = np.array([50.0, 0.0, 0.0]), np.array([50.0, 60.0, 0.0])
    # a pure lightness step counts in full; a chroma step from grey is divided by 1 + 0.045 * 0 = 1 one way
    # and by 1 + 0.045 * 60 the other: the smaller (symmetric) value is 60 / 3.7
    assert colours.delta_e94(np.array([70.0, 0.0, 0.0]), grey) == pytest.approx(20.0)
    assert colours.delta_e94(red, grey) == pytest.approx(60 / 3.7)
    # a hue step at constant chroma: ΔH² = Δa² + Δb² − ΔC², divided by (1 + 0.015 C)²
    turned = np.array([50.0, 0.0, 60.0])
    assert colours.delta_e94(red, turned) == pytest.approx(np.sqrt(2 * 60.0 ** 2) / (1 + 0.015 * 60))


def test_helpers():
    lut = plots.colourise(np.array([[0.0, 1.0]]), "Viridis")
    assert lut.shape == (1, 2, 3) and lut.dtype == np.uint8 and not np.array_equal(lut[0, 0], lut[0, 1])
    strip = plots.image_strip([np.zeros((10, 10, 3), np.uint8)] * 6, ["a"] * 6, ["x", "y"], cols=3, size=32)
    assert strip.shape[1] == 70 + 3 * (32 + 6) + 6


def test_long_captions_wrap_instead_of_losing_their_numbers():
    from PIL import Image, ImageDraw

    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), plots._small_font()
    caption = "poster: Drama 53%, Horror 12%"  # cut to "poster: Drama 53%, Horror …" on one line before
    lines = plots._lines(draw, caption, font, 158, 2)
    assert lines == ["poster: Drama 53%,", "Horror 12%"]  # broken after the comma: each genre keeps its number
    assert plots._lines(draw, "poster · predicted: Drama 53%, Horror 49%", font, 158, 2) == [
        "poster · predicted:", "Drama 53%, Horror 49%"]  # the strips' caption: or after the colon
    assert all(draw.textlength(line, font=font) <= 158 for line in lines)
    assert plots._lines(draw, "predicted classes", font, 62, 3) == ["predicted", "classes"]  # a row title
    assert plots._lines(draw, "one two three four five six seven", font, 40, 2)[-1].endswith("…")  # still bounded
    too_wide = plots._lines(draw, "averyveryverylongword and then", font, 60, 3)  # cut, and the rest still follows
    assert too_wide[0].endswith("…") and too_wide[1:] == ["and then"]
    one, two = (plots.image_strip([np.zeros((8, 8, 3), np.uint8)], [c], size=158) for c in ("short", caption))
    assert two.shape[0] == one.shape[0] + 14  # the strip makes room for the second line
    depth = plots.modality_image(np.full((1, 4, 4), 0.5, np.float32), "depth")
    assert depth.shape == (4, 4, 3)
    assert plots.probability_figure(["A", "B"], [0.2, 0.9]).data[0].y == ("B", "A")


def test_genre_thresholds_per_genre():
    """A checkpoint with tuned thresholds: bars are coloured and genres named by their own threshold."""
    from app.handlers import predicted_genres

    names, probs, cuts = ["A", "B", "C"], np.array([0.3, 0.6, 0.45]), np.array([0.25, 0.7, 0.5])
    fig = plots.probability_figure(names, probs, cuts)
    bars, ticks = fig.data
    assert bars.y == ("B", "C", "A") and list(bars.marker.color) == ["#cbd5e1", "#cbd5e1", plots.ABOVE_THRESHOLD]
    assert list(ticks.x) == [0.7, 0.5, 0.25]
    assert len(plots.probability_figure(names, probs, 0.5).data) == 1  # one shared line, no ticks
    assert predicted_genres(names, probs, cuts) == "A 30%"  # with its probability, for a screen reader
    assert predicted_genres(names, probs, 0.5) == "B 60%"
    assert predicted_genres(names, np.array([0.5004, 0.9, 0.1]), 0.5) == "B 90%, A 50.04%"
    assert predicted_genres(names, probs, 0.9).startswith("none above 90%")
    assert predicted_genres(names, probs, np.array([0.9, 0.95, 0.8])).startswith("none above its threshold")


def test_bar_values_have_room_beyond_the_longest_bar():
    # on a phone the longest bar's value, drawn outside it, ran off the figure's edge ("+0.049…")
    fig = plots.bar_figure(["shade", "texture"], [("Shapley", [0.0498, -0.141], "#2563eb")], "t", "change")
    low, high = fig.layout.xaxis.range
    assert low <= -0.141 - 0.05 and high >= 0.0498 + 0.05
    only_up = plots.bar_figure(["a", "b"], [("s", [2.0, 1.0], "#000")], "t", "x").layout.xaxis.range
    assert only_up[0] == 0 and only_up[1] >= 2.5


def test_values_on_bars_are_readable():
    # WCAG AA: white on the orange genre bar was 3.6:1; plotly's grey on the green IG bar 3.8:1
    fig = plots.bar_figure(["a"], [("Shapley", [1.0], "#2563eb"), ("IG", [1.0], "#10b981")], "t", "x")
    for bar in fig.data:
        assert colours.contrast_ratio(bar.insidetextfont.color, bar.marker.color) >= 4.5, bar.name
    assert colours.text_colour_on("#10b981") == "#111827" and colours.text_colour_on("#2563eb") == "#ffffff"
    assert colours.contrast_ratio("#ffffff", plots.ABOVE_THRESHOLD) >= 4.5
    assert colours.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert colours.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # WCAG's own example


def test_a_value_under_the_threshold_stays_clear_of_its_line():
    # beside its bar, "44%" ran across the dashed line at 50%; a long bar holds its value inside its end
    fig = plots.probability_figure(["Drama", "Sci-Fi", "War"], [0.9, 0.44, 0.05], 0.5)
    bars = fig.data[0]
    assert list(bars.textposition) == ["inside", "inside", "outside"] and bars.insidetextanchor == "end"
    assert list(bars.insidetextfont.color) == ["white", "#111827", "#111827"]  # on orange, on grey
    assert bars.constraintext == "none"  # inside values are not shrunk below the outside ones


def test_probabilities_near_a_threshold_show_which_side_they_are_on():
    """0.4987 is not "50%" beside a 50% threshold: one more decimal where rounding would hide the side."""
    from app.handlers import predicted_genres

    names, probs = ["Adventure", "Drama"], np.array([0.4987, 0.2])
    assert predicted_genres(names, probs, 0.5) == "none above 50% (most likely: Adventure, 49.9%)"
    assert list(plots.probability_figure(names, probs, 0.5).data[0].text) == ["49.9%", "20%"]
    assert plots.percent_beside(0.5004, 0.5) == "50.04%" and plots.percent_beside(0.7, 0.5) == "70%"
    assert plots.percent_beside(0.3499, 0.35) == "34.99%" and plots.percent_beside(0.5, 0.5) == "50%"
    assert predicted_genres(names, probs, 0.525) == "none above 52.5% (most likely: Adventure, 50%)"


def test_class_shares_are_counted_once_and_never_read_zero():
    from app.prepared import class_shares, percent

    labels = np.zeros((100, 100), np.int64)
    labels[0, :3] = 2  # 0.03 % of the pixels
    labels[1:, :40] = 1
    shares = class_shares(labels, 4)
    assert [k for k, _ in shares] == [0, 1, 2] and abs(sum(s for _, s in shares) - 1) < 1e-9
    assert percent(shares[2][1]) == "<1" and percent(shares[2][1], 1) == "<0.1" and percent(0.003, 1) == "0.3"
    assert percent(0.9999) == ">99" and percent(1.0) == "100" and percent(0.482, 1) == "48.2"


def test_ablation_table(tmp_path):
    from app.ablations import load_table

    assert load_table(tmp_path)[0] is None and load_table(tmp_path)[2] == "not run yet"
    (tmp_path / "results.csv").write_text(
        "task,variant,metric,mean,std,n_seeds\n"
        "segmentation,MMCA,miou,0.41,0.012,3\nsegmentation,MMCA+IMCA+LICA,miou,0.45,0.01,3\ngenre,late,micro_f1,0.5,,1\n")
    table, figure, status = load_table(tmp_path)
    assert list(table.columns) == ["task", "metric", "variant", "mean ± std", "n_seeds"]
    assert table.iloc[0]["mean ± std"] == "0.500" and "0.410 ± 0.012" in set(table["mean ± std"])
    assert figure is None and status.startswith("3 rows")
    (tmp_path / "results.csv").write_text(
        "task,variant,metric,mean,std,n_seeds,off_diagonal_share\n"
        "segmentation,MANGO,pixel_acc,0.8,0.01,3,0.1234\nsegmentation,MANGO,miou,0.5,0.01,3,0.1234\n"
        "segmentation,Concatenation,miou,0.49,0.01,3,\n")
    table = load_table(tmp_path)[0]
    assert list(table["metric"]) == ["miou", "miou", "pixel_acc"]  # the headline metric first
    assert list(table["ICA share"]) == ["0.123", "", "0.123"]
    (tmp_path / "results.csv").write_text("task,score\nx,1\n")
    assert "lacks the column" in load_table(tmp_path)[2]


def test_taskonomy_log_depth_is_shown_in_metres_like_nyu_depth():
    # 1.35 m to 5.81 m: log(1 + 512 m) / 11.1 spans only 0.59-0.72, all yellow on a 0-to-max scale
    metres = np.linspace(1.35, 5.81, 64, dtype=np.float64).reshape(1, 8, 8)
    log_depth = (np.log1p(512 * metres) / 11.1).astype(np.float32)
    shown = plots.modality_image(log_depth, "depth_zbuffer")
    nyu = plots.modality_image((metres / 10.0).astype(np.float32), "depth")  # NYU depth: metres / 10
    assert np.abs(shown.astype(int) - nyu.astype(int)).max() <= 3  # the same colours for the same metres
    near, far = shown[0, 0].astype(int), shown[-1, -1].astype(int)
    assert np.abs(near - far).sum() > 200  # dark blue near, yellow far: not one colour
    # Taskonomy's "no depth" (65535 -> ~1.0, 128 m) on a few pixels does not darken the room
    holed = log_depth.copy()
    holed[0, -1, -1] = 1.0
    assert np.abs(plots.modality_image(holed, "depth_zbuffer")[:4].astype(int) - shown[:4]).max() <= 3


def _visible_lines(text: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", line) for line in re.split(r"<br>", text)]


def test_markup_wraps_at_spaces_and_reopens_the_tags_it_breaks():
    title = ("block 1 · layer 1 · MMCA A→B · picked depth (row 2, col 6)<br><span style='font-size:12px'>row 22: "
             "query rgb (row 2, col 6) → mix into depth (row 2, col 6) · self-weight A<sub>ii</sub> = 0.850</span>")
    wrapped = plots.wrap_markup(title, 30)
    lines = wrapped.split("<br>")
    assert all(len(line) <= 30 for line in _visible_lines(wrapped))
    assert " ".join(_visible_lines(wrapped)).split() == " ".join(_visible_lines(title)).split()  # no word lost or cut
    subtitle = lines[next(k for k, line in enumerate(lines) if "<span" in line):]
    assert len(subtitle) >= 3
    for line in subtitle:  # every line of the subtitle is its own closed span: plotly styles each line
        assert line.startswith("<span style='font-size:12px'>") and line.endswith("</span>")
        assert line.count("<sub>") == line.count("</sub>")
    assert plots.wrap_markup("x < y and <b>bold words here</b> end", 10) == "x < y and<br><b>bold words</b><br><b>here</b> end"
    assert plots.wrap_markup("f(poster\u00a0only) = 1.2", 10) == "f(poster\u00a0only)<br>= 1.2"  # a no-break space holds
    assert plots.wrap_markup("short<br>lines", 30) == "short<br>lines"


def _attention(title: str):
    panels = [plots.Panel("rgb", image=np.zeros((64, 64, 3), np.uint8), grid=(2, 2)),
              plots.Panel("plot", words=[f"word{k}" for k in range(4)])]
    keys = values = np.full(8, 1 / 8)
    return plots.attention_figure(panels, keys, values, query_token=1, output_token=5, title=title)


def test_desktop_titles_wrap_to_fit_the_figure_and_clear_its_label():
    # plotly does not wrap: the genre rollout's caveat ("… so its weights are not shares") ran 145 px past
    # its figure's edge at 1440 px
    import re

    long = ("Rollout through all 16 ICA layers: the value path's weights into poster (row 4, col 4) and more words<br>"
            "<span style='font-size:12px'>its own weight: 0.075 · on padding (not drawn): 0.002 · negative weights "
            "(not drawn): 31% of the row's absolute weight; the row sums to 0.17, so its weights are not shares</span>")
    fig = _attention(long)
    lines = re.split(r"<br>", fig.layout.title.text)
    assert len(lines) == 4 and all(len(re.sub(r"<[^>]+>", "", line)) <= plots.DESKTOP_LINE for line in lines)
    assert fig.layout.title.pad.t >= 40 and fig.layout.margin.t >= 80 + 2 * 18  # under the floating label
    short = _attention("block 1 · layer 1<br><span>row 0</span>")
    assert short.layout.title.text == "block 1 · layer 1<br><span>row 0</span>" and short.layout.margin.t == 80


def test_on_a_phone_panels_stack_titles_wrap_and_words_take_four_per_row():
    title = "block 1 · layer 1 · MMCA A→B · picked rgb (row 0, col 1) (the query) and a long tail of words"
    desk = _attention(title)
    assert desk.layout.xaxis.domain[1] < desk.layout.xaxis2.domain[0]  # side by side
    assert desk.layout.title.text == plots.wrap_markup(title, plots.DESKTOP_LINE)  # wider lines than a phone's
    assert not plots.on_phone()
    with plots.phone_layout():
        phone = _attention(title)
        matrix = plots.matrix_figure([np.eye(8)] * 2, ["layer", "rollout"], [str(k) for k in range(8)], ("a", "b"), title)
        bars = plots.bar_figure(["a", "b"], [("one", [1, 2], "#000"), ("two", [2, 1], "#111")], title,
                                "change in the target (positive: raises it, negative: lowers it)", subtitle=title)
        chart = plots.probability_figure(["Drama", "Horror"], [0.7, 0.2], 0.5, title)
    assert not plots.on_phone()  # the layout is per event, not left behind
    for fig in (phone, matrix):
        assert fig.layout.xaxis.domain == fig.layout.xaxis2.domain  # one above the other, each the full width
        assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]
    for fig in (phone, matrix, bars, chart):
        assert all(len(line) <= plots.PHONE_LINE for line in _visible_lines(fig.layout.title.text))
        assert fig.layout.title.pad.t == plots.PHONE_MODEBAR  # below the modebar a touch screen always shows
    assert all(len(line) <= plots.PHONE_AXIS_LINE for line in _visible_lines(bars.layout.xaxis.title.text))
    assert bars.layout.legend.yref == "container"  # under the wrapped axis title, not over it
    assert phone.layout.xaxis2.range == (-0.5, 3.5)  # four word cells per row (eight on a desktop)
    assert phone.layout.height > desk.layout.height
    eight = [plots.Panel("plot", words=[f"w{k}" for k in range(12)])] * 2
    assert plots.token_weights_figure(eight, np.zeros(24), "t", None, "w").layout.xaxis.range == (-0.5, 7.5)
    with plots.phone_layout():
        assert plots.token_weights_figure(eight, np.zeros(24), "t", None, "w").layout.xaxis.range == (-0.5, 3.5)


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def _poster_and_short_plot():
    image = plots.Panel("poster", image=np.zeros((64, 64, 3), np.uint8), grid=(4, 4))
    return [image, plots.Panel("plot", words=["a", "storm", "hits"])]  # 16 tokens each: 13 of the plot's are padding


def test_the_first_padding_token_is_padding_too():
    keys, values = np.zeros(32), np.zeros(32)
    keys[16 + 3] = 0.8  # plot token 3: the first past the 3 words
    alt = plots.figure_alt(plots.attention_figure(_poster_and_short_plot(), keys, values, 0, 16, "Layer 1"))
    assert "Strongest keys: none." in alt
    named, drawn = plots.token_names(_poster_and_short_plot(), 16)
    assert named[19] == "plot token 3 (padding)" and drawn[19] is None and drawn[18] == "plot token 2 'hits'"


def test_an_image_heatmap_cell_sits_on_its_own_patch():
    # token 1 of a 2 x 3 grid is row 0, col 1; drawn transposed it would sit on row 1, col 0
    panels = [plots.Panel("rgb", image=np.zeros((64, 96, 3), np.uint8), grid=(2, 3)),
              plots.Panel("depth", image=np.zeros((64, 96, 3), np.uint8), grid=(2, 3))]
    keys = np.zeros(12)
    keys[1] = 0.7
    fig = plots.attention_figure(panels, keys, np.zeros(12), query_token=0, output_token=6, title="t")
    z = np.asarray(next(t for t in fig.data if t.type == "heatmap" and t.coloraxis == "coloraxis").z, float)
    assert z.shape == (2, 3) and z[0, 1] == 0.7 and np.isnan(z[1, 0])
    square = [plots.Panel("rgb", image=np.zeros((64, 64, 3), np.uint8), grid=(2, 2))] * 2
    keys = np.zeros(8)
    keys[1] = 0.7  # row 0, col 1 of a square grid
    fig = plots.attention_figure(square, keys, np.zeros(8), query_token=0, output_token=4, title="t")
    z = np.asarray(next(t for t in fig.data if t.type == "heatmap" and t.coloraxis == "coloraxis").z, float)
    assert z[0, 1] == 0.7 and np.isnan(z[1, 0])


def test_the_picker_marks_the_patch_that_was_picked():
    size, grid = 256, (8, 8)
    picture = plots.grid_picker([np.zeros((64, 64, 3), np.uint8)] * 2, grid, ["rgb", "depth"], size=size, gap=16,
                                marked=(0, 3))  # row 0, col 3
    red = np.argwhere((picture[..., 0] == 220) & (picture[..., 1] == 38) & (picture[..., 2] == 38))
    (y0, x0), (y1, x1) = red.min(0), red.max(0)
    cell = size / 8
    assert 3 * cell - 1 <= x0 and x1 <= 4 * cell + 1  # column 3
    assert 22 - 1 <= y0 and y1 <= 22 + cell + 1  # row 0, under the title row


def test_the_modality_blocks_of_a_matrix_are_marked_between_the_halves():
    fig = plots.matrix_figure([np.eye(8)], ["layer"], [str(k) for k in range(8)], ("a", "b"), "t")
    vertical = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert [s.x0 for s in vertical] == [3.5]


def test_a_genre_at_exactly_its_threshold_is_below_it_in_colour_and_words():
    fig = plots.probability_figure(["Drama", "War"], [0.5, 0.8], 0.5, "Genres")
    assert list(fig.data[0].marker.color) == [plots.ABOVE_THRESHOLD, "#cbd5e1"]
    assert plots.figure_alt(fig) == "Genres, most likely first. Above the threshold 50%: War 80%. Below: Drama 50%."


def test_faint_edges_are_shown_boosted_dark_on_white():
    shown = plots.modality_image(np.full((1, 2, 2), 0.1, np.float32), "edge_texture")
    assert shown.shape == (2, 2, 3) and int(shown[0, 0, 0]) == 153  # 1 - 4 x 0.1 = 0.6 of white
    assert int(plots.modality_image(np.zeros((1, 2, 2), np.float32), "edge_texture")[0, 0, 0]) == 255

