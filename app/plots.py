"""Pictures for the app: plotly figures and small image helpers. No gradio, no model calls.

Images are drawn at display size with the patch grid of the model laid over them, so a heatmap
cell covers exactly the patch whose token it describes. Text is drawn as a grid of word cells.
Inside `phone_layout` the same figures are drawn for a phone-wide screen.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import io
import math
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots
from PIL import Image, ImageDraw, ImageFont

from mango import interpret
from mango.data.transforms import taskonomy_depth_metres

from .colours import class_colour, hex_to_rgb, text_colour_on

FONT = "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
KEY_RGB = (37, 99, 235)  # blue: keys (whose features decided the weights)
VALUE_RGB = (234, 88, 12)  # orange: values (whose content was mixed in)
ROLL_RGB = (126, 34, 206)  # purple: rollout
QUERY_COLOUR = "#111827"
OUTPUT_COLOUR = "#16a34a"
OUTLINE_DASH = {OUTPUT_COLOUR: "dash"}  # told apart from the query's by its shape, not its colour alone
WORDS_PER_ROW = 8
PHONE_WORDS_PER_ROW = 4  # a phone-wide panel (about 300 px) fits four word cells without overlap
DESKTOP_LINE = 90  # characters of a title line that fit a 700 px figure (a 1100 px window); plotly does not wrap
PHONE_LINE = 40  # characters of a title or message line that fit a phone-wide plot (plotly does not wrap text)
PHONE_AXIS_LINE = 32  # an axis title is centred on the plot area, narrower than the figure
PHONE_MODEBAR = 36  # px kept free above a phone figure's title: the modebar stays shown on a touch screen
PHONE_PANEL = 300  # px: the height of each panel of a multi-panel figure stacked on a phone

_PHONE = contextvars.ContextVar("mango_phone_layout", default=False)


@contextlib.contextmanager
def phone_layout(on: bool = True) -> Iterator[None]:
    """Figures built inside are laid out for a phone-wide screen: titles wrapped at PHONE_LINE characters,
    the panels of a two-panel figure stacked instead of side by side, fewer words per row. Plotly can
    neither wrap text nor restack subplots to the browser's width, so the server decides, per event."""
    token = _PHONE.set(on)
    try:
        yield
    finally:
        _PHONE.reset(token)


def on_phone() -> bool:
    return _PHONE.get()


_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_WORD = re.compile(r"(?:</?[A-Za-z][^<>]*>|[^ \t\n<]|<)+")  # between spaces (a no-break space holds); a tag whole


def wrap_markup(text: str, width: int) -> str:
    """Plotly's HTML-like text wrapped at ``width`` visible characters: existing ``<br>`` kept, breaks
    only at spaces, and a tag open at a break (a subtitle's ``<span>``) closed and reopened around it."""
    return "<br>".join(_wrap_markup_line(line, width) for line in re.split(r"<br\s*/?>", text, flags=re.I))


def _wrap_markup_line(line: str, width: int) -> str:
    out: list[str] = []
    used = 0
    open_tags: list[str] = []
    for word in _WORD.findall(line):
        visible = len(_TAG.sub("", word))
        if used and used + 1 + visible > width:
            names = [re.match(r"<\s*(\w+)", tag).group(1) for tag in open_tags]  # type: ignore[union-attr]
            out.append("".join(f"</{name}>" for name in reversed(names)) + "<br>" + "".join(open_tags))
            used = 0
        elif out:
            out.append(" ")
            used += 1
        out.append(word)
        used += visible
        for tag in _TAG.findall(word):
            if tag.startswith("</"):
                if open_tags:
                    open_tags.pop()
            elif not tag.endswith("/>"):
                open_tags.append(tag)
    return "".join(out)


def _phone_title(title: str, below: int) -> tuple[dict, int]:
    """A phone figure's title, wrapped and anchored under the modebar, and the top margin it takes with
    ``below`` px left between it and the plot (for subplot titles)."""
    text = wrap_markup(title, PHONE_LINE)
    lines = len(re.findall(r"<br\s*/?>", text, flags=re.I)) + 1
    heading = dict(text=text, font=dict(size=14), x=0.01, xanchor="left", yref="container", y=1, yanchor="top",
                   pad=dict(t=PHONE_MODEBAR))
    return heading, PHONE_MODEBAR + 19 * lines + below


def _cell(k: int) -> dict:
    """Where panel ``k`` (from 1) of a multi-panel figure goes: side by side, or stacked on a phone."""
    return dict(row=k, col=1) if on_phone() else dict(row=1, col=k)


def _panel_grid(n: int, titles: Sequence[str], spacing: float, phone_gap: int) -> go.Figure:
    """Subplots side by side (``spacing``: the share of the width between them), or on a phone stacked,
    each PHONE_PANEL px tall with ``phone_gap`` px between them (`_stacked_height` in all)."""
    if on_phone():
        return make_subplots(rows=n, cols=1, subplot_titles=list(titles),
                             vertical_spacing=phone_gap / _stacked_height(n, phone_gap))
    return make_subplots(rows=1, cols=n, subplot_titles=list(titles), horizontal_spacing=spacing)


def _stacked_height(n: int, gap: int) -> int:
    """The px that ``n`` panels stacked on a phone take, ``gap`` px apart."""
    return n * PHONE_PANEL + (n - 1) * gap


