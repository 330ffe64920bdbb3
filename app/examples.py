"""The app's example inputs, all made by this project, and the script that regenerates them.

    python -m app.examples            # rewrite assets/examples/ (a few hundred kB)

- SynthRooms scenes (``mango.data.render_scene``, procedural, seeded) saved per domain in the
  storage conventions the loaders read: ``rgb.png`` (8-bit), ``depth.png`` (16-bit millimetres,
  NYUDv2-style, for segmentation), ``depth_zbuffer.png`` (16-bit, 1/512 m, Taskonomy-style),
  ``normal.png`` (8-bit RGB, 127-centred), ``reshading.png`` (8-bit), ``edge_texture.png``
  (16-bit, x 11355), ``labels.png`` (8-bit class indices, the answer key).
- Films written for the project: a plot summary (``plot.txt``) and a poster drawn procedurally
  with PIL (``poster.png``): title, shapes and colours evocative of the genre. No real film,
  poster or plot is used.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger("mango.app")

EXAMPLES_ROOT = Path(__file__).resolve().parents[1] / "assets" / "examples"
SCENES_DIR = EXAMPLES_ROOT / "synthrooms"
FILMS_DIR = EXAMPLES_ROOT / "films"
SCENE_SEEDS = (11, 23, 42, 77)
SCENE_SIZE = 256


# ---------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Scene:
    name: str
    folder: Path

    def file(self, domain: str) -> str:
        return str(self.folder / f"{domain}.png")


@dataclass(frozen=True)
class Film:
    name: str
    poster: str
    plot: str
    genres: tuple[str, ...]


def scenes(root: Path = SCENES_DIR) -> list[Scene]:
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / "rgb.png").is_file()):
        meta = _read_json(folder / "meta.json")
        found.append(Scene(meta.get("title", folder.name), folder))
    return found


def films(root: Path = FILMS_DIR) -> list[Film]:
    """The films with a poster and a plot: a folder missing either (or whose plot cannot be read) is
    left out with a warning, since an example must fill both inputs, and the app must still start."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / "poster.png").is_file()):
        meta = _read_json(folder / "meta.json")
        try:
            plot = (folder / "plot.txt").read_text(encoding="utf-8").strip()
        except (OSError, ValueError) as err:
            log.warning("example film %s left out: its plot.txt cannot be read (%s)", folder.name, err)
            continue
        if not plot:
            log.warning("example film %s left out: its plot.txt is empty", folder.name)
            continue
        found.append(Film(meta.get("title", folder.name), str(folder / "poster.png"), plot, tuple(meta.get("genres", ()))))
    return found


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------- generating
def write_scenes(root: Path = SCENES_DIR, seeds: tuple[int, ...] = SCENE_SEEDS, size: int = SCENE_SIZE) -> None:
    from mango.data.constants import SYNTHROOMS_CLASSES
    from mango.data.synthrooms import encode_scene, render_scene

    root.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds, start=1):
        out = render_scene(seed, size)
        stored = encode_scene(out)
        folder = root / f"scene-{seed:03d}"
        folder.mkdir(exist_ok=True)
        files = {
            "rgb": stored["rgb"], "depth": stored["depth_mm"], "depth_zbuffer": stored["depth_zbuffer"],
            "normal": stored["normal"], "reshading": stored["reshading"], "edge_texture": stored["edge_texture"],
            "labels": stored["segment_semantic"],
        }
        for name, array in files.items():
            Image.fromarray(array).save(folder / f"{name}.png", optimize=True)
        present = sorted({SYNTHROOMS_CLASSES[int(k)] for k in np.unique(stored["segment_semantic"]) if k < len(SYNTHROOMS_CLASSES)})
        meta = {
            "title": f"SynthRooms scene {number} (seed {seed})", "seed": seed, "size": size,
            "generator": "mango.data.render_scene", "classes_present": present,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


FILM_TEXTS = [
    {
        "slug": "lantern-tide",
        "title": "LANTERN TIDE",
        "tagline": "Some lights are kept burning for a reason.",
        "genres": ["Mystery", "Drama"],
        "style": "sea",
        "plot": (
            "After her father vanishes in a winter storm, a young engineer returns to his island "
            "lighthouse. His logbook lists ships no harbour has heard of, and each night the lamp lights "
            "itself at 2:14. She must learn whether it warns ships away or calls something home."
        ),
    },
    {
        "slug": "orbit-of-quiet-stars",
        "title": "ORBIT OF QUIET STARS",
        "tagline": "Three hundred years from home. One voice on the radio.",
        "genres": ["Sci-Fi", "Adventure"],
        "style": "space",
        "plot": (
            "The last crew member awake on a generation ship finds the computer has been steering away "
            "from the colony for a decade. With a botanist, an old pilot and a young stowaway, she races "
            "across frozen decks to reach the bridge before the engines fire."
        ),
    },
    {
        "slug": "saddle-creek",
        "title": "SADDLE CREEK",
        "tagline": "The railroad is coming. So is the reckoning.",
        "genres": ["Western", "Action"],
        "style": "desert",
        "plot": (
            "A retired marshal runs a desert water station when a railroad baron buys every well in the "
            "valley. After hired guns burn a farm, he straps on his revolver and leads ranchers, a cook "
            "and a schoolteacher to a stand-off at the creek."
        ),
    },
    {
        "slug": "flour-and-flowers",
        "title": "FLOUR & FLOWERS",
        "tagline": "A love story, baked fresh daily.",
        "genres": ["Comedy", "Romance"],
        "style": "pastel",
        "plot": (
            "A clumsy pastry chef and a proud florist must share a tiny corner shop. Their feud over the "
            "window, the radio and a stubborn cat grows into a street-wide contest, until a wedding order "
            "forces them to work side by side all night."
        ),
    },
]


def _font(size: int, bold: bool = True) -> ImageFont.ImageFont:
    names = ["DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf"] if bold else ["DejaVuSans.ttf", "LiberationSans-Regular.ttf"]
    for name in names:
        for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation"):
            path = Path(folder) / name
            if path.is_file():
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    w, h = size
    t = np.linspace(0, 1, h)[:, None, None]
    arr = (np.array(top)[None, None] * (1 - t) + np.array(bottom)[None, None] * t).repeat(w, axis=1)
    return Image.fromarray(arr.astype(np.uint8))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + [line] if line else lines


def draw_poster(film: dict, size: tuple[int, int] = (256, 384), seed: int = 0) -> Image.Image:
    """A simple procedural poster: background, genre shapes, title and tagline."""
    rng = random.Random(seed)
    w, h = size
    style = film["style"]
    if style == "sea":
        img = _gradient(size, (12, 24, 58), (30, 64, 104))
        d = ImageDraw.Draw(img, "RGBA")
        for i in range(60):  # stars
            x, y = rng.randrange(w), rng.randrange(h // 2)
            d.point((x, y), fill=(255, 255, 255, rng.randrange(80, 220)))
        d.polygon([(w * 0.5, h * 0.32), (w * 1.25, h * 0.18), (w * 1.25, h * 0.46)], fill=(255, 236, 160, 70))  # beam
        d.polygon([(w * 0.44, h * 0.72), (w * 0.56, h * 0.72), (w * 0.53, h * 0.34), (w * 0.47, h * 0.34)], fill=(235, 235, 235))
        for k in range(4):
            y = h * (0.40 + 0.08 * k)
            d.rectangle([w * 0.45, y, w * 0.55, y + h * 0.03], fill=(190, 30, 45))
        d.rectangle([w * 0.455, h * 0.29, w * 0.545, h * 0.34], fill=(255, 232, 140))
        d.polygon([(w * 0.43, h * 0.29), (w * 0.57, h * 0.29), (w * 0.5, h * 0.25)], fill=(40, 40, 50))
        for k in range(7):  # waves
            y = h * 0.72 + k * 14
            d.arc([-40 + (k % 2) * 30, y, w + 40, y + 60], 200, 340, fill=(120, 170, 210, 160), width=3)
        d.rectangle([0, h * 0.74, w, h], fill=(10, 30, 60, 170))
    elif style == "space":
        img = _gradient(size, (4, 4, 16), (22, 10, 48))
        d = ImageDraw.Draw(img, "RGBA")
        for i in range(220):
            x, y, r = rng.randrange(w), rng.randrange(h), rng.choice([0, 0, 0, 1])
            a = rng.randrange(90, 255)
            d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255, a))
        d.ellipse([w * 0.18, h * 0.30, w * 0.82, h * 0.30 + w * 0.64], fill=(196, 72, 44))
        d.ellipse([w * 0.24, h * 0.33, w * 0.70, h * 0.33 + w * 0.44], fill=(226, 112, 64, 140))
        d.arc([w * 0.02, h * 0.44, w * 0.98, h * 0.58], 160, 380, fill=(230, 200, 160), width=4)
        d.polygon([(w * 0.72, h * 0.20), (w * 0.80, h * 0.17), (w * 0.78, h * 0.23)], fill=(220, 220, 230))
    elif style == "desert":
        img = _gradient(size, (250, 170, 60), (170, 50, 40))
        d = ImageDraw.Draw(img, "RGBA")
        d.ellipse([w * 0.25, h * 0.28, w * 0.75, h * 0.28 + w * 0.5], fill=(255, 226, 120, 230))
        d.polygon([(0, h * 0.66), (w * 0.2, h * 0.55), (w * 0.38, h * 0.55), (w * 0.46, h * 0.66)], fill=(90, 30, 30))
        d.polygon([(w * 0.55, h * 0.66), (w * 0.66, h * 0.50), (w * 0.9, h * 0.50), (w, h * 0.6), (w, h * 0.66)], fill=(110, 38, 34))
        d.rectangle([0, h * 0.66, w, h], fill=(60, 22, 20))
        cx = w * 0.3  # a cactus
        d.rounded_rectangle([cx - 8, h * 0.50, cx + 8, h * 0.70], 8, fill=(30, 16, 14))
        d.rounded_rectangle([cx - 26, h * 0.56, cx - 14, h * 0.63], 6, fill=(30, 16, 14))
        d.rectangle([cx - 20, h * 0.61, cx - 8, h * 0.63], fill=(30, 16, 14))
        d.rounded_rectangle([cx + 14, h * 0.53, cx + 26, h * 0.60], 6, fill=(30, 16, 14))
        d.rectangle([cx + 8, h * 0.58, cx + 20, h * 0.60], fill=(30, 16, 14))
        rx = w * 0.68  # a rider
        d.ellipse([rx - 18, h * 0.60, rx + 22, h * 0.645], fill=(30, 16, 14))
        for dx in (-14, -6, 10, 18):
            d.line([(rx + dx, h * 0.635), (rx + dx + 2, h * 0.69)], fill=(30, 16, 14), width=3)
        d.line([(rx + 20, h * 0.62), (rx + 30, h * 0.58)], fill=(30, 16, 14), width=6)
        d.rectangle([rx - 4, h * 0.55, rx + 6, h * 0.61], fill=(30, 16, 14))
        d.ellipse([rx - 4, h * 0.525, rx + 6, h * 0.55], fill=(30, 16, 14))
        d.rectangle([rx - 9, h * 0.522, rx + 11, h * 0.528], fill=(30, 16, 14))
    else:  # pastel
        img = _gradient(size, (255, 228, 236), (255, 244, 214))
        d = ImageDraw.Draw(img, "RGBA")
        for _ in range(16):  # flowers
            x, y, r = rng.randrange(w), rng.randrange(int(h * 0.26), int(h * 0.80)), rng.randrange(8, 16)
            colour = rng.choice([(244, 114, 182, 200), (251, 146, 60, 200), (167, 139, 250, 200)])
            for k in range(5):
                ang = 2 * math.pi * k / 5
                px, py = x + r * math.cos(ang), y + r * math.sin(ang)
                d.ellipse([px - r * 0.6, py - r * 0.6, px + r * 0.6, py + r * 0.6], fill=colour)
            d.ellipse([x - r * 0.4, y - r * 0.4, x + r * 0.4, y + r * 0.4], fill=(253, 224, 71, 255))
        cx, cy, s = w * 0.5, h * 0.52, 46  # a heart
        d.ellipse([cx - s, cy - s * 0.6, cx, cy + s * 0.35], fill=(225, 29, 72, 230))
        d.ellipse([cx, cy - s * 0.6, cx + s, cy + s * 0.35], fill=(225, 29, 72, 230))
        d.polygon([(cx - s * 0.97, cy), (cx + s * 0.97, cy), (cx, cy + s * 1.1)], fill=(225, 29, 72, 230))
        d.rounded_rectangle([cx - 30, cy + 70, cx + 30, cy + 100], 10, fill=(253, 230, 138))  # a loaf
        d.arc([cx - 30, cy + 60, cx + 30, cy + 100], 180, 360, fill=(180, 120, 60), width=4)
    img = img.filter(ImageFilter.SMOOTH)
    d = ImageDraw.Draw(img, "RGBA")
    dark_text = style == "pastel"
    ink = (40, 24, 30) if dark_text else (250, 245, 235)
    title_font = _font(30)
    lines = _wrap(d, film["title"], title_font, w - 28)
    y = 22
    for line in lines:
        tw = d.textlength(line, font=title_font)
        if not dark_text:
            d.text(((w - tw) / 2 + 2, y + 2), line, font=title_font, fill=(0, 0, 0, 150))
        d.text(((w - tw) / 2, y), line, font=title_font, fill=ink)
        y += 36
    tag_font = _font(13, bold=False)
    tag_lines = _wrap(d, film["tagline"], tag_font, w - 36)
    y = h - 22 - 18 * len(tag_lines)
    for line in tag_lines:
        tw = d.textlength(line, font=tag_font)
        d.text(((w - tw) / 2, y), line, font=tag_font, fill=ink)
        y += 18
    return img


def _title_case(title: str) -> str:
    small = {"of", "and", "the", "a", "in"}
    words = title.lower().split()
    return " ".join(w if k and w in small else w.capitalize() for k, w in enumerate(words))


def write_films(root: Path = FILMS_DIR) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for seed, film in enumerate(FILM_TEXTS):
        folder = root / film["slug"]
        folder.mkdir(exist_ok=True)
        draw_poster(film, seed=seed).save(folder / "poster.png", optimize=True)
        (folder / "plot.txt").write_text(film["plot"] + "\n", encoding="utf-8")
        meta = {"title": _title_case(film["title"]), "genres": film["genres"], "tagline": film["tagline"],
                "made_by": "the MANGO project (procedural poster, original plot)"}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=EXAMPLES_ROOT, help="folder to write (default assets/examples)")
    args = parser.parse_args(argv)
    write_scenes(args.out / "synthrooms")
    write_films(args.out / "films")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out} ({total / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
