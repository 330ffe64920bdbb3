"""The bundled examples (app/examples.py): what the app lists, and the script that regenerates them.

Written after a fifth mutation audit found the module unguarded (each test fails on its mutant)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from app import examples


def test_the_example_lists_carry_the_titles_genres_and_plots_of_their_meta_files():
    """The example buttons show these names and genres; a wrong key would show folder names or no genres."""
    found = examples.scenes()
    assert len(found) == len(examples.SCENE_SEEDS)
    for scene in found:
        assert scene.name == json.loads((scene.folder / "meta.json").read_text())["title"]
        assert scene.name.startswith("SynthRooms scene ")
    for film in examples.films():
        meta = json.loads((Path(film.poster).parent / "meta.json").read_text())
        assert film.name == meta["title"] and film.genres == tuple(meta["genres"]) and film.genres
        assert film.plot and film.plot == film.plot.strip()  # the Plot textbox gets no trailing newline


def test_a_broken_meta_file_falls_back_to_the_folder_name(tmp_path):
    """A half-written meta.json must not take the whole examples list (and the app's start) down."""
    folder = tmp_path / "scene-005"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(folder / "rgb.png")
    (folder / "meta.json").write_text("{not json")
    assert [(s.name, s.folder) for s in examples.scenes(tmp_path)] == [("scene-005", folder)]


def test_regenerating_the_examples_reproduces_the_bundled_files(tmp_path):
    """`python -m app.examples` must rewrite what is bundled (folder names, encodings, meta, posters):
    the known-answer choices key on scene folders and the tests on these very pixels."""
    seed = examples.SCENE_SEEDS[0]
    examples.write_scenes(tmp_path / "synthrooms", seeds=(seed,))
    examples.write_films(tmp_path / "films")
    made = tmp_path / "synthrooms" / f"scene-{seed:03d}"
    pairs = [(made, examples.SCENES_DIR / made.name)]
    pairs += [(tmp_path / "films" / f.name, f) for f in sorted(examples.FILMS_DIR.iterdir()) if f.is_dir()]
    # the bundled posters were drawn with DejaVu Sans: with another font only their layout could match
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    same_fonts = all((fonts / name).is_file() for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"))
    for new, bundled in pairs:
        assert sorted(p.name for p in new.iterdir()) == sorted(p.name for p in bundled.iterdir()), new
        for path in sorted(bundled.iterdir()):
            if path.name == "poster.png" and not same_fonts:
                continue
            if path.suffix == ".png":
                a = np.asarray(Image.open(new / path.name)).astype(np.int64)
                b = np.asarray(Image.open(path)).astype(np.int64)
                # float rounding may move a 16-bit value by one unit on another machine, nothing more
                assert a.shape == b.shape and np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3, path
            else:
                assert (new / path.name).read_text() == path.read_text(), path
    # scene 1 is numbered from 1 in its title, as the app's list shows it
    assert json.loads((made / "meta.json").read_text())["title"] == f"SynthRooms scene 1 (seed {seed})"


def test_a_film_without_a_readable_plot_is_left_out_with_a_warning(tmp_path, caplog):
    """An example fills the poster and the plot; a folder missing its plot.txt (or holding an empty or
    undecodable one) used to stop the app from starting, and must only drop that film."""
    for name, plot in [("complete", "A plot.\n"), ("no-plot", None), ("empty-plot", " \n"), ("bad-plot", b"\xff\xfe\xfa")]:
        folder = tmp_path / name
        folder.mkdir()
        Image.new("RGB", (4, 4)).save(folder / "poster.png")
        if isinstance(plot, str):
            (folder / "plot.txt").write_text(plot, encoding="utf-8")
        elif plot is not None:
            (folder / "plot.txt").write_bytes(plot)
    with caplog.at_level("WARNING", logger="mango.app"):
        found = examples.films(tmp_path)
    assert [(f.name, f.plot) for f in found] == [("complete", "A plot.")]
    assert sorted(name for name in ("no-plot", "empty-plot", "bad-plot") if name in caplog.text) == [
        "bad-plot", "empty-plot", "no-plot"]