def _lut(scale: str) -> np.ndarray:
    colours = sample_colorscale(scale, np.linspace(0, 1, 256).tolist(), colortype="tuple")
    return (np.array(colours) * 255).round().astype(np.uint8)


_LUTS: dict[str, np.ndarray] = {}


def colourise(values: np.ndarray, scale: str = "Viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """(H, W) float -> (H, W, 3) uint8 through a plotly colour scale."""
    if scale not in _LUTS:
        _LUTS[scale] = _lut(scale)
    lo = float(np.nanmin(values)) if vmin is None else vmin
    hi = float(np.nanmax(values)) if vmax is None else vmax
    scaled = np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return _LUTS[scale][(scaled * 255).round().astype(np.int64)]


def modality_image(pixels: np.ndarray, modality: str) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8 for showing: depth colourised, others as grey/colour."""
    pixels = np.clip(np.nan_to_num(pixels.astype(np.float32)), 0, 1)
    if pixels.shape[0] == 3:
        return (pixels.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    single = pixels[0]
    if modality in ("depth_zbuffer", "depth_euclidean"):  # log depth: shown in metres, like the NYU depth
        metres = taskonomy_depth_metres(single)
        # Taskonomy's "no depth" (65535: 128 m) would darken the whole room: the far end of the scale is the
        # farthest pixel within 64 m, which no indoor scene exceeds
        measured = metres[metres < 64.0]
        return colourise(metres, "Viridis", 0.0, max(float(measured.max()) if measured.size else 64.0, 1e-6))
    if "depth" in modality:
        return colourise(single, "Viridis", 0.0, max(float(single.max()), 1e-6))
    if modality == "edge_texture":
        single = 1.0 - np.clip(single * 4.0, 0, 1)  # faint edges made visible, dark on white
    grey = (single * 255).round().astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def resize_image(image: np.ndarray, size: int | tuple[int, int], nearest: bool = False) -> np.ndarray:
    """uint8 image to (size, size) or (width, height)."""
    target = (size, size) if isinstance(size, int) else size
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize(target, resample))


def label_colours(labels: np.ndarray) -> np.ndarray:
    """(H, W) int class map -> (H, W, 3) uint8 with the class palette."""
    table = np.array([hex_to_rgb(class_colour(i)) for i in range(int(labels.max()) + 1)], dtype=np.uint8)
    return table[labels]


def blend(base: np.ndarray, top: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    return (base.astype(np.float32) * (1 - alpha) + top.astype(np.float32) * alpha).round().astype(np.uint8)


PICKER_HEADER = 22  # px above each picker panel for its title
PHONE_PICKER = 320  # px of a stacked picker panel: a phone's column, 8 patches of 40 px (a finger's width)


def grid_picker(images: Sequence[np.ndarray], grid: tuple[int, int], titles: Sequence[str], size: int = 256,
                gap: int = 16, marked: tuple[int, int] | None = None) -> np.ndarray:
    """The images at size x size with the patch grid drawn, for clicking a query patch: side by side, or
    on a phone stacked, each under its title (side by side a patch was 20 px wide there, too small to tap).

    ``marked`` = (panel, token) outlines one patch. Returns (size + 22, n*size + (n-1)*gap, 3) side by
    side, (n*(size + 22) + (n-1)*gap, size, 3) stacked."""
    rows, cols = grid
    n, stacked = len(images), on_phone()
    shape = (size, n * (size + PICKER_HEADER) + (n - 1) * gap) if stacked else (n * size + (n - 1) * gap, size + PICKER_HEADER)
    canvas = Image.new("RGB", shape, "white")
    draw = ImageDraw.Draw(canvas)
    for k, (image, title) in enumerate(zip(images, titles)):
        left, top = _picker_origin(k, size, gap, stacked)
        canvas.paste(Image.fromarray(resize_image(image, size)), (left, top + PICKER_HEADER))
        width = draw.textlength(title, font=_small_font())
        draw.text((left + (size - width) / 2, top + 4), title, fill=(31, 41, 55), font=_small_font())
        for r in range(1, rows):
            y = top + PICKER_HEADER + round(r * size / rows)
            draw.line([(left, y), (left + size - 1, y)], fill=(255, 255, 255), width=1)
        for c in range(1, cols):
            x = left + round(c * size / cols)
            draw.line([(x, top + PICKER_HEADER), (x, top + PICKER_HEADER + size - 1)], fill=(255, 255, 255), width=1)
    if marked is not None:
        panel, token = marked
        r, c = divmod(token, cols)
        left, top = _picker_origin(panel, size, gap, stacked)
        x0, y0 = left + c * size / cols, top + PICKER_HEADER + r * size / rows
        draw.rectangle([x0, y0, x0 + size / cols, y0 + size / rows], outline=(220, 38, 38), width=3)
    return np.asarray(canvas)


def _picker_origin(panel: int, size: int, gap: int, stacked: bool) -> tuple[int, int]:
    """The top-left corner of picker panel ``panel``'s title row."""
    return (0, panel * (size + PICKER_HEADER + gap)) if stacked else (panel * (size + gap), 0)


def picker_hit(x: float, y: float, n_panels: int, grid: tuple[int, int], size: int = 256, gap: int = 16) -> tuple[int, int] | None:
    """Pixel (x, y) on a `grid_picker` image (stacked on a phone, as it was drawn) -> (panel, token), or
    None off the images."""
    rows, cols = grid
    stacked = on_phone()
    panel = int((y if stacked else x) // (size + (PICKER_HEADER if stacked else 0) + gap))
    left, top = _picker_origin(panel, size, gap, stacked)
    local_x, local_y = x - left, y - top - PICKER_HEADER
    if not (0 <= panel < n_panels and 0 <= local_x < size and 0 <= local_y < size):
        return None
    return panel, int(local_y * rows // size) * cols + int(local_x * cols // size)


# ------------------------------------------------------------------------------ panels
@dataclass
class Panel:
    """One modality as drawn: an image (uint8 HxWx3) with its patch grid, or a list of words."""

    name: str
    image: np.ndarray | None = None
    grid: tuple[int, int] | None = None
    words: list[str] | None = None

    @property
    def is_text(self) -> bool:
        return self.words is not None

    @property
    def source(self) -> str:
        """The image as a PNG data URI (a few kB, where a raw pixel array in the figure is ~200 kB)."""
        if self._source is None:
            self._source = png_data_uri(self.image)
        return self._source

    _source: str | None = None


def png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_trace(panel: Panel) -> go.Image:
    return go.Image(source=panel.source, hoverinfo="skip")


def _alpha_scale(rgb: tuple[int, int, int], top: float = 0.85) -> list[list]:
    r, g, b = rgb
    return [[0.0, f"rgba({r},{g},{b},0)"], [0.15, f"rgba({r},{g},{b},{top * 0.35})"], [1.0, f"rgba({r},{g},{b},{top})"]]


def _diverging_scale(top: float = 0.85) -> list[list]:
    return [
        [0.0, f"rgba(37,99,235,{top})"], [0.5, "rgba(255,255,255,0)"], [1.0, f"rgba(220,38,38,{top})"],
    ]


def _text_layout(n: int) -> tuple[int, int]:
    cols = min(PHONE_WORDS_PER_ROW if on_phone() else WORDS_PER_ROW, max(1, n))
    return math.ceil(n / cols), cols


CELL_CHARS = 7  # characters of a word that fit one line of its cell (about 42 px on a desktop, 11 px font)


def _cell_label(word: str) -> tuple[str, int]:
    """A word as its cell shows it, and the font size: a longer word is split over two lines in a smaller
    font ("astron-", "omers"), and past two lines cut with "…" (the hover has it whole); on one line
    "expedition" ran into its neighbours."""
    if len(word) <= CELL_CHARS:
        return word, 11
    if len(word) > 2 * CELL_CHARS:
        word = word[: 2 * CELL_CHARS - 1] + "…"
    half = (len(word) + 1) // 2
    return f"{word[:half]}-<br>{word[half:]}", 10


def _add_panel(fig: go.Figure, k: int, panel: Panel, layers: Sequence[tuple[np.ndarray, str, str]],
               outlines: Sequence[tuple[int, str, str]] = ()) -> None:
    """Draw panel ``k`` (from 1, see `_cell`): background, then each (values (T,), coloraxis, hover
    name) layer with zeros transparent, then outlined tokens (local index, colour, label)."""
    if panel.is_text:
        words = panel.words or []
        n = len(words)
        rows, cols = _text_layout(n)
        ys, xs = np.divmod(np.arange(n), cols)
        background = np.full((rows, cols), np.nan)
        background.flat[:n] = 0.0
        fig.add_trace(go.Heatmap(z=background, colorscale=[[0, "#f3f4f6"], [1, "#f3f4f6"]], showscale=False,
                                 hoverinfo="skip", xgap=2, ygap=2), **_cell(k))
        for values, axis, label in layers:
            z = np.full((rows, cols), np.nan)
            z.flat[:n] = values[:n]
            hover = np.full((rows, cols), "", dtype=object)
            hover.flat[:n] = [f"{w} (token {i}): {label} {v:.4f}" for i, (w, v) in enumerate(zip(words, values[:n]))]
            fig.add_trace(go.Heatmap(z=z, coloraxis=axis, xgap=2, ygap=2, text=hover, hoverinfo="text"), **_cell(k))
        labels, sizes = zip(*(_cell_label(w) for w in words)) if words else ((), ())
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="text", text=list(labels), hoverinfo="skip",
                                 textfont=dict(size=list(sizes), color="#111827", family=FONT), showlegend=False),
                      **_cell(k))
        for token, colour, _ in outlines:
            if 0 <= token < n:
                r, c = divmod(token, cols)
                _outline(fig, k, (c - 0.5, c + 0.5, r - 0.5, r + 0.5), colour)
        fig.update_xaxes(visible=False, range=[-0.5, cols - 0.5], **_cell(k))
        fig.update_yaxes(visible=False, autorange="reversed", **_cell(k))
        return
    image = panel.image
    assert image is not None and panel.grid is not None
    height, width = image.shape[:2]
    rows, cols = panel.grid
    ph, pw = height / rows, width / cols
    fig.add_trace(_image_trace(panel), **_cell(k))
    for values, axis, label in layers:
        z = np.asarray(values, dtype=float).reshape(rows, cols)
        hover = [[f"{panel.name} patch (row {r}, col {c}): {label} {z[r, c]:.4f}" for c in range(cols)] for r in range(rows)]
        fig.add_trace(go.Heatmap(z=z, x0=(pw - 1) / 2, dx=pw, y0=(ph - 1) / 2, dy=ph, coloraxis=axis,
                                 text=hover, hoverinfo="text"), **_cell(k))
    for token, colour, _ in outlines:
        r, c = divmod(token, cols)
        _outline(fig, k, (c * pw - 0.5, (c + 1) * pw - 0.5, r * ph - 0.5, (r + 1) * ph - 0.5), colour)
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], **_cell(k))
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor=f"x{'' if k == 1 else k}", **_cell(k))


