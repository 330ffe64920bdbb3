"""Real-data loaders: NYUDv2 samples and MM-IMDb-style films from ../shared/data, SUN RGB-D and
Taskonomy on tiny fake trees, the shared transforms, and collation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mango.data import (
    MMIMDB_GENRES,
    NYUDV2_CLASSES,
    SUNRGBD_CLASSES,
    TASKONOMY_DOMAINS,
    DataError,
    MMIMDb,
    NYUDv2,
    PairedTransform,
    SUNRGBD,
    Taskonomy,
    fill_depth_holes,
)
from mango.data.transforms import CropParams


def test_constants():
    assert len(NYUDV2_CLASSES) == 40 and NYUDV2_CLASSES[0] == "wall" and NYUDV2_CLASSES[-1] == "otherprop"
    assert len(SUNRGBD_CLASSES) == 37 and SUNRGBD_CLASSES[-1] == "bag"
    assert len(MMIMDB_GENRES) == 23 and MMIMDB_GENRES[:3] == ("Drama", "Comedy", "Romance")
    assert len(set(MMIMDB_GENRES)) == 23
    assert {"rgb", "depth_zbuffer", "normal", "reshading", "edge_texture"} <= set(TASKONOMY_DOMAINS)


# ----------------------------------------------------------------------------- NYUDv2 (real)


def test_nyudv2_real_samples(nyudv2_root):
    ds = NYUDv2(nyudv2_root, "val", image_size=96)
    assert len(ds) == 3 and ds.num_classes == 40 and ds.class_names == NYUDV2_CLASSES
    for i in range(3):
        x = ds[i]
        assert set(x) == {"a", "b", "target", "id"}
        assert x["a"].shape == (3, 96, 96) and x["a"].dtype == torch.float32
        assert x["b"].shape == (1, 96, 96) and x["b"].dtype == torch.float32
        assert x["target"].shape == (96, 96) and x["target"].dtype == torch.int64
        assert 0 <= x["a"].min() and x["a"].max() <= 1
        # hole-filled NYU depth: about 0.5..10 m -> (0, 1]
        assert 0.04 < x["b"].min() and x["b"].max() <= 1
        labels = set(torch.unique(x["target"]).tolist())
        assert labels <= set(range(40)) | {255} and len(labels - {255}) >= 3
    assert [ds[i]["id"] for i in range(3)] == ["000001", "000002", "000009"]


def test_nyudv2_raw_values_and_depth_scale(nyudv2_root):
    ds = NYUDv2(nyudv2_root, "val", image_size=480)  # 640x480 -> centre 480x480, no resampling
    sid, rgb, depth, labels = ds.load_raw(0)
    x = ds[0]
    np.testing.assert_allclose(x["b"][0].numpy(), np.clip(depth[:, 80:560] / 1000 / 10, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(x["target"].numpy(), labels[:, 80:560])
    ds5 = NYUDv2(nyudv2_root, "val", image_size=480, depth_max=5.0, depth_scale=2e-3)
    np.testing.assert_allclose(ds5[0]["b"][0].numpy(), np.clip(depth[:, 80:560] * 2e-3 / 5, 0, 1), atol=1e-6)


def test_nyudv2_train_augmentation_and_collate(nyudv2_root):
    ds = NYUDv2(nyudv2_root, "val", image_size=64, train=True)
    torch.manual_seed(0)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["a"].shape == (3, 3, 64, 64) and batch["b"].shape == (3, 1, 64, 64)
    assert batch["target"].shape == (3, 64, 64) and batch["id"] == ["000001", "000002", "000009"]
    # crops differ between draws in train mode, never in eval mode
    draws = {tuple(ds[0]["a"][:, 0, :4].flatten().tolist()) for _ in range(6)}
    assert len(draws) > 1
    ev = NYUDv2(nyudv2_root, "val", image_size=64)
    assert torch.equal(ev[0]["a"], ev[0]["a"])


# ----------------------------------------------------------------------------- MM-IMDb (real)


def test_mmimdb_splits_and_targets(movies_root):
    sizes = {s: len(MMIMDb(movies_root, s, image_size=32)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 856, "dev": 122, "test": 245}
    assert len(MMIMDb(movies_root, "val", image_size=32)) == 122
    ds = MMIMDb(movies_root, "test", image_size=64)
    assert ds.class_names == MMIMDB_GENRES and ds.num_classes == 23
    for i in range(0, 245, 25):
        x = ds[i]
        meta = json.loads((movies_root / "dataset" / f"{x['id']}.json").read_text())
        expect = torch.zeros(23)
        for g in meta["genres"]:
            if g in MMIMDB_GENRES:
                expect[MMIMDB_GENRES.index(g)] = 1
        assert torch.equal(x["target"], expect) and x["target"].dtype == torch.float32
        assert x["b"] == " ".join(meta["plot"])
        assert x["a"].shape == (3, 64, 64) and 0 <= x["a"].min() and x["a"].max() <= 1
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(batch["b"], list) and len(batch["b"]) == 4 and batch["target"].shape == (4, 23)


def test_mmimdb_genres_from_data(movies_root):
    ds = MMIMDb(movies_root, "dev", image_size=32, genres="data")
    assert set(ds.class_names) == set(MMIMDB_GENRES) and ds.class_names[0] == "Drama"
    custom = MMIMDb(movies_root, "dev", image_size=32, genres=["Drama", "Comedy"])
    assert custom.num_classes == 2 and custom[0]["target"].shape == (2,)


# ----------------------------------------------------------------------------- SUN RGB-D (fake tree)


def _write_sun(root, n=3, size=(24, 32), label_dir="labels", depth_dtype=np.uint16):
    rng = np.random.default_rng(0)
    for d in ("RGB", "Depth", label_dir):
        (root / d).mkdir(parents=True, exist_ok=True)
    names = [f"{i:05d}" for i in range(1, n + 1)]
    raw_labels = {}
    for name in names:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "RGB" / f"{name}.jpg")
        depth = rng.integers(500, 9000, size).astype(depth_dtype) if depth_dtype == np.uint16 else \
            rng.integers(0, 256, size).astype(np.uint8)
        Image.fromarray(depth).save(root / "Depth" / f"{name}.png")
        lab = rng.integers(0, 38, size).astype(np.uint8)
        raw_labels[name] = lab
        Image.fromarray(lab).save(root / label_dir / f"{name}.png")
    (root / "train.txt").write_text("".join(f"RGB/{n}.jpg\n" for n in names[:2]))
    (root / "test.txt").write_text(f"RGB/{names[2]}.jpg\n")
    return raw_labels


def test_sunrgbd_fake_tree(tmp_path):
    raw = _write_sun(tmp_path)
    ds = SUNRGBD(tmp_path, "train", image_size=24)
    assert len(ds) == 2 and ds.num_classes == 37 and ds.class_names == SUNRGBD_CLASSES
    x = ds[0]
    assert x["id"] == "00001" and x["a"].shape == (3, 24, 24) and x["b"].shape == (1, 24, 24)
    lab = raw["00001"][:, 4:28].astype(np.int64)
    expect = np.where(lab == 0, 255, lab - 1)
    np.testing.assert_array_equal(x["target"].numpy(), expect)
    assert x["target"].max() <= 255 and set(np.unique(x["target"])) <= set(range(37)) | {255}
    assert len(SUNRGBD(tmp_path, "test", image_size=16)) == 1


def test_sunrgbd_label_dir_and_8bit_depth(tmp_path):
    _write_sun(tmp_path, label_dir="Label", depth_dtype=np.uint8)
    ds = SUNRGBD(tmp_path, "train", image_size=24)
    depth8 = np.asarray(Image.open(tmp_path / "Depth" / "00001.png"))
    assert (depth8 == 0).any()  # random bytes: some zeros, read as holes and filled
    np.testing.assert_allclose(ds[0]["b"][0].numpy(), fill_depth_holes(depth8)[0][:, 4:28] / 255, atol=1e-6)


def test_depth_holes_take_the_nearest_measured_depth():
    depth = np.array([[1000, 1000, 0, 3000, 3000],
                      [1000, 0, 0, 0, 3000],
                      [1000, 1000, 0, 3000, 3000]], dtype=np.uint16)
    filled, count = fill_depth_holes(depth)
    assert count == 5 and filled.dtype == np.uint16 and (filled > 0).all()
    assert filled[1, 1] == 1000 and filled[1, 3] == 3000  # each hole from its nearest side
    assert filled[0, 2] in (1000, 3000) and depth[1, 1] == 0  # a tie takes either; the input is not changed
    complete = np.full((4, 4), 2000, np.uint16)
    out, n = fill_depth_holes(complete)
    assert n == 0 and out is complete
    empty = np.zeros((4, 4), np.uint16)  # nothing to fill from: left as it is (the app warns about it)
    out, n = fill_depth_holes(empty)
    assert n == 0 and (out == 0).all()


def test_loaders_fill_stored_depth_holes(tmp_path):
    _write_sun(tmp_path, size=(24, 24))
    path = tmp_path / "Depth" / "00001.png"
    depth = np.asarray(Image.open(path)).copy()
    depth[5:9, 10:14] = 0  # a camera's hole
    Image.fromarray(depth).save(path)
    ds = SUNRGBD(tmp_path, "train", image_size=24)
    _, _, stored, _ = ds.load_raw(0)
    assert (stored > 0).all()
    np.testing.assert_array_equal(stored, fill_depth_holes(depth)[0])
    assert float(ds[0]["b"].min()) > 0


# ----------------------------------------------------------------------------- Taskonomy (fake tree)


def _write_taskonomy(root, ids, size=16):
    rng = np.random.default_rng(1)
    arrays = {}
    for dom in ("rgb", "depth_zbuffer", "normal", "reshading", "edge_texture"):
        (root / dom).mkdir(parents=True, exist_ok=True)
        for sid in ids:
            if dom in ("rgb", "normal"):
                a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            elif dom == "reshading":
                a = rng.integers(0, 256, (size, size), dtype=np.uint8)
            elif dom == "depth_zbuffer":
                a = rng.integers(0, 65536, (size, size)).astype(np.uint16)
            else:
                a = rng.integers(0, 13000, (size, size)).astype(np.uint16)
            arrays[(sid, dom)] = a
            Image.fromarray(a).save(root / dom / f"{sid}_domain_{dom}.png")
    return arrays


def test_taskonomy_protocol_values_and_split_formats(tmp_path):
    ids = ["point_0_view_0", "point_0_view_1", "point_3_view_2"]
    arr = _write_taskonomy(tmp_path, ids)
    (tmp_path / "train.txt").write_text("point_0_view_0\npoint_3_view_2\n")
    (tmp_path / "val.txt").write_text("{domain}/point_0_view_1_domain_{domain}.png\n")
    ds = Taskonomy(tmp_path, "train", image_size=16, inputs=("depth_zbuffer", "edge_texture"), target="rgb")
    x = ds[1]
    assert x["id"] == "point_3_view_2"
    raw_depth = arr[(ids[2], "depth_zbuffer")].astype(np.float64)
    np.testing.assert_allclose(x["a"][0].numpy(), np.clip(np.log1p(raw_depth) / 11.1, 0, 1), atol=1e-6)
    np.testing.assert_allclose(x["b"][0].numpy(), np.clip(arr[(ids[2], "edge_texture")] / 11355, 0, 1), atol=1e-6)
    np.testing.assert_allclose(x["target"].numpy(), arr[(ids[2], "rgb")].transpose(2, 0, 1) / 255, atol=1e-6)
    v = Taskonomy(tmp_path, "val", image_size=8, inputs=("normal", "reshading"), target="rgb")
    assert len(v) == 1 and v[0]["id"] == "point_0_view_1"
    assert v[0]["a"].shape == (3, 8, 8) and v[0]["b"].shape == (1, 8, 8) and v.num_classes == 0
    everything = Taskonomy(tmp_path, "all", image_size=8)
    assert sorted(everything.samples[i][0] for i in range(len(everything))) == sorted(ids)
    with pytest.raises(ValueError, match="unknown Taskonomy domain"):
        Taskonomy(tmp_path, "train", inputs=("rgb", "colour"))


def test_paired_transform_geometry():
    t = PairedTransform(32, train=False)
    p = t.params(48, 64)
    assert p.resized == (32, 43) and (p.top, p.left) == (0, 5) and not p.flip
    img = torch.rand(3, 48, 64)
    mask = torch.randint(0, 5, (48, 64))
    assert PairedTransform.image(img, p).shape == (3, 32, 32)
    m = PairedTransform.mask(mask, p)
    assert m.shape == (32, 32) and set(m.unique().tolist()) <= set(range(5))
    same = t.params(32, 32)
    assert torch.equal(PairedTransform.image(img[:, :32, :32], same), img[:, :32, :32])
    tr = PairedTransform(32, train=True)
    assert tr.params(32, 32).resized == (36, 36)


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def test_a_label_mask_is_sampled_at_pixel_centres():
    # a 4 x 4 mask halved: each output pixel takes the label under its centre, as the image's bilinear
    # resize (align_corners=False) does, not the top-left label of its 2 x 2 block
    transform = PairedTransform(2, train=False)
    mask = torch.arange(16).reshape(4, 4)
    p = transform.params(4, 4)
    assert PairedTransform.mask(mask, p).tolist() == [[5, 7], [13, 15]]


def test_a_flipped_crop_flips_the_labels_with_the_image():
    labels = torch.randint(0, 5, (12, 16))
    image = torch.nn.functional.one_hot(labels, 5).permute(2, 0, 1).float()  # channel k is 1 where label k
    for flip in (False, True):
        p = CropParams((12, 16), 2, 3, 8, flip)
        assert torch.equal(PairedTransform.image(image, p).argmax(0), PairedTransform.mask(labels, p))
    p = CropParams((6, 8), 1, 0, 4, True)  # resized too: nearest labels against the same flip
    assert torch.equal(PairedTransform.mask(labels, p), PairedTransform.mask(labels, CropParams((6, 8), 1, 0, 4, False)).flip(-1))


def test_training_crops_flip_about_half_the_time_and_reach_every_offset():
    torch.manual_seed(0)
    transform = PairedTransform(32, train=True)  # resized to 36: crop offsets 0..4
    drawn = [transform.params(32, 32) for _ in range(200)]
    assert 60 < sum(p.flip for p in drawn) < 140
    assert {p.top for p in drawn} == {p.left for p in drawn} == set(range(5))
    assert not any(PairedTransform(32, train=True, hflip=False).params(32, 32).flip for _ in range(20))

# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def _taskonomy_seg(root, sid_path, label_value):
    """One sample at root/<domain>/<sid_path>_domain_<domain>.png (sid_path may hold a building folder)."""
    for dom, arr in (("reshading", np.full((8, 8), 100, np.uint8)), ("edge_texture", np.full((8, 8), 5000, np.uint16)),
                     ("segment_semantic", np.full((8, 8), label_value, np.uint8))):
        path = root / dom / f"{sid_path}_domain_{dom}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)


def test_taskonomy_segment_labels_out_of_range_are_refused(tmp_path):
    _taskonomy_seg(tmp_path, "point_0_view_0", 2)  # two classes: 0, 1 (255 = ignore)
    (tmp_path / "train.txt").write_text("point_0_view_0\n")
    data = Taskonomy(tmp_path, "train", image_size=8, target="segment_semantic", class_names=["a", "b"])
    with pytest.raises(DataError, match="label out of range"):
        data[0]


def test_taskonomy_template_ids_keep_their_building(tmp_path):
    _taskonomy_seg(tmp_path, "bldgA/point_0_view_0", 1)
    _taskonomy_seg(tmp_path, "bldgB/point_0_view_0", 0)
    (tmp_path / "train.txt").write_text(
        "{domain}/bldgA/point_0_view_0_domain_{domain}.png\n{domain}/bldgB/point_0_view_0_domain_{domain}.png\n")
    data = Taskonomy(tmp_path, "train", image_size=8, target="segment_semantic", class_names=["a", "b"])
    ids = [data[i]["id"] for i in range(len(data))]
    assert ids == ["bldgA/point_0_view_0", "bldgB/point_0_view_0"]
