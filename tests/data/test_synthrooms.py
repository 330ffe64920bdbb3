"""SynthRooms: determinism, known answers (decals, camouflage), geometric consistency, and the
round trip through the written layouts and the real loaders."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mango.data import (
    SYNTHROOMS_CAMOUFLAGED_CLASS,
    SYNTHROOMS_CLASSES,
    SYNTHROOMS_DECAL_CLASSES,
    NYUDv2,
    Taskonomy,
    render,
    render_scene,
    sample_scene,
    scene_to_sample,
)
from mango.data.synthrooms import _camera, encode_scene, main, save_grid, scene_seed, write_dataset

DOMAINS = ("rgb", "depth_zbuffer", "normal", "reshading", "edge_texture", "labels")


def test_render_keys_shapes_ranges():
    out = render_scene(3, 48)
    assert out["rgb"].shape == (48, 48, 3) and out["rgb"].dtype == np.float32
    assert 0 <= out["rgb"].min() and out["rgb"].max() <= 1
    assert out["depth_zbuffer"].shape == (48, 48) and out["depth_zbuffer"].min() > 0.05
    assert out["depth_zbuffer"].max() < 20
    np.testing.assert_allclose(np.linalg.norm(out["normal"], axis=-1), 1, atol=1e-4)
    for k in ("reshading", "edge_texture"):
        assert out[k].shape == (48, 48) and 0 <= out[k].min() and out[k].max() <= 1
    assert out["labels"].dtype == np.uint8 and out["labels"].max() < len(SYNTHROOMS_CLASSES)
    assert out["meta"]["classes"] == list(SYNTHROOMS_CLASSES)
    json.dumps(out["meta"])  # JSON-able


def test_deterministic_from_seed():
    a, b, c = render_scene(11, 40), render_scene(11, 40), render_scene(12, 40)
    for k in DOMAINS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["rgb"], c["rgb"])
    assert sample_scene(5) == sample_scene(5)
    assert scene_seed(0, 1) == scene_seed(0, 1) != scene_seed(1, 0)


def test_at_least_ten_classes_and_special_objects_appear():
    assert len(SYNTHROOMS_CLASSES) >= 10
    seen = set()
    camo_scenes = decal_scenes = 0
    for s in range(12):
        lab = render_scene(s, 48)["labels"]
        seen |= set(np.unique(lab).tolist())
        camo_scenes += (lab == SYNTHROOMS_CAMOUFLAGED_CLASS).any()
        decal_scenes += np.isin(lab, SYNTHROOMS_DECAL_CLASSES).any()
    assert len(seen) >= 10
    assert camo_scenes >= 10 and decal_scenes >= 10  # nearly every scene shows both kinds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camouflage_only_geometry_reveals(seed):
    """rgb and edge_texture are exactly the render without the camouflaged objects; depth differs
    exactly where the labels say camouflaged."""
    with_c, without = render_scene(seed, 64), render_scene(seed, 64, drop_camouflaged=True)
    camo = with_c["labels"] == SYNTHROOMS_CAMOUFLAGED_CLASS
    assert camo.sum() > 0
    np.testing.assert_array_equal(with_c["rgb"], without["rgb"])
    np.testing.assert_array_equal(with_c["edge_texture"], without["edge_texture"])
    depth_diff = np.abs(with_c["depth_zbuffer"] - without["depth_zbuffer"]) > 1e-4
    np.testing.assert_array_equal(depth_diff, camo)
    assert (with_c["depth_zbuffer"][camo] < without["depth_zbuffer"][camo]).all()
    assert (np.abs(with_c["normal"] - without["normal"]).max(-1) > 1e-3)[camo].mean() > 0.5


@pytest.mark.parametrize("seed", [0, 4])
def test_decals_only_colour_reveals(seed):
    """Removing the decals leaves depth, normal and reshading unchanged and changes rgb on them."""
    scene = sample_scene(seed)
    plain = copy.deepcopy(scene)
    plain["decals"] = []
    a, b = render(scene, 64), render(plain, 64)
    decal = np.isin(a["labels"], SYNTHROOMS_DECAL_CLASSES)
    assert decal.sum() > 20
    for k in ("depth_zbuffer", "normal", "reshading"):
        np.testing.assert_array_equal(a[k], b[k])
    changed = np.abs(a["rgb"] - b["rgb"]).max(-1) > 1e-6
    # outside the decals rgb is unchanged (but for camouflaged pixels, which show what is behind)
    assert not changed[~decal & (a["labels"] != SYNTHROOMS_CAMOUFLAGED_CLASS)].any()
    assert changed[decal].mean() > 0.5


def test_depth_normals_labels_agree_with_geometry():
    """Back-projecting depth puts floor pixels on y=0 and ceiling pixels on y=H; their normals
    are the world up / down vectors in the camera frame; rgb is not flat where labels change."""
    scene = sample_scene(2)
    out = render(scene, 64)
    o, d, f, r, u = _camera(scene, 64)
    z = out["depth_zbuffer"].reshape(-1)
    pts = o + (z / (d @ f))[:, None] * d
    lab = out["labels"].reshape(-1)
    nrm = out["normal"].reshape(-1, 3)
    up_cam = np.array([r[1], u[1], -f[1]])
    W, H, D = scene["room"]
    for cls, y, n in ((1, 0.0, up_cam), (2, H, -up_cam)):
        m = lab == SYNTHROOMS_CLASSES.index(["floor", "ceiling"][cls - 1])
        if m.any():
            np.testing.assert_allclose(pts[m, 1], y, atol=2e-3)
            np.testing.assert_allclose(nrm[m], np.broadcast_to(n, nrm[m].shape), atol=1e-4)
    assert (pts[:, 0] > -1e-3).all() and (pts[:, 0] < W + 1e-3).all() and (pts[:, 2] < D + 1e-3).all()
    # every visible normal faces the viewing ray
    d_cam = np.stack([d @ r, d @ u, -(d @ f)], 1)
    assert ((nrm * d_cam).sum(1) < 1e-4).all()


def test_written_layouts_round_trip_through_loaders(synthrooms_tiny):
    out_dir, meta = synthrooms_tiny
    TINY_SEED, TINY_SIZE = meta["seed"], meta["size"]
    assert meta["n"] == 6 and TINY_SIZE == 64 and meta["splits"] == {"train": 4, "test": 2}
    m = json.loads((out_dir / "meta.json").read_text())
    assert m["classes"] == list(SYNTHROOMS_CLASSES) and m["seed"] == TINY_SEED and m["size"] == TINY_SIZE
    assert "generator_version" in m
    nyu = NYUDv2(out_dir / "nyudv2", "train", image_size=TINY_SIZE)
    nyu_test = NYUDv2(out_dir / "nyudv2", "test", image_size=TINY_SIZE)
    assert (len(nyu), len(nyu_test)) == (4, 2)
    assert nyu.class_names == SYNTHROOMS_CLASSES and nyu.num_classes == len(SYNTHROOMS_CLASSES)
    tk = Taskonomy(out_dir / "taskonomy", "test", image_size=TINY_SIZE, inputs=("depth_zbuffer", "normal"),
                   target="rgb")
    tk2 = Taskonomy(out_dir / "taskonomy", "test", image_size=TINY_SIZE, inputs=("reshading", "edge_texture"),
                    target="segment_semantic")
    for i in range(2):
        idx = 4 + i
        ref = render_scene(scene_seed(TINY_SEED, idx), TINY_SIZE)
        x = nyu_test[i]
        assert x["id"] == f"{idx:06d}"
        np.testing.assert_allclose(x["a"].permute(1, 2, 0).numpy(), ref["rgb"], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(x["b"][0].numpy(), np.clip(ref["depth_zbuffer"] / 10, 0, 1), atol=0.5e-4 + 1e-6)
        np.testing.assert_array_equal(x["target"].numpy(), ref["labels"])
        y = tk[i]
        assert y["id"] == f"point_{idx}_view_0"
        expect_depth = np.log1p(ref["depth_zbuffer"] * 512) / 11.1
        tol = 0.5 / (0.5 + ref["depth_zbuffer"].min() * 512) / 11.1 + 1e-6  # rounding to 1/512 m, after log
        np.testing.assert_allclose(y["a"][0].numpy(), expect_depth, atol=tol)
        np.testing.assert_allclose(y["b"].permute(1, 2, 0).numpy(), np.clip(127 + 128 * ref["normal"], 0, 255) / 255,
                                   atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(y["target"].permute(1, 2, 0).numpy(), ref["rgb"], atol=0.5 / 255 + 1e-6)
        z = tk2[i]
        np.testing.assert_allclose(z["a"][0].numpy(), ref["reshading"], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(z["b"][0].numpy(), ref["edge_texture"], atol=0.5 / 11355 + 1e-6)
        np.testing.assert_array_equal(z["target"].numpy(), ref["labels"])
        # the in-memory path gives exactly what the loaders give
        s = scene_to_sample(ref, "depth_zbuffer", "normal", "rgb")
        for k in ("a", "b", "target"):
            torch.testing.assert_close(s[k], y[k])


def test_taskonomy_training_batches_and_flip(synthrooms_tiny):
    out_dir, _ = synthrooms_tiny
    tk = Taskonomy(out_dir / "taskonomy", "train", image_size=48, train=True, inputs=("normal", "reshading"))
    torch.manual_seed(0)
    batch = next(iter(DataLoader(tk, batch_size=4)))
    assert batch["a"].shape == (4, 3, 48, 48) and batch["b"].shape == (4, 1, 48, 48)
    assert batch["target"].shape == (4, 3, 48, 48) and len(batch["id"]) == 4
    # a left-right flip mirrors the image and the normals' x channel (stored 127 + 128 x -> 254 - v)
    from mango.data.transforms import CropParams, PairedTransform, decode_domain, flip_normal_x
    from mango.data.errors import read_image

    raw = read_image(tk.path(0, "normal"))
    x = decode_domain("normal", raw)
    p = CropParams((64, 64), 0, 0, 64, True)
    flipped = flip_normal_x(PairedTransform.image(x, p))
    np.testing.assert_allclose(flipped[0].numpy(), (254 - raw[:, ::-1, 0]) / 255, atol=1e-6)


def test_grid_and_cli(tmp_path, capsys):
    grid = save_grid(tmp_path / "grid.png", seeds=(0, 1), size=32)
    from PIL import Image

    w, h = Image.open(grid).size
    assert w == 7 * 32 and h == 2 * 32 + 14
    assert main(["--out", str(tmp_path / "ds"), "--n", "3", "--size", "32", "--workers", "1"]) == 0
    assert "scenes/minute" in capsys.readouterr().out
    assert len(list((tmp_path / "ds" / "taskonomy" / "rgb").glob("*.png"))) == 3
    assert (tmp_path / "ds" / "nyudv2" / "train.txt").read_text().splitlines()[0] == \
        "rgb/000000.png\tmasks/000000.png\tdepth/000000.png"
    enc = encode_scene(render_scene(scene_seed(0, 0), 32))
    from mango.data.errors import read_image

    np.testing.assert_array_equal(read_image(tmp_path / "ds" / "taskonomy" / "depth_zbuffer" /
                                             "point_0_view_0_domain_depth_zbuffer.png"), enc["depth_zbuffer"])
    assert enc["depth_zbuffer"].dtype == np.uint16 and enc["edge_texture"].dtype == np.uint16


def _rounded(x):
    """A scene description with floats to 6 decimals, so a digest of it ignores last-ulp libm noise."""
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def test_default_scenes_are_the_ones_the_bundled_checkpoints_saw():
    """The reproduce commands regenerate SynthRooms: its default scenes must not drift."""
    import hashlib

    text = "".join(json.dumps(_rounded(sample_scene(s)), sort_keys=True) for s in range(4))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "cc41ea5116c3213e"


def _cabinets_and_tables(scene):
    keep = {SYNTHROOMS_CLASSES.index("cabinet"), SYNTHROOMS_CLASSES.index("table")}
    return [o for o in scene["objects"] if o["class"] in keep and o["type"] == "box"]


def test_fitted_rooms_add_wall_cabinets_and_desk_pedestals_and_change_nothing_else():
    cabinet, table = SYNTHROOMS_CLASSES.index("cabinet"), SYNTHROOMS_CLASSES.index("table")
    wall_cabinets = pedestals = 0
    for s in range(30):
        plain, fitted = sample_scene(s), sample_scene(s, fitted=True)
        assert sample_scene(s, fitted=False) == plain
        others = lambda sc: [o for o in sc["objects"] if o not in _cabinets_and_tables(sc)]
        assert others(fitted) == others(plain)  # same room, camera, lights, decals, every other object
        assert {k: v for k, v in fitted.items() if k != "objects"} == {k: v for k, v in plain.items() if k != "objects"}
        W, H, D = plain["room"]
        hanging = [o for o in fitted["objects"] if o["class"] == cabinet and o["params"][1] > 0]
        for o in hanging:  # against a wall, above a counter of the same width and material
            x0, y0, z0, x1, y1, z1 = o["params"]
            assert 1.4 <= y0 < y1 <= H - 0.05 + 1e-9
            assert min(x0, z0, W - x1, D - z1) < 0.02
            below = [c for c in fitted["objects"] if c["class"] == cabinet and c["params"][1] == 0
                     and c["material"] == o["material"]]
            assert any(0.85 <= c["params"][4] <= 0.95 and c["params"][0] <= x0 and x1 <= c["params"][3]
                       and c["params"][2] <= z0 and z1 <= c["params"][5] for c in below)
        wall_cabinets += len(hanging)
        tops = [o["params"] for o in plain["objects"] if o["class"] == table and o["params"][1] > 0.5]
        extra = [o["params"] for o in fitted["objects"] if o["class"] == table and o not in plain["objects"]]
        for p in extra:  # from the floor to the underside of the top, inside the top's footprint
            top = tops[0]
            assert p[1] == 0 and p[4] == pytest.approx(top[1])
            assert top[0] <= p[0] < p[3] <= top[3] and top[2] <= p[2] < p[5] <= top[5]
        pedestals += len(extra)
    assert wall_cabinets >= 10 and pedestals >= 5


def test_desks_only_rooms_are_the_fitted_rooms_without_the_counters():
    for s in range(30):
        plain, desks, fitted = sample_scene(s), sample_scene(s, fitted="desks"), sample_scene(s, fitted="all")
        assert sample_scene(s, fitted=True) == fitted
        assert {k: v for k, v in desks.items() if k != "objects"} == {k: v for k, v in plain.items() if k != "objects"}
        added = [o for o in desks["objects"] if o not in plain["objects"]]
        assert [o for o in desks["objects"] if o in plain["objects"]] == plain["objects"]  # no cabinet moved or cut
        assert added == [o for o in fitted["objects"] if o not in plain["objects"]
                         and o["class"] == SYNTHROOMS_CLASSES.index("table")]  # the same desks as "all"
    with pytest.raises(ValueError, match="fitted must be"):
        sample_scene(0, fitted="kitchens")


def test_fitted_cli_records_the_option(tmp_path):
    assert main(["--out", str(tmp_path / "fit"), "--n", "2", "--size", "32", "--workers", "1", "--fitted"]) == 0
    assert json.loads((tmp_path / "fit" / "nyudv2" / "meta.json").read_text())["fitted"] is True
    assert main(["--out", str(tmp_path / "plain"), "--n", "2", "--size", "32", "--workers", "1"]) == 0
    assert "fitted" not in json.loads((tmp_path / "plain" / "meta.json").read_text())
    assert main(["--out", str(tmp_path / "desks"), "--n", "2", "--size", "32", "--workers", "1", "--fitted", "desks"]) == 0
    assert json.loads((tmp_path / "desks" / "meta.json").read_text())["fitted"] == "desks"

# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_scene_to_sample_nyudv2_depth_is_metres_over_depth_max():
    out = render_scene(3, 16)
    item = scene_to_sample(out, "rgb", "depth_zbuffer", "labels", layout="nyudv2", depth_max=10.0)
    expect = torch.from_numpy(np.clip(out["depth_zbuffer"] / 10.0, 0, 1).astype(np.float32))
    torch.testing.assert_close(item["b"][0], expect, atol=1e-4, rtol=0)


def test_synthrooms_test_split_is_the_rounded_fraction(tmp_path):
    meta = write_dataset(tmp_path, 4, 8, seed=0, test_fraction=0.4, workers=1, progress=False)  # 1.6 scenes -> 2
    assert meta["splits"] == {"train": 2, "test": 2}
    assert (tmp_path / "taskonomy" / "test.txt").read_text().split() == ["point_2_view_0", "point_3_view_0"]


def test_only_test_writes_the_full_data_set_s_test_scenes_and_no_train_list(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    write_dataset(full, 5, 16, seed=2, test_fraction=0.4, workers=1, progress=False)
    meta = write_dataset(part, 5, 16, seed=2, test_fraction=0.4, workers=1, progress=False, only_test=True)
    assert meta["scenes"] == 2 and meta["written"] == ["test"] and meta["splits"] == {"train": 3, "test": 2}
    scene = lambda f: int(f.stem.split("_")[1]) if f.stem.startswith("point_") else int(f.stem)  # Taskonomy / NYUDv2 name
    written = sorted(str(f.relative_to(part)) for f in part.rglob("*.png"))
    assert written == sorted(str(f.relative_to(full)) for f in full.rglob("*.png") if scene(f) >= 3)
    for name in written:
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    for layout in ("taskonomy", "nyudv2"):
        assert (part / layout / "test.txt").read_text() == (full / layout / "test.txt").read_text()
        assert not (part / layout / "train.txt").exists()  # training on it stops at once, naming the missing list


def test_only_test_from_the_command_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--n", "5", "--size", "8", "--test-fraction", "0.4", "--workers", "1",
                 "--only-test"]) == 0
    assert "wrote the 2 test scenes (of 5) of 8x8" in capsys.readouterr().out
    assert (tmp_path / "nyudv2" / "test.txt").read_text().split() == [
        "rgb/000003.png", "masks/000003.png", "depth/000003.png", "rgb/000004.png", "masks/000004.png", "depth/000004.png"]
    assert not (tmp_path / "nyudv2" / "train.txt").exists()