def _outline(fig: go.Figure, k: int, box: tuple[float, float, float, float], colour: str) -> None:
    """A token's outline over a white halo, the receiving token's dashed: on its own orange value cell a
    plain green line was 1.3:1 in contrast, and invisible to protanopes."""
    x0, x1, y0, y1 = box
    for line in (dict(color="white", width=6), dict(color=colour, width=3, dash=OUTLINE_DASH.get(colour, "solid"))):
        fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=line, **_cell(k))


def _base_figure(panels: Sequence[Panel], title: str, height: int = 380) -> go.Figure:
    fig = _panel_grid(len(panels), [p.name for p in panels], 0.08, phone_gap=48)
    if on_phone():
        heading, top = _phone_title(title, below=30)
        height = top + _stacked_height(len(panels), 48) + 10
    else:
        title = wrap_markup(title, DESKTOP_LINE)
        # a third line and more: the title hangs from below the figure's floating label (44 px), with room made
        extra = (18 * (title.count("<br>") - 1) + 34) if title.count("<br>") > 1 else 0
        anchor = dict(yref="container", y=1, yanchor="top", pad=dict(t=44)) if extra else {}
        heading, top, height = dict(text=title, font=dict(size=14), x=0.01, xanchor="left", **anchor), 80 + extra, height + extra
    fig.update_layout(
        title=heading, height=height, margin=dict(l=10, r=10, t=top, b=10), font=dict(family=FONT, size=12),
        plot_bgcolor="white", paper_bgcolor="white",
    )
    return fig


