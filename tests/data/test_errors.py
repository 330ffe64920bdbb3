"""Bad data gets a clear error naming the file: missing, unreadable, mismatched sizes, bad labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mango.data import DataError, DataFileNotFoundError, MMIMDb, NYUDv2, SUNRGBD, Taskonomy


def _nyu(root, n=2, size=(12, 16), label_max=39, names=None, depth_column=True):
    rng = np.random.default_rng(0)
    for d in ("rgb", "depth", "masks"):
        (root / d).mkdir(parents=True, exist_ok=True)
    lines = []
    for name in names or [f"{i:06d}.png" for i in range(n)]:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "rgb" / name)
        Image.fromarray(rng.integers(400, 9000, size).astype(np.uint16)).save(root / "depth" / name)
        Image.fromarray(rng.integers(0, label_max + 1, size).astype(np.uint8)).save(root / "masks" / name)
        lines.append(f"rgb/{name}\tmasks/{name}" + (f"\tdepth/{name}" if depth_column else "") + "\n")
    (root / "train.txt").write_text("".join(lines))
    return root


def test_good_tree_loads(tmp_path):
    ds = NYUDv2(_nyu(tmp_path), "train", image_size=8)
    ds.verify()
    assert ds[1]["target"].shape == (8, 8)


def test_missing_file_named(tmp_path):
    root = _nyu(tmp_path)
    (root / "depth" / "000001.png").unlink()
    with pytest.raises(DataFileNotFoundError, match=r"depth/000001\.png"):
        NYUDv2(root, "train", image_size=8)
    with pytest.raises(DataFileNotFoundError, match=r"test\.txt.*train\.txt"):
        NYUDv2(root, "test", image_size=8)  # the message lists the list files that are there


def test_unreadable_image_named(tmp_path):
    root = _nyu(tmp_path)
    (root / "rgb" / "000001.png").write_bytes(b"this is not a png")
    ds = NYUDv2(root, "train", image_size=8)
    ds[0]
    with pytest.raises(DataError, match=r"unreadable image file: .*rgb/000001\.png"):
        ds[1]
    with pytest.raises(DataError, match=r"rgb/000001\.png"):
        ds.verify()


def test_mismatched_sizes_named(tmp_path):
    root = _nyu(tmp_path)
    Image.fromarray(np.zeros((10, 16), np.uint16)).save(root / "depth" / "000000.png")
    with pytest.raises(DataError, match=r"differ in size: .*depth/000000\.png is 16x10"):
        NYUDv2(root, "train", image_size=8)[0]


def test_label_out_of_range_named(tmp_path):
    root = _nyu(tmp_path)
    bad = np.zeros((12, 16), np.uint8)
    bad[3, 4] = 40
    Image.fromarray(bad).save(root / "masks" / "000001.png")
    ds = NYUDv2(root, "train", image_size=8)
    with pytest.raises(DataError, match=r"label out of range in .*masks/000001\.png: values \[40\]"):
        ds[1]
    # 255 is the ignore label, not an error
    bad[3, 4] = 255
    Image.fromarray(bad).save(root / "masks" / "000001.png")
    assert (ds[1]["target"] <= 255).all()


def test_sunrgbd_label_out_of_range(tmp_path):
    for d in ("RGB", "Depth", "labels"):
        (tmp_path / d).mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "RGB" / "a.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "Depth" / "a.png")
    Image.fromarray(np.full((8, 8), 38, np.uint8)).save(tmp_path / "labels" / "a.png")
    (tmp_path / "train.txt").write_text("RGB/a.jpg\n")
    with pytest.raises(DataError, match=r"labels/a\.png: values \[38\]"):
        SUNRGBD(tmp_path, "train", image_size=8)[0]


def test_taskonomy_errors(tmp_path):
    for dom in ("reshading", "edge_texture", "rgb"):
        (tmp_path / dom).mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "reshading" / "point_0_view_0_domain_reshading.png")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "edge_texture" / "point_0_view_0_domain_edge_texture.png")
    (tmp_path / "train.txt").write_text("point_0_view_0\n")
    with pytest.raises(DataFileNotFoundError, match=r"rgb/point_0_view_0_domain_rgb\.png"):
        Taskonomy(tmp_path, "train", image_size=8)
    Image.fromarray(np.zeros((8, 9, 3), np.uint8)).save(tmp_path / "rgb" / "point_0_view_0_domain_rgb.png")
    with pytest.raises(DataError, match=r"differ in size: .*point_0_view_0_domain_rgb\.png is 9x8"):
        Taskonomy(tmp_path, "train", image_size=8)[0]


def test_mmimdb_errors(tmp_path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "split.json").write_text(json.dumps({"train": ["1", "2"], "dev": [], "test": []}))
    for i in ("1", "2"):
        Image.fromarray(np.zeros((12, 8, 3), np.uint8)).save(tmp_path / "dataset" / f"{i}.jpeg")
    (tmp_path / "dataset" / "1.json").write_text(json.dumps({"plot": ["p"], "genres": ["Drama"]}))
    with pytest.raises(DataFileNotFoundError, match=r"dataset/2\.json"):
        MMIMDb(tmp_path, "train", image_size=8)
    (tmp_path / "dataset" / "2.json").write_text("{not json")
    with pytest.raises(DataError, match=r"unreadable json file: .*dataset/2\.json"):
        MMIMDb(tmp_path, "train", image_size=8)
    (tmp_path / "dataset" / "2.json").write_text(json.dumps({"plot": ["q"], "genres": ["Comedy", "Talk-Show"]}))
    ds = MMIMDb(tmp_path, "train", image_size=8)
    assert ds[1]["target"].sum() == 1  # Talk-Show is not one of the 23
    (tmp_path / "dataset" / "1.jpeg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError, match=r"dataset/1\.jpeg"):
        ds[0]
    with pytest.raises(DataError, match=r"split 'validation2' not in .*split\.json"):
        MMIMDb(tmp_path, "validation2")
    (tmp_path / "split.json").write_text(json.dumps({"train": ["1", "2"], "dev": [], "test": [297884]}))
    with pytest.raises(DataError, match=r"ids as numbers \(e\.g\. 297884\).*leading zeros"):
        MMIMDb(tmp_path, "train", image_size=8)  # any split's numbers: "data" genres read them all

# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_a_two_column_list_takes_depth_from_the_rgb_folder_only(tmp_path):
    _nyu(tmp_path, names=["rgb_0001.png"], depth_column=False)  # "rgb" in the file name stays
    ds = NYUDv2(tmp_path, "train", image_size=8)
    assert ds.samples[0][2] == tmp_path / "depth" / "rgb_0001.png"
    ds.verify()
