"""What the public releases actually store, read right: SUN RGB-D's bit-rotated depth, MM-IMDb's
several plot paragraphs and disjoint splits, palette and 1-bit pictures, 16-bit Taskonomy edges,
list files saved with a byte-order mark, and splits that hold nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mango.data import SUNRGBD, DataError, MMIMDb, NYUDv2, PairedTransform, Taskonomy, fill_depth_holes
from mango.data.errors import read_rgb
from mango.data.transforms import rgb_to_unit


def _sun(root, depth_mm: np.ndarray, rotate: bool, **options) -> SUNRGBD:
    for d in ("RGB", "Depth", "labels"):
        (root / d).mkdir(parents=True, exist_ok=True)
    h, w = depth_mm.shape
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / "RGB" / "0001.jpg")
    stored = ((depth_mm << 3) | (depth_mm >> 13)).astype(np.uint16) if rotate else depth_mm
    Image.fromarray(stored).save(root / "Depth" / "0001.png")
    Image.fromarray(np.ones((h, w), np.uint8)).save(root / "labels" / "0001.png")
    (root / "train.txt").write_text("RGB/0001.jpg\n")
    return SUNRGBD(root, "train", image_size=8, **options)


def test_sunrgbd_official_bit_rotated_depth_reads_as_millimetres(tmp_path):
    depth = np.random.default_rng(0).integers(500, 6000, (8, 8)).astype(np.uint16)
    depth[0, 0] = 0  # a hole stays a hole through the rotation, then takes its nearest measured depth
    plain = _sun(tmp_path / "plain", depth, rotate=False)
    official = _sun(tmp_path / "official", depth, rotate=True)  # as the SUN3D toolbox's depthRead undoes it
    filled = fill_depth_holes(depth)[0]
    assert filled[0, 0] in (depth[0, 1], depth[1, 0], depth[1, 1])
    assert np.array_equal(official.load_raw(0)[2], filled) and np.array_equal(plain.load_raw(0)[2], filled)
    np.testing.assert_array_equal(official[0]["b"].numpy(), plain[0]["b"].numpy())
    explicit = _sun(tmp_path / "explicit", depth, rotate=True, depth_scale=1e-3)  # the default, said explicitly
    np.testing.assert_array_equal(explicit.load_raw(0)[2], filled)
    far = np.full((8, 8), 30001, np.uint16)  # 30 m of plain millimetres indoors: a unit mistake, said
    with pytest.raises(DataError, match="not indoor millimetres"):
        _sun(tmp_path / "far", far, rotate=False)[0]


def _films(root, split: dict, plots: dict, poster: np.ndarray | None = None) -> None:
    (root / "dataset").mkdir(parents=True)
    (root / "split.json").write_text(json.dumps(split))
    for i, plot in plots.items():
        Image.fromarray(np.zeros((12, 8, 3), np.uint8) if poster is None else poster).save(
            root / "dataset" / f"{i}.jpeg", quality=100, subsampling=0)
        (root / "dataset" / f"{i}.json").write_text(json.dumps({"plot": plot, "genres": ["Drama"]}))


def test_mmimdb_takes_the_longest_plot_paragraph_and_warns_about_shared_films(tmp_path):
    plots = {"1": ["Short one.", "The longest paragraph of the three.", "Middle length one."], "2": ["Only."]}
    _films(tmp_path, {"train": ["1", "2"], "dev": ["2"], "test": []}, plots)
    with pytest.warns(UserWarning, match="1 film.*also in another split.*e.g. 2"):
        films = MMIMDb(tmp_path, "train", image_size=8)
    assert films[0]["b"] == "The longest paragraph of the three."  # as the release's scripts and MMBT take it
    with pytest.warns(UserWarning):
        joined = MMIMDb(tmp_path, "train", image_size=8, plot="join")
    assert joined[0]["b"] == " ".join(plots["1"])
    with pytest.raises(ValueError, match="plot must be one of"):
        MMIMDb(tmp_path, "train", plot="first")


def test_palette_and_one_bit_pictures_give_their_colours(tmp_path):
    for mode, value in (("P", 200), ("1", 255)):  # read as indices they were ~0 and 1
        path = tmp_path / f"{mode}.png"
        Image.new("RGB", (6, 4), (value,) * 3).convert(mode).save(path)
        expected = value
        rgb = read_rgb(path)
        assert rgb.shape == (4, 6, 3) and abs(float(rgb.mean()) - expected) <= 8, (mode, rgb.mean())


def _taskonomy(root, edge: np.ndarray) -> Taskonomy:
    for d in ("reshading", "edge_texture", "rgb"):
        (root / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(root / "reshading" / "point_0_view_0_domain_reshading.png")
    Image.fromarray(edge).save(root / "edge_texture" / "point_0_view_0_domain_edge_texture.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "rgb" / "point_0_view_0_domain_rgb.png")
    (root / "train.txt").write_text("point_0_view_0\n")
    return Taskonomy(root, "train", image_size=8)


def test_taskonomy_edges_must_be_16_bit(tmp_path):
    assert _taskonomy(tmp_path / "ok", np.full((8, 8), 5000, np.uint16))[0]["b"].mean() > 0.4
    with pytest.raises(DataError, match="edge_texture must be 16-bit"):
        _taskonomy(tmp_path / "bad", np.full((8, 8), 200, np.uint8))[0]


def _nyu_one(root) -> None:
    for d in ("rgb", "depth", "masks"):
        (root / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "rgb" / "0.png")
    Image.fromarray(np.full((8, 8), 2000, np.uint16)).save(root / "depth" / "0.png")
    Image.fromarray(np.ones((8, 8), np.uint8)).save(root / "masks" / "0.png")


def test_list_files_with_a_byte_order_mark_and_empty_splits(tmp_path):
    _nyu_one(tmp_path)
    (tmp_path / "train.txt").write_text("rgb/0.png masks/0.png depth/0.png\r\n", encoding="utf-8-sig")
    assert len(NYUDv2(tmp_path, "train", image_size=8)) == 1  # Windows Notepad's BOM and line ends
    (tmp_path / "val.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"no samples in .*val\.txt"):
        NYUDv2(tmp_path, "val", image_size=8)
    (tmp_path / "reshading").mkdir()
    with pytest.raises(DataError, match="no samples in"):
        Taskonomy(tmp_path, "all", image_size=8)


def test_taskonomy_segment_semantic_files_by_the_release_name(tmp_path):
    for d in ("reshading", "edge_texture", "segment_semantic"):
        (tmp_path / d).mkdir()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "reshading" / "point_0_view_0_domain_reshading.png")
    Image.fromarray(np.full((8, 8), 5000, np.uint16)).save(
        tmp_path / "edge_texture" / "point_0_view_0_domain_edge_texture.png")
    labels = np.ones((8, 8), np.uint8)
    Image.fromarray(labels).save(tmp_path / "segment_semantic" / "point_0_view_0_domain_segmentsemantic.png")
    (tmp_path / "train.txt").write_text("point_0_view_0\n")
    data = Taskonomy(tmp_path, "train", image_size=8, target="segment_semantic", class_names=["a", "b"])
    assert data.path(0, "segment_semantic").name == "point_0_view_0_domain_segmentsemantic.png"
    assert (data[0]["target"] == 1).all()


def test_a_portrait_poster_is_resized_by_its_short_side_and_centre_cropped(tmp_path):
    # found unguarded by a second mutation audit: height and width swapped in the resize went unseen
    rows = np.repeat(np.linspace(0, 255, 24).astype(np.uint8)[:, None], 16, axis=1)  # 24 high, 16 wide
    _films(tmp_path, {"train": ["1"], "dev": [], "test": []}, {"1": ["A plot."]},
           poster=np.stack([rows, rows[::-1], np.full_like(rows, 90)], axis=2))
    film = MMIMDb(tmp_path, "train", image_size=8)[0]
    read = rgb_to_unit(np.asarray(Image.open(tmp_path / "dataset" / "1.jpeg").convert("RGB")))
    torch.testing.assert_close(film["a"], PairedTransform.image(read, PairedTransform(8, train=False).params(24, 16)))