def _colorbar(title: str, y: float, x: float = 1.0, length: float = 0.42) -> dict:
    return dict(title=dict(text=title, side="right", font=dict(size=11)), y=y, len=length, x=x, thickness=12,
                tickfont=dict(size=10), exponentformat="e")


def _split(values: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    return values[:t], values[t:]


# ------------------------------------------------------------------------------ words for a screen reader
def plain_text(markup: str) -> str:
    """Plotly's HTML-like text as one line of words: line breaks become spaces, tags and entities go."""
    return " ".join(html.unescape(_TAG.sub("", re.sub(r"<br\s*/?>", " ", markup, flags=re.I))).split())


def _sentence(text: str) -> str:
    text = plain_text(text)
    return text if not text or text[-1] in ".:;!?" else text + "."


def _with_alt(fig: go.Figure, *sentences: str) -> go.Figure:
    """Keep what ``fig`` shows, in words, as ``layout.meta.alt``. The page's script (app/page.js) reads it to a
    screen reader in place of the SVG's own text, which came as tick labels and bar values in drawing order
    ("78% 68% … 20% 40% … Sport War … Comedy"), the names last and reversed."""
    fig.update_layout(meta=dict(alt=" ".join(filter(None, (_sentence(s) for s in sentences)))))
    return fig


def figure_alt(fig: go.Figure) -> str:
    """The words `_with_alt` kept for ``fig`` ("" for a figure built elsewhere)."""
    meta = fig.layout.meta
    return str(meta.get("alt", "")) if isinstance(meta, dict) else ""


def token_names(panels: Sequence[Panel], t: int) -> tuple[list[str], list[str | None]]:
    """Each of the two panels' ``t`` tokens named as the titles and texts name them ("rgb (row 2, col 5)",
    "plot token 3 'storm'", "plot token 60 (padding)"), and the same names with None for a text panel's
    padding, which is not drawn (for `strongest_tokens`)."""
    text = next((k for k, p in enumerate(panels) if p.is_text), None)
    grid = next((p.grid for p in panels if not p.is_text), None)
    words = panels[text].words or [] if text is not None else None
    modalities = tuple(p.name for p in panels)
    named: list[str] = []
    drawn: list[str | None] = []
    for token in range(len(panels) * t):
        name = interpret.token_label(token, t, modalities, grid, words, "ab"[text] if text is not None else None)
        pad = text is not None and token // t == text and token % t >= len(words or [])
        named.append(f"{name} (padding)" if pad else name)
        drawn.append(None if pad else name)
    return named, drawn


def strongest_tokens(weights: np.ndarray, names: Sequence[str | None], top: int = 3, number: str = ".3f",
                     shown: np.ndarray | None = None) -> str:
    """The named tokens of the ``top`` largest positive weights, each with its value in ``shown`` (default:
    the weight); unnamed tokens (None) are left out. The figures show the values only on hover."""
    shown = weights if shown is None else shown
    order = [int(t) for t in np.argsort(-weights, kind="stable") if names[t] is not None and weights[t] > 0][:top]
    return ", ".join(f"{names[t]} {shown[t]:{number}}" for t in order) or "none"


def _panels_in_words(panels: Sequence[Panel]) -> str:
    def one(panel: Panel) -> str:
        if panel.is_text:  # word pieces, with the start and end tokens
            return f"{panel.name} ({len(panel.words or [])} tokens)"
        rows, cols = panel.grid if panel.grid else (1, 1)
        return f"{panel.name} ({rows} × {cols} patches)"
    return " and ".join(one(p) for p in panels)


WEIGHT_RANGE = (0.0, 1.0)  # every attention/rollout colour scale: a weight's share of its row, never rescaled


def attention_figure(panels: Sequence[Panel], keys: np.ndarray, values: np.ndarray, query_token: int,
                     output_token: int, title: str) -> go.Figure:
    """One row of an ICA layer over both modalities: the comparison weights S on the keys in blue, the
    mixing weights A on the values in orange, query and receiving token outlined. Both colour scales
    are fixed at 0–1 (each row sums to 1), so a layer that barely mixes shows orange only on its self
    weight, however sharply its S compares, and faint weights stay faint."""
    t = len(keys) // 2
    fig = _base_figure(panels, title)
    for col, panel in enumerate(panels, start=1):
        k, v = keys[(col - 1) * t : col * t], values[(col - 1) * t : col * t]
        outlines = []
        if (col - 1) * t <= query_token < col * t:
            outlines.append((query_token - (col - 1) * t, QUERY_COLOUR, "query"))
        if (col - 1) * t <= output_token < col * t:
            outlines.append((output_token - (col - 1) * t, OUTPUT_COLOUR, "receives the mix"))
        layers = [(np.where(k > 0, k, np.nan), "coloraxis", "key weight"), (np.where(v > 0, v, np.nan), "coloraxis2", "value weight")]
        _add_panel(fig, col, panel, layers, outlines)
    low, high = WEIGHT_RANGE
    fig.update_layout(
        coloraxis=dict(colorscale=_alpha_scale(KEY_RGB), cmin=low, cmax=high, colorbar=_colorbar("key: S (0–1)", 0.78)),
        coloraxis2=dict(colorscale=_alpha_scale(VALUE_RGB), cmin=low, cmax=high,
                        colorbar=_colorbar("value: A (0–1)", 0.25)),
    )
    called, names = token_names(panels, t)
    return _with_alt(fig, title, f"Drawn over {_panels_in_words(panels)}: blue is each key's comparison weight S, "
                     "orange each value's mixing weight A, both from 0 to 1",
                     f"Outlined: the query, {called[query_token]} (solid black), and the token that receives the mix, "
                     f"{called[output_token]} (dashed green)",
                     f"Strongest keys: {strongest_tokens(keys, names)}",
                     "Strongest values other than its own: "
                     + strongest_tokens(values, [None if k == output_token else n for k, n in enumerate(names)]))


def token_weights_figure(panels: Sequence[Panel], weights: np.ndarray, title: str, query_token: int | None,
                         colorbar_title: str, rgb: tuple[int, int, int] = ROLL_RGB) -> go.Figure:
    """Non-negative weights over every token of both modalities (e.g. a rollout row), on a fixed 0–1 scale."""
    t = len(weights) // 2
    fig = _base_figure(panels, title)
    for col, panel in enumerate(panels, start=1):
        w = weights[(col - 1) * t : col * t]
        outlines = []
        if query_token is not None and (col - 1) * t <= query_token < col * t:
            outlines.append((query_token - (col - 1) * t, QUERY_COLOUR, "query"))
        _add_panel(fig, col, panel, [(np.where(w > 0, w, np.nan), "coloraxis", colorbar_title)], outlines)
    low, high = WEIGHT_RANGE
    fig.update_layout(coloraxis=dict(colorscale=_alpha_scale(rgb), cmin=low, cmax=high,
                                     colorbar=_colorbar(f"{colorbar_title} (0–1)", 0.5, length=0.8)))
    called, names = token_names(panels, t)
    query = f"; the query, {called[query_token]}, is outlined" if query_token is not None else ""
    return _with_alt(fig, title, f"Drawn over {_panels_in_words(panels)}: each token's {colorbar_title} from 0 to 1"
                     + query, f"Largest: {strongest_tokens(weights, names)}")


def signed_maps_figure(panels: Sequence[Panel], maps: Sequence[np.ndarray], title: str, colorbar_title: str) -> go.Figure:
    """Signed attributions over both modalities: red raises the target, blue lowers it, drawn over the
    inputs in light grey (blue over a yellow depth map read as grey).

    Each modality gets its own colour scale, symmetric at its largest value: on one shared scale a
    modality whose total is spread over 64 patches looked empty beside two strong words, though its total
    was over half of theirs (the per-modality totals are the bars above, and each colour bar says its
    range). Image maps are (H, W) at any resolution (drawn over the image), text maps (L,) per word."""
    fig = _base_figure(panels, title)
    scales = {}
    for k, (panel, values) in enumerate(zip(panels, maps), start=1):
        axis = "coloraxis" if k == 1 else f"coloraxis{k}"
        values = np.asarray(values, dtype=float)
        bound = float(np.nanmax(np.abs(values))) if values.size else 0.0
        x_domain = fig.layout[f"xaxis{'' if k == 1 else k}"].domain
        y_domain = fig.layout[f"yaxis{'' if k == 1 else k}"].domain
        scales[axis] = dict(colorscale=_diverging_scale(), cmin=-(bound or 1e-9), cmax=bound or 1e-9,
                            colorbar=_colorbar(f"{panel.name}: {colorbar_title}", (y_domain[0] + y_domain[1]) / 2,
                                               x=x_domain[1] + 0.005, length=0.8 * (y_domain[1] - y_domain[0])))
        if panel.is_text:
            _add_panel(fig, k, panel, [(values, axis, colorbar_title)])
            continue
        image = panel.image
        assert image is not None
        height, width = image.shape[:2]
        fig.add_trace(_image_trace(Panel(panel.name, image=_light_grey(image), grid=panel.grid)), **_cell(k))
        dy, dx = height / values.shape[0], width / values.shape[1]
        fig.add_trace(go.Heatmap(z=values, x0=(dx - 1) / 2, dx=dx, y0=(dy - 1) / 2, dy=dy, coloraxis=axis,
                                 hovertemplate=f"{panel.name}: {colorbar_title} %{{z:.2e}}<extra></extra>"), **_cell(k))
        fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], **_cell(k))
        fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor=f"x{'' if k == 1 else k}", **_cell(k))
    fig.update_layout(**scales)
    ranges = "; ".join(f"{panel.name} from {_number(float(np.nanmin(m)))} to {_number(float(np.nanmax(m)))}"
                       for panel, m in zip(panels, maps) if np.size(m))
    return _with_alt(fig, title, f"Drawn over {_panels_in_words(panels)}: red raises the target, blue lowers it, "
                     f"each modality on its own colour scale ({colorbar_title})", f"Values: {ranges}" if ranges else "")


