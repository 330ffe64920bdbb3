"""A checkpoint names its data the way a model card should: by the data set, never by a path."""

from __future__ import annotations

from pathlib import Path

from mango.models.card import dataset_name as _dataset_name
from train.data import build_splits


def test_a_film_folder_is_named_by_its_layout_and_distinct_films(tiny_movies):
    held = build_splits("mmimdb", tiny_movies, 32)
    fitted = build_splits("mmimdb", tiny_movies, 32, fit_on="train+val")
    films = len(held.train) + len(held.val) + len(held.test)
    expected = f"{tiny_movies.name} (MM-IMDb layout, {films} films)"
    assert held.description["name"] == expected
    assert fitted.description["name"] == expected, "the dev films are counted once when trained on"
    assert "/" not in expected and str(tiny_movies.parent) not in expected
    assert _dataset_name(held.description) == expected, "the app's model card shows the checkpoint's name"


def test_a_generated_set_is_named_by_its_generator(synthrooms):
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    assert splits.description["name"] == "SynthRooms (NYUDv2 layout)"
    assert splits.description["source"]["generator"] == "mango.data.synthrooms"
    assert "fitted" not in splits.description["source"]


def test_fitted_rooms_say_so_in_the_name_and_the_source(tmp_path):
    from mango.data.synthrooms import write_dataset

    write_dataset(tmp_path, 8, 32, seed=3, test_fraction=0.25, workers=1, progress=False, fitted=True)
    splits = build_splits("nyudv2", tmp_path / "nyudv2", 32, val_fraction=0.25)
    assert splits.description["name"] == "SynthRooms, fitted rooms (NYUDv2 layout)"
    assert splits.description["source"]["fitted"] is True
    write_dataset(tmp_path / "desks", 8, 32, seed=3, test_fraction=0.25, workers=1, progress=False, fitted="desks")
    splits = build_splits("nyudv2", tmp_path / "desks" / "nyudv2", 32, val_fraction=0.25)
    assert splits.description["name"] == "SynthRooms, desks with drawers (NYUDv2 layout)"
    assert splits.description["source"]["fitted"] == "desks"


def test_a_relative_root_records_the_folder_name_not_a_dot(tiny_movies, monkeypatch):
    monkeypatch.chdir(tiny_movies)
    splits = build_splits("mmimdb", Path("."), 32)
    assert splits.description["root"] == tiny_movies.name
    assert splits.description["name"].startswith(f"{tiny_movies.name} (")


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def test_the_description_counts_each_split_and_says_what_maps_to_what(synthrooms):
    """The model card's data line comes from this description: its counts, the Taskonomy domains
    and the generator's seed (to make the data again) must be the ones the run used."""
    from mango.models.card import data_line

    splits = build_splits("taskonomy", synthrooms / "taskonomy", 32, inputs=("depth_zbuffer", "normal"),
                          target="rgb", val_fraction=0.25)
    described = splits.description
    assert (described["train_samples"], described["val_samples"], described["test_samples"]) == (9, 3, 4)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 3, 4)
    assert described["inputs"] == ["depth_zbuffer", "normal"] and described["target"] == "rgb"
    assert "9 train / 3 val / 4 test samples" in data_line(described)
    assert "depth_zbuffer + normal → rgb" in data_line(described)
    assert described["source"]["seed"] == 3 and described["source"]["n"] == 16  # write_dataset(..., 16, seed=3)


def test_a_folder_of_scenes_is_counted_in_samples_not_films(tmp_path):
    """Only MM-IMDb counts films; any other real folder is named by its samples."""
    from train.data import dataset_name

    (tmp_path / "nyu").mkdir()
    assert dataset_name("nyudv2", tmp_path / "nyu", 1449) == "nyu (NYUDv2 layout, 1,449 samples)"
    assert dataset_name("mmimdb", tmp_path / "nyu", 12) == "nyu (MM-IMDb layout, 12 films)"