def _light_grey(image: np.ndarray) -> np.ndarray:
    """The image's luminance lifted to 50–100 % white: a quiet ground for a red/blue map."""
    luminance = image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    grey = (127.5 + luminance / 2).round().astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def matrix_figure(matrices: Sequence[np.ndarray], titles: Sequence[str], labels: Sequence[str], names: tuple[str, str],
                  title: str) -> go.Figure:
    """(N, N) token-mixing matrices in original positions (rows: output token, columns: input token),
    with the modality blocks marked. The colour is |weight| on a fixed linear 0–1 scale (the hover
    gives the signed value): a near-identity matrix shows as its diagonal and nothing else."""
    n = len(labels)
    t = n // 2
    fig = _panel_grid(len(matrices), titles, 0.1, phone_gap=90)
    positions = np.arange(n)
    low, high = WEIGHT_RANGE
    for k, matrix in enumerate(matrices, start=1):
        m = np.asarray(matrix, dtype=np.float32)
        z = np.clip(np.abs(m), low, high).astype(np.float32)
        # numpy arrays travel as compact base64 typed arrays; labels are looked up per row/column
        fig.add_trace(go.Heatmap(
            z=z, x=positions, y=positions, customdata=m, coloraxis="coloraxis",
            hovertemplate="output token %{y} ← input token %{x}<br>weight %{customdata:.4f}<extra></extra>",
        ), **_cell(k))
        for pos in (t - 0.5,):
            fig.add_shape(type="line", x0=pos, x1=pos, y0=-0.5, y1=n - 0.5, line=dict(color="#111827", width=1), **_cell(k))
            fig.add_shape(type="line", y0=pos, y1=pos, x0=-0.5, x1=n - 0.5, line=dict(color="#111827", width=1), **_cell(k))
        ticks = [t / 2 - 0.5, t + t / 2 - 0.5]
        fig.update_xaxes(tickvals=ticks, ticktext=[f"{names[0]} (input)", f"{names[1]} (input)"], showgrid=False,
                         range=[-0.5, n - 0.5], **_cell(k))
        fig.update_yaxes(tickvals=ticks, ticktext=[f"{names[0]}", f"{names[1]}"], showgrid=False, autorange="reversed",
                         scaleanchor=f"x{'' if k == 1 else k}", **_cell(k))
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), x=0.01), height=430, margin=dict(l=10, r=10, t=70, b=10),
        font=dict(family=FONT, size=12), paper_bgcolor="white", plot_bgcolor="white",
        coloraxis=dict(colorscale="Magma", reversescale=True, cmin=low, cmax=high,
                       colorbar=dict(title=dict(text="|weight| (0–1, linear)", side="right"), thickness=12)),
    )
    if on_phone():
        heading, top = _phone_title(title, below=30)
        fig.update_layout(title=heading, margin=dict(t=top, b=50), height=top + _stacked_height(len(matrices), 90) + 50)
    diagonals = ", ".join(f"{name} {float(np.clip(np.abs(np.diagonal(np.asarray(m))), low, high).mean()):.2f}"
                          for name, m in zip(titles, matrices))
    return _with_alt(fig, title, f"{len(matrices)} matrices of {n} tokens, {names[0]} first and then {names[1]}; "
                     "the colour is the absolute weight from 0 to 1",
                     f"The mean absolute weight on the diagonal (what a token keeps of itself): {diagonals}")


# plotly offers bar charts box and lasso selection: two more Tab stops that select nothing here
NO_SELECTION = dict(remove=["select2d", "lasso2d"])
BAR_LABEL_ROOM = 0.3  # of the bars' span, left beyond the longest for its value


def bar_figure(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], title: str,
               axis_title: str, height: int = 320, subtitle: str | None = None) -> go.Figure:
    """Grouped horizontal bars: series = (name, values per category, colour)."""
    fig, said = go.Figure(), (title, subtitle or "")
    for name, values, colour in series:
        fig.add_trace(go.Bar(y=list(categories), x=list(values), name=name, orientation="h", marker_color=colour,
                             text=[_number(v) for v in values], textposition="auto", cliponaxis=False,
                             insidetextanchor="middle", insidetextfont=dict(color=text_colour_on(colour))))
    if subtitle:
        title = f"{title}<br><span style='font-size:12px;color:#4b5563'>{subtitle}</span>"
    if on_phone():
        axis_title = wrap_markup(axis_title, PHONE_AXIS_LINE)
    top, bottom = (70 if subtitle else 50), 40
    # room beyond the longest bars for a value that does not fit inside them (on a phone it ran off the edge)
    values = [float(v) for _, vs, _ in series for v in vs if np.isfinite(v)] or [0.0]
    low, high = min(0.0, *values), max(0.0, *values)
    room = BAR_LABEL_ROOM * ((high - low) or 1.0)
    fig.update_layout(
        barmode="group", title=dict(text=title, font=dict(size=14), x=0.01), height=height,
        margin=dict(l=10, r=40, t=top, b=bottom), font=dict(family=FONT, size=12), paper_bgcolor="white",
        plot_bgcolor="white", xaxis=dict(title=axis_title, zeroline=True, zerolinecolor="#9ca3af", gridcolor="#f3f4f6",
                                         range=[low - room if low < 0 else low, high + room if high > 0 else high]),
        yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.25, x=0), modebar=NO_SELECTION,
    )
    if on_phone():  # the plot keeps its height; the wrapped title, axis title and legend get theirs
        heading, phone_top = _phone_title(title, below=12)
        legend_rows = len(series) if len(series) > 1 else 0  # one series: plotly draws no legend
        phone_bottom = bottom + 16 * axis_title.count("<br>") + 22 * legend_rows
        fig.update_layout(title=heading, margin=dict(t=phone_top, b=phone_bottom),
                          height=height - top - bottom + phone_top + phone_bottom,
                          legend=dict(yref="container", y=0, yanchor="bottom"))
    bars = "; ".join(f"{category}: " + ", ".join(f"{name} {_number(float(values[k]))}" for name, values, _ in series)
                     for k, category in enumerate(categories))
    return _with_alt(fig, *said, f"Horizontal bars, {axis_title}", bars)


def _number(value: float) -> str:
    """A signed number at a readable precision: +1,234 / +12.3 / +0.0123."""
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    return f"{value:+.3g}"


def percent_beside(value: float, threshold: float) -> str:
    """``value`` as a percentage, with as many decimals (up to 3) as it takes to show which side of
    ``threshold`` it is on: 0.4987 against 0.5 reads "49.9%", not "50%"."""
    side = np.sign(value - threshold)
    for decimals in range(4):
        text = f"{100.0 * value:.{decimals}f}"
        if np.sign(round(float(text) - 100.0 * threshold, 6)) == side:
            break
    return f"{text}%"


ABOVE_THRESHOLD = "#c2410c"  # a genre's bar above its threshold: white values on it are 5.2:1 (#ea580c: 3.6:1)
INSIDE_LABEL = 0.15  # a probability from which its bar holds its value ("49.9 %") inside


def probability_figure(names: Sequence[str], probabilities: Sequence[float],
                       threshold: float | Sequence[float] = 0.5, title: str = "Genre probabilities") -> go.Figure:
    """Sorted horizontal bars of multi-label probabilities with the decision threshold: one dashed
    line when every genre shares it, a tick on each bar when the checkpoint tuned one per genre."""
    order = np.argsort(-np.asarray(probabilities))
    limits = np.broadcast_to(np.asarray(threshold, dtype=float), np.shape(probabilities))
    names = [names[i] for i in order]
    probs = [float(probabilities[i]) for i in order]
    cuts = [float(limits[i]) for i in order]
    colours = [ABOVE_THRESHOLD if p > t else "#cbd5e1" for p, t in zip(probs, cuts)]
    # a long bar's value goes inside its end: beside it, a value just under the threshold ran across its line
    inside = [p >= INSIDE_LABEL for p in probs]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colours,
                           text=[percent_beside(p, t) for p, t in zip(probs, cuts)], cliponaxis=False,
                           textposition=["inside" if k else "outside" for k in inside], insidetextanchor="end",
                           insidetextfont=dict(color=["white" if p > t else "#111827" for p, t in zip(probs, cuts)]),
                           outsidetextfont=dict(color="#111827"), textangle=0, constraintext="none",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>", showlegend=False))
    if all(t == cuts[0] for t in cuts):
        fig.add_vline(x=cuts[0], line=dict(color="#111827", dash="dash", width=1),
                      annotation_text=f"threshold {cuts[0]:g}", annotation_position="top")
    else:
        fig.add_trace(go.Scatter(x=cuts, y=names, mode="markers", name="this genre's threshold",
                                 marker=dict(symbol="line-ns-open", size=16, color="#111827", line=dict(width=2)),
                                 hovertemplate="%{y}: threshold %{x:.2f}<extra></extra>"))
    height, top = max(320, 22 * len(names) + 90), 60
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), x=0.01), height=height,
        margin=dict(l=10, r=40, t=top, b=30), font=dict(family=FONT, size=12), paper_bgcolor="white",
        plot_bgcolor="white", xaxis=dict(range=[0, 1.08], tickformat=".0%", gridcolor="#f3f4f6"),
        yaxis=dict(autorange="reversed"), modebar=NO_SELECTION,
    )
    if on_phone():
        heading, phone_top = _phone_title(title, below=12)
        fig.update_layout(title=heading, margin=dict(t=phone_top), height=height - top + phone_top)
    shared = all(t == cuts[0] for t in cuts)
    said = [f"{name} {percent_beside(p, t)}" + ("" if shared else f" (threshold {100 * t:g}%)")
            for name, p, t in zip(names, probs, cuts)]
    above = [w for w, p, t in zip(said, probs, cuts) if p > t]
    below = [w for w, p, t in zip(said, probs, cuts) if p <= t]
    limit = f"the threshold {100 * cuts[0]:g}%" if shared else "its own threshold"
    return _with_alt(fig, f"{title}, most likely first",
                     f"Above {limit}: {', '.join(above)}" if above else f"None above {limit}",
                     f"Below: {', '.join(below)}" if below else "")


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank plot that says ``message``, wrapped at PHONE_LINE characters (and at any ``<br>``) on
    every screen: its initial value is drawn before anyone's screen is known."""
    fig = go.Figure()
    fig.add_annotation(text=wrap_markup(message, PHONE_LINE), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(size=13, color="#6b7280", family=FONT))
    fig.update_layout(height=height, xaxis=dict(visible=False), yaxis=dict(visible=False), paper_bgcolor="white",
                      plot_bgcolor="white", margin=dict(l=10, r=10, t=10, b=10))
    return _with_alt(fig, message)


def image_strip(images: Sequence[np.ndarray], captions: Sequence[str], rows_titles: Sequence[str] | None = None,
                cols: int | None = None, size: int = 128, legend: Sequence[tuple[str, str]] = ()) -> np.ndarray:
    """A labelled grid of images (row-major) as one uint8 picture. A caption too long for its image's
    width wraps onto a second line ("poster: Drama 53%, Horror 12%"), and a row title onto three.
    ``legend``: (name, colour) pairs drawn as swatches under the grid, e.g. the classes of predicted maps."""
    cols = cols or len(images)
    rows = math.ceil(len(images) / cols)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font, line_h = _small_font(), 14
    caption_lines = [_lines(draw, caption, font, size - 2, 2) for caption in captions]
    pad, top = 6, 34  # top: room for the component's label badge
    caption_h = 2 + line_h * max((len(lines) for lines in caption_lines), default=1)
    left = 0 if not rows_titles else 70
    width = left + cols * (size + pad) + pad
    swatches, legend_h = _legend_layout(draw, legend, font, left + pad, width - pad, line_h + 4)
    height = top + rows * (size + caption_h + pad) + pad + legend_h
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    grid_bottom = top + rows * (size + caption_h + pad) + pad
    for (x, y), (name, colour) in zip(swatches, legend):
        draw.rectangle((x, grid_bottom + y + 1, x + 11, grid_bottom + y + 12), fill=hex_to_rgb(colour))
        draw.text((x + 15, grid_bottom + y), name, fill=(31, 41, 55), font=font)
    for k, (image, lines) in enumerate(zip(images, caption_lines)):
        r, c = divmod(k, cols)
        x = left + pad + c * (size + pad)
        y = top + pad + r * (size + caption_h + pad)
        canvas.paste(Image.fromarray(resize_image(image, size)), (x, y + caption_h))
        for j, line in enumerate(lines):
            draw.text((x + 1, y + 1 + j * line_h), line, fill=(31, 41, 55), font=font)
    for r, title in enumerate(rows_titles or []):
        lines = _lines(draw, title, font, left - 8, 3)
        y = top + pad + r * (size + caption_h + pad) + caption_h + size // 2 - line_h * len(lines) // 2
        for j, line in enumerate(lines):
            draw.text((4, y + j * line_h), line, fill=(31, 41, 55), font=font)
    return np.asarray(canvas)


def _legend_layout(draw: ImageDraw.ImageDraw, legend: Sequence[tuple[str, str]], font: ImageFont.ImageFont,
                   start: int, end: int, row_h: int) -> tuple[list[tuple[int, int]], int]:
    """Where each legend entry goes (x, y below the grid), filling rows left to right, and the height used."""
    places, x, y = [], start, 2
    for name, _ in legend:
        entry = 15 + int(draw.textlength(name, font=font)) + 14
        if x + entry > end and x > start:
            x, y = start, y + row_h
        places.append((x, y))
        x += entry
    return places, (y + row_h + 4 if legend else 0)


def _lines(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: float, most: int) -> list[str]:
    """``text`` wrapped into at most ``most`` lines of ``width`` pixels, the last one cut with an ellipsis if
    the rest does not fit: after ", " or ": " where each part fits ("Drama 53%," / "Horror 49%" stay whole),
    else at spaces."""
    words: list[str] = []
    for part in re.split(r"(?<=[,:]) ", text):
        words += [part] if draw.textlength(part, font=font) <= width else part.split(" ")
    lines: list[str] = []
    while words and len(lines) < most - 1:
        line = words.pop(0)
        while words and draw.textlength(line + " " + words[0], font=font) <= width:
            line += " " + words.pop(0)
        lines.append(_fit(draw, line, font, width))  # a single word wider than the line is cut
    if words:
        lines.append(_fit(draw, " ".join(words), font, width))
    return lines


_FONT: ImageFont.ImageFont | None = None


def _small_font() -> ImageFont.ImageFont:
    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default(size=12)
    return _FONT


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
