"""SynthRooms: procedural indoor RGB-D scenes with every Taskonomy-style domain and known answers.

A scene is a box-shaped room (floor, four walls, ceiling) holding furniture built from boxes
(cabinets, tables, sofas), cylinders (stools, lamp poles), spheres (balls, lamp shades), flat decals
(pictures on the walls, rugs on the floor) and camouflaged objects. A vectorised numpy ray caster
renders it once into all domains: rgb (procedural textures, Lambert shading, one or two point
lights with hard shadows), depth_zbuffer, normal, reshading, edge_texture and semantic labels.

Two kinds of object make the modalities matter in known ways:
- decals (classes ``picture``, ``rug``) change only the colour: depth, normal and reshading are
  exactly those of the wall or floor under them;
- camouflaged objects (class ``camouflaged``) are absent from the colour image: rgb (and hence
  edge_texture, computed from rgb) is exactly the render of the scene without them, shadows
  included, so they show only in depth, normal and reshading.

Everything is deterministic from the seed; the size only changes the sampling of the same scene.

API: ``sample_scene(seed) -> dict`` (the scene description), ``render(scene, size)``,
``render_scene(seed, size) -> dict[str, np.ndarray]`` (keys rgb (H,W,3) float in [0,1],
depth_zbuffer (H,W) metres along the optical axis, depth_euclidean (H,W) metres along the ray,
normal (H,W,3) unit camera-frame normals (x right, y up, z towards the camera), reshading (H,W)
in [0,1], edge_texture (H,W) in [0,1], labels (H,W) uint8, meta (dict)), ``encode_scene(out)``
(the stored arrays), ``scene_to_sample(out, a, b, target)`` (a loader-style item without disk),
``write_dataset(out_dir, n, size, seed)`` and ``save_grid(path, seeds, size)``.

CLI: ``python -m mango.data.synthrooms --out DIR --n 5000 --size 128`` writes
``DIR/taskonomy/<domain>/point_{i}_view_0_domain_<domain>.png`` (Taskonomy storage: rgb uint8,
depth_zbuffer uint16 in 1/512 m, normal RGB 127-centred (127 + 128 n), reshading uint8 grey,
edge_texture uint16 (edge strength x 11355), segment_semantic uint8 labels) with
``train.txt``/``test.txt`` id lists, and ``DIR/nyudv2/{rgb,depth,masks}/NNNNNN.png`` (depth uint16
millimetres) with TokenFusion ``train.txt``/``test.txt`` lists; plus ``meta.json`` in DIR and in
each layout root. rgb and masks of the NYUDv2 copy are hard links to the Taskonomy files when the
file system allows. ``--only-test`` writes only the test split's scenes and lists.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .constants import SYNTHROOMS_CAMOUFLAGED_CLASS, SYNTHROOMS_CLASSES, SYNTHROOMS_DECAL_CLASSES

GENERATOR_VERSION = "1.0"
CLASS_INDEX = {name: k for k, name in enumerate(SYNTHROOMS_CLASSES)}
TASKONOMY_WRITE_DOMAINS = ("rgb", "depth_zbuffer", "normal", "reshading", "edge_texture", "segment_semantic")
EDGE_STORE_MAX = 11355  # edge_texture stored as round(edge * 11355): the peer protocol divides by 11355
_EPS = 1e-4
_BOX, _CYL, _SPH = 0, 1, 2
# room faces: 0 x=0 wall, 1 x=W wall, 2 floor (y=0), 3 ceiling (y=H), 4 z=0 wall, 5 z=D wall
_FACE_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)
_FACE_LABEL = np.array([0, 0, 1, 2, 0, 0], np.uint8)


# ----------------------------------------------------------------------------- scene sampling


def _hsv(h: float, s: float, v: float) -> list[float]:
    return [round(c, 4) for c in colorsys.hsv_to_rgb(h % 1.0, s, v)]


def _wood(rng) -> list[float]:
    return _hsv(rng.uniform(0.04, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.3, 0.75))


def _paint(rng, sat=(0.05, 0.3), val=(0.7, 0.92)) -> list[float]:
    return _hsv(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))


def _vivid(rng) -> list[float]:
    return _hsv(rng.uniform(0, 1), rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.95))


def _overlap(a, b, margin=0.05) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


FITTED_MODES = ("all", "desks")  # what ``fitted`` may name; True means "all"


def fitted_mode(fitted: bool | str | None) -> str | None:
    """``fitted`` as one of FITTED_MODES, or None for the default rooms."""
    if fitted is None or fitted is False or fitted == "":
        return None
    mode = "all" if fitted is True else fitted
    if mode not in FITTED_MODES:
        raise ValueError(f"fitted must be True, False or one of {FITTED_MODES}, got {fitted!r}")
    return mode


def sample_scene(seed: int, fitted: bool | str = False) -> dict[str, Any]:
    """The scene description of a seed: room, camera, lights, objects, decals (JSON-able).

    ``fitted`` (True or "all") furnishes the room as kitchens and offices are: some cabinets become
    counters with a wall cabinet above, and the table may get a drawer pedestal; "desks" adds only
    the pedestals. Its draws come from a second generator, so every other part of the scene is the
    one ``fitted=False`` gives, and a "desks" scene's desk is the "all" scene's."""
    mode = fitted_mode(fitted)
    rng = np.random.default_rng(int(seed))
    fit_rng = np.random.default_rng([int(seed), 7]) if mode else None
    W, D, H = rng.uniform(3.6, 6.0), rng.uniform(4.2, 7.0), rng.uniform(2.5, 3.0)
    cam = [rng.uniform(0.3, 0.7) * W, rng.uniform(1.2, 1.65), rng.uniform(0.25, 0.7)]
    yaw, pitch, fov = rng.uniform(-0.45, 0.45), rng.uniform(-0.36, -0.12), math.radians(rng.uniform(60, 72))
    scene: dict[str, Any] = {
        "seed": int(seed), "room": [W, H, D], "camera": {"pos": cam, "yaw": yaw, "pitch": pitch, "fov": fov},
        "objects": [], "decals": [],
        "noise": {"k": rng.normal(size=(8, 3)).tolist(), "phase": rng.uniform(0, 2 * np.pi, 8).tolist()},
    }
    # room materials
    wall_kind = rng.choice(["paint", "paint", "wallpaper"])
    wall = {"kind": wall_kind, "colors": [_paint(rng), _paint(rng)], "period": rng.uniform(0.15, 0.4)}
    accent = {"kind": "paint", "colors": [_paint(rng, (0.15, 0.45), (0.55, 0.85))]} if rng.random() < 0.35 else wall
    floor_kind = rng.choice(["planks", "planks", "tiles", "carpet"])
    if floor_kind == "planks":
        floor = {"kind": "planks", "colors": [_wood(rng)], "width": rng.uniform(0.12, 0.25),
                 "axis": int(rng.integers(0, 2)) * 2, "length": rng.uniform(0.9, 1.8)}
    elif floor_kind == "tiles":
        floor = {"kind": "tiles", "colors": [_paint(rng, (0, 0.25), (0.55, 0.9)), _paint(rng, (0, 0.3), (0.2, 0.5))],
                 "size": rng.uniform(0.3, 0.6)}
    else:
        floor = {"kind": "carpet", "colors": [_paint(rng, (0.1, 0.5), (0.3, 0.7))]}
    ceiling = {"kind": "paint", "colors": [_hsv(rng.uniform(0, 1), 0.03, rng.uniform(0.85, 0.95))]}
    scene["room_materials"] = [wall, wall, floor, ceiling, wall, accent]

    objects: list[dict] = scene["objects"]
    cx, cz = cam[0], cam[2]
    taken: list[tuple[float, float, float, float]] = [(cx - 0.6, cz - 0.6, cx + 0.6, cz + 0.6)]
    zmin = cz + 0.7

    def add(kind, cls, params, mat, camo=False):
        objects.append({"type": kind, "class": cls, "params": [float(v) for v in params], "material": mat,
                        "camouflaged": bool(camo)})

    def spot(w, d, where, tries=30):
        """A free footprint (x0, z0, x1, z1) of w (along the wall) by d; None if none found."""
        for _ in range(tries):
            if where == "far":
                x0 = rng.uniform(0.05, max(0.06, W - w - 0.05)); z1 = D - 0.01
                fp = (x0, z1 - d, x0 + w, z1)
            elif where == "left":
                z0 = rng.uniform(zmin, max(zmin + 0.01, D - w - 0.05)); fp = (0.01, z0, 0.01 + d, z0 + w)
            elif where == "right":
                z0 = rng.uniform(zmin, max(zmin + 0.01, D - w - 0.05)); fp = (W - 0.01 - d, z0, W - 0.01, z0 + w)
            else:
                x0 = rng.uniform(0.25, max(0.26, W - w - 0.25)); z0 = rng.uniform(zmin + 0.3, max(zmin + 0.31, D - d - 0.25))
                fp = (x0, z0, x0 + w, z0 + d)
            if fp[2] > W or fp[3] > D or fp[0] < 0 or fp[1] < zmin - 0.3:
                continue
            if not any(_overlap(fp, t) for t in taken):
                taken.append(fp)
                return fp
        return None

    def box(fp, y0, y1, cls, mat, camo=False):
        add("box", cls, [fp[0], y0, fp[1], fp[2], y1, fp[3]], mat, camo)

    # camouflaged objects first, so that they find room in view
    for _ in range(int(rng.integers(1, 3))):
        for _try in range(30):
            dist = rng.uniform(1.3, max(1.4, min(3.6, D - cz - 0.6)))
            bearing = yaw + rng.uniform(-0.55, 0.55) * fov / 2
            px, pz = cx + dist * math.sin(bearing), cz + dist * math.cos(bearing)
            shape = rng.choice(["box", "sphere", "cylinder"])
            if shape == "box":
                w, d, h = rng.uniform(0.35, 0.8), rng.uniform(0.35, 0.8), rng.uniform(0.3, 1.1)
            elif shape == "sphere":
                w = d = h = 2 * rng.uniform(0.2, 0.4)
            else:
                w = d = 2 * rng.uniform(0.15, 0.3); h = rng.uniform(0.4, 1.2)
            fp = (px - w / 2, pz - d / 2, px + w / 2, pz + d / 2)
            if fp[0] < 0.1 or fp[2] > W - 0.1 or fp[3] > D - 0.1 or any(_overlap(fp, t) for t in taken):
                continue
            taken.append(fp)
            mat = {"kind": "solid", "colors": [_vivid(rng)]}  # never shown in rgb
            cls = CLASS_INDEX["camouflaged"]
            if shape == "box":
                box(fp, 0.0, h, cls, mat, camo=True)
            elif shape == "sphere":
                add("sphere", cls, [px, h / 2, pz, h / 2], mat, camo=True)
            else:
                add("cylinder", cls, [px, pz, w / 2, 0.0, h], mat, camo=True)
            break

    # cabinets against walls
    for _ in range(int(rng.integers(1, 3))):
        where = rng.choice(["far", "far", "left", "right"])
        w, d, h = rng.uniform(0.6, 1.5), rng.uniform(0.35, 0.6), rng.uniform(0.8, 2.1)
        fp = spot(w, d, where)
        if fp is not None:
            mat = ({"kind": "drawers", "colors": [_paint(rng, (0.1, 0.5), (0.35, 0.85))], "step": rng.uniform(0.25, 0.45),
                    "axis": 0 if where == "far" else 2}
                   if rng.random() < 0.5 else {"kind": "wood", "colors": [_wood(rng)], "axis": 1, "freq": rng.uniform(4, 9)})
            counter = None  # a counter, with a wall cabinet above it: height, cabinet bottom, height, depth
            if fit_rng is not None and fit_rng.random() < 0.6:
                counter = (fit_rng.uniform(0.85, 0.95), fit_rng.uniform(1.40, 1.55), fit_rng.uniform(0.6, 0.85),
                           fit_rng.uniform(0.30, 0.36))
            if counter is not None and mode == "all":  # "desks" draws it too, so its desks are "all"'s
                h, y0, tall, depth = counter
                y1, dw = min(y0 + tall, H - 0.05), min(d, depth)
                x0, z0, x1, z1 = fp
                wall_fp = {"far": (x0, z1 - dw, x1, z1), "left": (x0, z0, x0 + dw, z1),
                           "right": (x1 - dw, z0, x1, z1)}[str(where)]
                box(wall_fp, y0, y1, CLASS_INDEX["cabinet"], mat)
            box(fp, 0.0, h, CLASS_INDEX["cabinet"], mat)
    # sofa against a wall
    if rng.random() < 0.6:
        where = rng.choice(["far", "left", "right"])
        w, d = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
        fp = spot(w, d, where)
        if fp is not None:
            mat = {"kind": "fabric", "colors": [_paint(rng, (0.25, 0.7), (0.3, 0.7))]}
            cls = CLASS_INDEX["sofa"]
            x0, z0, x1, z1 = fp
            box(fp, 0.0, 0.42, cls, mat)
            if where == "far":
                box((x0, z1 - 0.22, x1, z1), 0.42, 0.85, cls, mat)
                arms = [(x0, z0, x0 + 0.18, z1 - 0.22), (x1 - 0.18, z0, x1, z1 - 0.22)]
            elif where == "left":
                box((x0, z0, x0 + 0.22, z1), 0.42, 0.85, cls, mat)
                arms = [(x0 + 0.22, z0, x1, z0 + 0.18), (x0 + 0.22, z1 - 0.18, x1, z1)]
            else:
                box((x1 - 0.22, z0, x1, z1), 0.42, 0.85, cls, mat)
                arms = [(x0, z0, x1 - 0.22, z0 + 0.18), (x0, z1 - 0.18, x1 - 0.22, z1)]
            for a in arms:
                box(a, 0.42, 0.62, cls, mat)
    # table with legs, maybe balls on it
    table_top = None
    if rng.random() < 0.75:
        w, d, h = rng.uniform(0.9, 1.7), rng.uniform(0.6, 1.0), rng.uniform(0.7, 0.78)
        fp = spot(w, d, "free")
        if fp is not None:
            mat = {"kind": "wood", "colors": [_wood(rng)], "axis": 0 if w > d else 2, "freq": rng.uniform(6, 12)}
            cls = CLASS_INDEX["table"]
            x0, z0, x1, z1 = fp
            box(fp, h - 0.05, h, cls, mat)
            leg = 0.06
            for lx, lz in ((x0 + 0.04, z0 + 0.04), (x1 - 0.04 - leg, z0 + 0.04), (x0 + 0.04, z1 - 0.04 - leg),
                           (x1 - 0.04 - leg, z1 - 0.04 - leg)):
                box((lx, lz, lx + leg, lz + leg), 0.0, h - 0.05, cls, mat)
            if fit_rng is not None and fit_rng.random() < 0.5:  # a desk: drawers under one end
                pw, right = fit_rng.uniform(0.35, 0.5), fit_rng.random() < 0.5
                if w > d:
                    px0 = x1 - 0.04 - pw if right else x0 + 0.04
                    ped = (px0, z0 + 0.04, px0 + pw, z1 - 0.04)
                else:
                    pz0 = z1 - 0.04 - pw if right else z0 + 0.04
                    ped = (x0 + 0.04, pz0, x1 - 0.04, pz0 + pw)
                box(ped, 0.0, h - 0.05, cls, mat)
            table_top = (fp, h)
    # stools
    for _ in range(int(rng.integers(0, 3))):
        r, h = rng.uniform(0.15, 0.25), rng.uniform(0.4, 0.65)
        fp = spot(2 * r, 2 * r, "free")
        if fp is not None:
            add("cylinder", CLASS_INDEX["stool"], [(fp[0] + fp[2]) / 2, (fp[1] + fp[3]) / 2, r, 0.0, h],
                {"kind": "solid", "colors": [_vivid(rng)]})
    # balls on the floor or on the table
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(0.1, 0.25)
        colors = [_vivid(rng), _vivid(rng)]
        if table_top is not None and rng.random() < 0.4:
            (x0, z0, x1, z1), h = table_top
            r = min(r, 0.15)
            c = [rng.uniform(x0 + r, x1 - r), h + r, rng.uniform(z0 + r, z1 - r)]
        else:
            fp = spot(2 * r, 2 * r, "free")
            if fp is None:
                continue
            c = [(fp[0] + fp[2]) / 2, r, (fp[1] + fp[3]) / 2]
        add("sphere", CLASS_INDEX["ball"], [*c, r], {"kind": "ball", "colors": colors, "center": c})
    # floor lamp
    if rng.random() < 0.5:
        fp = spot(0.36, 0.36, rng.choice(["far", "left", "right"]))
        if fp is not None:
            lx, lz, h, rs = (fp[0] + fp[2]) / 2, (fp[1] + fp[3]) / 2, rng.uniform(1.3, 1.6), rng.uniform(0.15, 0.2)
            metal = {"kind": "solid", "colors": [_hsv(0, 0, rng.uniform(0.15, 0.35))]}
            cls = CLASS_INDEX["lamp"]
            add("cylinder", cls, [lx, lz, 0.16, 0.0, 0.03], metal)
            add("cylinder", cls, [lx, lz, 0.022, 0.03, h], metal)
            shade = {"kind": "solid", "colors": [_hsv(rng.uniform(0.08, 0.15), 0.25, 0.97)]}
            add("sphere", cls, [lx, h + rs * 0.8, lz, rs], shade)
    # decals: pictures on walls, a rug on the floor
    for _ in range(int(rng.integers(1, 4))):
        face = int(rng.choice([5, 5, 0, 1]))
        length = D if face in (0, 1) else W
        w, h = rng.uniform(0.4, 1.2), rng.uniform(0.35, 0.9)
        yc = min(rng.uniform(1.3, 1.9), H - 0.15 - h / 2)
        lo = zmin if face in (0, 1) else 0.1
        if length - w - 0.1 <= lo:
            continue
        u0 = rng.uniform(lo, length - w - 0.1)
        rect = [u0, u0 + w, yc - h / 2, yc + h / 2]
        if any(dc["face"] == face and _overlap((rect[0], rect[2], rect[1], rect[3]),
                                               (dc["rect"][0], dc["rect"][2], dc["rect"][1], dc["rect"][3]))
               for dc in scene["decals"]):
            continue
        content = {"kind": rng.choice(["abstract", "landscape", "stripes"]),
                   "colors": [_vivid(rng) for _ in range(4)],
                   "frame": _hsv(rng.uniform(0.05, 0.12), 0.5, rng.uniform(0.1, 0.45)),
                   "blobs": rng.uniform(0.15, 0.85, size=(3, 3)).tolist()}
        scene["decals"].append({"class": CLASS_INDEX["picture"], "face": face, "rect": rect, "content": content})
    if rng.random() < 0.75:
        w, d = rng.uniform(1.2, 2.5), rng.uniform(0.9, 1.8)
        x0 = rng.uniform(0.2, max(0.21, W - w - 0.2)); z0 = rng.uniform(cz + 0.6, max(cz + 0.61, D - d - 0.2))
        content = {"kind": rng.choice(["stripes", "checker", "diamond"]), "colors": [_vivid(rng) for _ in range(3)],
                   "period": rng.uniform(0.12, 0.3)}
        rect = [x0, min(x0 + w, W - 0.05), z0, min(z0 + d, D - 0.05)]
        scene["decals"].append({"class": CLASS_INDEX["rug"], "face": 2, "rect": rect,
                                "content": content})
    # lights near the ceiling
    lights = []
    for _ in range(1 if rng.random() < 0.5 else 2):
        pos = [rng.uniform(0.2, 0.8) * W, H - 0.2, rng.uniform(min(cz + 0.5, 0.9 * D), 0.9 * D)]
        lights.append({"pos": pos, "color": [1.0, rng.uniform(0.85, 0.97), rng.uniform(0.7, 0.92)],
                       "intensity": rng.uniform(2.5, 4.0)})
    scene["lights"] = lights
    scene["ambient"] = rng.uniform(0.18, 0.3)
    return scene


# ----------------------------------------------------------------------------- ray casting


def _camera(scene, size):
    cam = scene["camera"]
    yaw, pitch = cam["yaw"], cam["pitch"]
    f = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)], np.float32)
    r = np.cross([0.0, 1.0, 0.0], f).astype(np.float32)
    r /= np.linalg.norm(r)
    u = np.cross(f, r).astype(np.float32)
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1) * math.tan(cam["fov"] / 2)
    d = f[None, None] + c[None, :, None] * r[None, None] - c[:, None, None] * u[None, None]
    d = d.reshape(-1, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(cam["pos"], np.float32), d.astype(np.float32), f, r, u


def _safe(d):
    return np.where(np.abs(d) < 1e-7, np.float32(1e-7), d)


def _room_hit(o, d, dims):
    W, H, D = dims
    hi = np.array([W, H, D], np.float32)
    pos = d > 0
    t = np.where(pos, (hi - o) / _safe(d), -o / _safe(d))
    k = t.argmin(1)
    tt = t[np.arange(len(t)), k]
    face = 2 * k + pos[np.arange(len(t)), k]
    return tt.astype(np.float32), face


class _Geometry:
    """Object arrays by type; global object order = boxes, cylinders, spheres."""

    def __init__(self, objects):
        order = [o for t in ("box", "cylinder", "sphere") for o in objects if o["type"] == t]
        self.objects = order
        self.kind = np.array([{"box": _BOX, "cylinder": _CYL, "sphere": _SPH}[o["type"]] for o in order], np.int64)
        self.cls = np.array([o["class"] for o in order], np.uint8)
        self.camo = np.array([o["camouflaged"] for o in order], bool)
        def params(t, width):
            return np.array([o["params"] for o in order if o["type"] == t], np.float32).reshape(-1, width)

        self.box, self.cyl, self.sph = params("box", 6), params("cylinder", 5), params("sphere", 4)
        self.nb, self.nc = len(self.box), len(self.cyl)

    def hit(self, o, d, rows=None):
        """(M, N) hit distances (inf = miss) of rays o + t d for the objects in ``rows`` (bool mask).

        ``o`` is one origin (3,) or one per ray (N, 3); ``d`` (N, 3) unit directions. Written per
        axis on (M, N) arrays: numpy reductions over a length-3 axis are several times slower.
        """
        sel = np.ones(len(self.kind), bool) if rows is None else rows
        out = []
        ox, oy, oz = (o[0], o[1], o[2]) if o.ndim == 1 else (o[:, 0], o[:, 1], o[:, 2])
        oc = (ox, oy, oz)
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        b = self.box[sel[: self.nb]]
        if len(b):
            tn = tf = None
            for k, dk in enumerate((dx, dy, dz)):
                inv = 1.0 / _safe(dk)
                t1 = (b[:, k : k + 1] - oc[k]) * inv
                t2 = (b[:, k + 3 : k + 4] - oc[k]) * inv
                lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
                tn = lo if tn is None else np.maximum(tn, lo)
                tf = hi if tf is None else np.minimum(tf, hi)
            out.append(np.where((tf >= tn) & (tn > _EPS), tn, np.inf))
        c = self.cyl[sel[self.nb : self.nb + self.nc]]
        if len(c):
            rx, rz = ox - c[:, 0:1], oz - c[:, 1:2]
            a = np.maximum(dx * dx + dz * dz, 1e-12)
            bq = rx * dx + rz * dz
            cq = rx * rx + rz * rz - c[:, 2:3] ** 2
            disc = bq * bq - a * cq
            ts = (-bq - np.sqrt(np.maximum(disc, 0))) / a
            ys = oy + ts * dy
            t = np.where((disc >= 0) & (ts > _EPS) & (ys >= c[:, 3:4]) & (ys <= c[:, 4:5]), ts, np.inf)
            inv_y = 1.0 / _safe(dy)
            for cap in (3, 4):
                tc = (c[:, cap : cap + 1] - oy) * inv_y
                inside = (rx + tc * dx) ** 2 + (rz + tc * dz) ** 2 <= c[:, 2:3] ** 2
                t = np.minimum(t, np.where(inside & (tc > _EPS), tc, np.inf))
            out.append(t)
        s = self.sph[sel[self.nb + self.nc :]]
        if len(s):
            qx, qy, qz = ox - s[:, 0:1], oy - s[:, 1:2], oz - s[:, 2:3]
            bq = qx * dx + qy * dy + qz * dz
            cq = qx * qx + qy * qy + qz * qz - s[:, 3:4] ** 2
            disc = bq * bq - cq
            t = -bq - np.sqrt(np.maximum(disc, 0))
            out.append(np.where((disc >= 0) & (t > _EPS), t, np.inf))
        if not out:
            return np.full((0, len(d)), np.inf, np.float32)
        return np.concatenate(out, 0)

    def normals(self, idx, p):
        """Outward normals at points p on objects idx (global indices)."""
        n = np.zeros_like(p)
        kind = self.kind[idx]
        m = kind == _BOX
        if m.any():
            b = self.box[idx[m]]
            q = p[m]
            dist = np.abs(np.concatenate([q - b[:, 0:3], q - b[:, 3:6]], 1))
            f = dist.argmin(1)
            nn = np.zeros_like(q)
            nn[np.arange(len(q)), f % 3] = np.where(f < 3, -1.0, 1.0)
            n[m] = nn
        m = kind == _CYL
        if m.any():
            c = self.cyl[idx[m] - self.nb]
            q = p[m]
            rx, rz = q[:, 0] - c[:, 0], q[:, 2] - c[:, 1]
            rad = np.sqrt(rx * rx + rz * rz)
            side = np.abs(rad - c[:, 2])
            top, bot = np.abs(q[:, 1] - c[:, 4]), np.abs(q[:, 1] - c[:, 3])
            nn = np.stack([rx / np.maximum(rad, 1e-6), np.zeros_like(rx), rz / np.maximum(rad, 1e-6)], 1)
            nn[(top < side) & (top <= bot)] = (0, 1, 0)
            nn[(bot < side) & (bot < top)] = (0, -1, 0)
            n[m] = nn
        m = kind == _SPH
        if m.any():
            s = self.sph[idx[m] - self.nb - self.nc]
            n[m] = (p[m] - s[:, 0:3]) / s[:, 3:4]
        return n


# ----------------------------------------------------------------------------- textures


def _noise(p, scene, freq):
    k = np.asarray(scene["noise"]["k"], np.float32) * freq
    ph = np.asarray(scene["noise"]["phase"], np.float32)
    return np.sin(p @ k.T + ph).mean(1)


def _hash(x):
    return np.modf(np.abs(np.sin(x * 12.9898 + 4.1414) * 43758.5453))[0]


def _wall_u(face, p):
    return p[:, 2] if face in (0, 1) else p[:, 0]


def _material(mat, p, scene, face=None):
    col = np.asarray(mat["colors"], np.float32)
    kind = mat["kind"]
    n = len(p)
    if kind == "paint":
        return col[0] * (1 + 0.035 * _noise(p, scene, 2.5))[:, None]
    if kind == "wallpaper":
        u = _wall_u(face, p)
        stripe = (np.modf(u / mat["period"])[0] < 0.5)
        return np.where(stripe[:, None], col[0], col[1]) * (1 + 0.03 * _noise(p, scene, 3.0))[:, None]
    if kind == "planks":
        a = mat["axis"]
        along, across = p[:, a], p[:, 2 - a]
        row = np.floor(across / mat["width"])
        shifted = along / mat["length"] + _hash(row)
        seg = np.floor(shifted)
        tint = 0.8 + 0.35 * _hash(row * 7.31 + seg * 1.7)
        grain = 0.07 * np.sin(across * 90 + 5 * _noise(p, scene, 1.2) + seg)
        seam = (np.modf(across / mat["width"])[0] < 0.06) | (np.modf(shifted)[0] < 0.012)
        shade = tint * (1 + grain) * np.where(seam, 0.55, 1.0)
        return col[0] * shade[:, None]
    if kind == "tiles":
        s = mat["size"]
        gx, gz = p[:, 0] / s, p[:, 2] / s
        checker = ((np.floor(gx) + np.floor(gz)) % 2) == 0
        grout = (np.modf(gx)[0] < 0.04) | (np.modf(gz)[0] < 0.04)
        c = np.where(checker[:, None], col[0], col[1]) * (1 + 0.04 * _noise(p, scene, 4))[:, None]
        return np.where(grout[:, None], np.float32(0.75) * col[0] * 0.6 + 0.15, c)
    if kind == "carpet":
        return col[0] * (0.9 + 0.06 * _noise(p, scene, 6) + 0.06 * _noise(p, scene, 23))[:, None]
    if kind == "wood":
        a = mat["axis"]
        w = np.sin(2 * np.pi * (p[:, a] * mat["freq"] + 1.5 * _noise(p, scene, 1.3)))
        return col[0] * (0.86 + 0.14 * w)[:, None]
    if kind == "drawers":
        a = mat["axis"]
        y = p[:, 1] / mat["step"]
        groove = np.modf(y)[0] < 0.05
        u = p[:, a] * 2.0
        groove |= np.modf(u)[0] < 0.025
        return col[0] * np.where(groove, 0.55, 1.0 + 0.03 * _noise(p, scene, 3))[:, None]
    if kind == "fabric":
        return col[0] * (0.88 + 0.08 * _noise(p, scene, 8) + 0.05 * np.sin(p[:, 1] * 120))[:, None]
    if kind == "ball":
        c = np.asarray(mat["center"], np.float32)
        band = np.sin(np.arctan2(p[:, 0] - c[0], p[:, 2] - c[2]) * 3 + (p[:, 1] - c[1]) * 8) > 0
        return np.where(band[:, None], col[0], col[1])
    return np.broadcast_to(col[0] * (1 + 0.03 * _noise(p, scene, 3))[:, None], (n, 3)).astype(np.float32)


def _decal_color(decal, s, t, w, h):
    c = decal["content"]
    col = np.asarray(c["colors"], np.float32)
    kind = c["kind"]
    if decal["class"] == CLASS_INDEX["picture"]:
        if kind == "landscape":
            sky = col[0] * 0.5 + 0.5 * np.float32([0.6, 0.8, 1.0])
            above = (t > 0.35 + 0.1 * np.sin(s * 7))[:, None]
            out = np.where(above, sky * (0.7 + 0.3 * t)[:, None], col[1] * (0.6 + 0.4 * t)[:, None])
            sun = (s - 0.7) ** 2 + ((t - 0.72) * h / w) ** 2 < 0.012
            out[sun] = (1.0, 0.9, 0.5)
        elif kind == "stripes":
            k = (np.floor(s * 6 + t * 2) % 3).astype(np.int64)
            out = col[k]
        else:
            out = np.broadcast_to(col[0] * (0.6 + 0.4 * s)[:, None], (len(s), 3)).copy()
            for j, (bx, by, br) in enumerate(c["blobs"]):
                inside = (s - bx) ** 2 + ((t - by) * h / w) ** 2 < (0.25 * br) ** 2
                out[inside] = col[1 + j]
        fw = 0.05
        frame = (np.minimum(s, 1 - s) * w < fw) | (np.minimum(t, 1 - t) * h < fw)
        out[frame] = c["frame"]
        return out
    # rugs
    per = c["period"]
    border = (np.minimum(s, 1 - s) * w < 0.12) | (np.minimum(t, 1 - t) * h < 0.12)
    if kind == "stripes":
        inner = np.where((np.floor(s * w / per) % 2 == 0)[:, None], col[1], col[2])
    elif kind == "checker":
        inner = np.where(((np.floor(s * w / per) + np.floor(t * h / per)) % 2 == 0)[:, None], col[1], col[2])
    else:
        dd = np.abs(np.modf(s * w / per)[0] - 0.5) + np.abs(np.modf(t * h / per)[0] - 0.5)
        inner = np.where((dd < 0.35)[:, None], col[1], col[2])
    return np.where(border[:, None], col[0], inner)


def _decals(scene, sid, p):
    """For each decal: (decal, pixel indices, s, t, w, h) of the pixels of sid on its face inside its rect."""
    out = []
    for dc in scene["decals"]:
        face = dc["face"]
        idx = np.flatnonzero(sid == face)
        if not len(idx):
            continue
        q = p[idx]
        if face == 2:
            u, v = q[:, 0], q[:, 2]
        else:
            u, v = _wall_u(face, q), q[:, 1]
        u0, u1, v0, v1 = dc["rect"]
        m = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
        if m.any():
            out.append((dc, idx[m], (u[m] - u0) / (u1 - u0), (v[m] - v0) / (v1 - v0), u1 - u0, v1 - v0))
    return out


# ----------------------------------------------------------------------------- rendering


def _resolve(t_room, face, T, rows):
    n = len(t_room)
    if rows.any():
        sub = T[rows]
        k = sub.argmin(0)
        tk = sub[k, np.arange(n)]
        obj = np.flatnonzero(rows)[k]
        hit = tk < t_room
        return np.where(hit, tk, t_room), np.where(hit, 6 + obj, face)
    return t_room, face.copy()


def _surface_normals(geo, sid, p):
    n = np.empty_like(p)
    room = sid < 6
    n[room] = _FACE_NORMALS[sid[room]]
    if (~room).any():
        n[~room] = geo.normals(sid[~room] - 6, p[~room])
    return n


def _edges(rgb):
    g = rgb @ np.float32([0.299, 0.587, 0.114])
    q = np.pad(g, 1, mode="edge")
    g = (q[:-2, 1:-1] + q[2:, 1:-1] + q[1:-1, :-2] + q[1:-1, 2:] + 4 * q[1:-1, 1:-1]) / 8  # light blur
    q = np.pad(g, 1, mode="edge")
    gx = (q[:-2, 2:] + 2 * q[1:-1, 2:] + q[2:, 2:] - q[:-2, :-2] - 2 * q[1:-1, :-2] - q[2:, :-2]) / 8
    gy = (q[2:, :-2] + 2 * q[2:, 1:-1] + q[2:, 2:] - q[:-2, :-2] - 2 * q[:-2, 1:-1] - q[:-2, 2:]) / 8
    return np.clip(np.hypot(gx, gy) * 3.0, 0, 1).astype(np.float32)


def render(scene: dict, size: int, drop_camouflaged: bool = False) -> dict[str, Any]:
    """Render a scene description into every domain (see the module docstring for the keys).

    ``drop_camouflaged=True`` removes the camouflaged objects from the geometry too (their rgb is
    the same either way): a check that they really are invisible in colour.
    """
    size = int(size)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    objects = [o for o in scene["objects"] if not (drop_camouflaged and o["camouflaged"])]
    geo = _Geometry(objects)
    o, d, f, r, u = _camera(scene, size)
    t_room, face = _room_hit(o, d, scene["room"])
    T = geo.hit(o, d)
    t_all, sid_all = _resolve(t_room, face, T, np.ones(len(geo.kind), bool))
    t_vis, sid_vis = _resolve(t_room, face, T, ~geo.camo)
    p_all = o + t_all[:, None] * d
    n_all = _surface_normals(geo, sid_all, p_all)
    same = sid_all == sid_vis
    p_vis, n_vis = p_all.copy(), n_all.copy()
    if not same.all():
        diff = ~same
        p_vis[diff] = o + t_vis[diff, None] * d[diff]
        n_vis[diff] = _surface_normals(geo, sid_vis[diff], p_vis[diff])

    # labels (full geometry), decals on top of their wall / floor
    labels = np.where(sid_all < 6, _FACE_LABEL[np.minimum(sid_all, 5)], 0).astype(np.uint8)
    obj = sid_all >= 6
    labels[obj] = geo.cls[sid_all[obj] - 6]
    for dc, idx, *_ in _decals(scene, sid_all, p_all):
        labels[idx] = dc["class"]

    # albedo of the visible (camouflage-free) surfaces
    albedo = np.empty_like(p_vis)
    mats = scene["room_materials"]
    for s in np.unique(sid_vis):
        idx = np.flatnonzero(sid_vis == s)
        mat = mats[s] if s < 6 else geo.objects[s - 6]["material"]
        albedo[idx] = _material(mat, p_vis[idx], scene, face=int(s) if s < 6 else None)
    for dc, idx, s_, t_, w, h in _decals(scene, sid_vis, p_vis):
        albedo[idx] = _decal_color(dc, s_, t_, w, h)

    # lighting: ambient + point lights with hard shadows from the visible objects
    occluders = ~geo.camo
    light = np.repeat((scene["ambient"] * (0.8 + 0.2 * n_vis[:, 1]))[:, None], 3, 1).astype(np.float32)
    for lt in scene["lights"]:
        lp = np.asarray(lt["pos"], np.float32)
        to = lp - p_vis
        dist = np.linalg.norm(to, axis=1)
        ldir = to / dist[:, None]
        cos = (n_vis * ldir).sum(1)
        lit = np.flatnonzero(cos > 0)
        vis = np.zeros(len(p_vis), np.float32)
        if len(lit):
            vis[lit] = 1.0
            if occluders.any():
                Ts = geo.hit(p_vis[lit] + n_vis[lit] * 2e-3, ldir[lit], occluders)
                vis[lit] = (Ts.min(0) >= dist[lit] - 2e-3).astype(np.float32)
        e = lt["intensity"] * np.maximum(cos, 0) * vis / (1 + (dist / 2.5) ** 2)
        light += e[:, None] * np.asarray(lt["color"], np.float32)
    lin = np.clip(albedo, 0, 1) ** 2.2 * light
    # exposure from the illumination alone (not the albedo), so that decals change only their pixels
    lum = light @ np.float32([0.2126, 0.7152, 0.0722])
    expo = 1.35 / max(float(np.percentile(lum, 97)), 1e-3)
    rgb = np.clip(lin * expo, 0, 1) ** (1 / 2.2)

    S = size
    z = t_all * (d @ f)
    n_cam = np.stack([n_all @ r, n_all @ u, -(n_all @ f)], 1)
    reshade = np.clip(0.1 + 0.9 * np.maximum(-(n_all * d).sum(1), 0), 0, 1)
    rgb = rgb.reshape(S, S, 3).astype(np.float32)
    meta = {
        "seed": scene["seed"], "size": S, "generator_version": GENERATOR_VERSION,
        "classes": list(SYNTHROOMS_CLASSES), "room": scene["room"], "camera": scene["camera"],
        "lights": scene["lights"],
        "objects": [{"class": SYNTHROOMS_CLASSES[o_["class"]], "type": o_["type"], "camouflaged": o_["camouflaged"],
                     "params": o_["params"]} for o_ in geo.objects],
        "decals": [{"class": SYNTHROOMS_CLASSES[dc["class"]], "face": dc["face"], "rect": dc["rect"]}
                   for dc in scene["decals"]],
        "camouflaged_pixels": int((labels == SYNTHROOMS_CAMOUFLAGED_CLASS).sum()),
        "decal_pixels": int(np.isin(labels, SYNTHROOMS_DECAL_CLASSES).sum()),
    }
    return {
        "rgb": rgb,
        "depth_zbuffer": z.reshape(S, S).astype(np.float32),
        "depth_euclidean": t_all.reshape(S, S).astype(np.float32),
        "normal": n_cam.reshape(S, S, 3).astype(np.float32),
        "reshading": reshade.reshape(S, S).astype(np.float32),
        "edge_texture": _edges(np.round(rgb * 255) / 255),
        "labels": labels.reshape(S, S),
        "meta": meta,
    }


def render_scene(seed: int, size: int = 128, drop_camouflaged: bool = False,
                 fitted: bool | str = False) -> dict[str, Any]:
    """``render(sample_scene(seed, fitted), size)``: every domain of scene ``seed`` as numpy arrays."""
    return render(sample_scene(seed, fitted), size, drop_camouflaged=drop_camouflaged)


# ----------------------------------------------------------------------------- storage


def encode_scene(out: dict[str, Any]) -> dict[str, np.ndarray]:
    """The stored arrays: Taskonomy conventions per domain, plus ``depth_mm`` for the NYUDv2 layout."""
    return {
        "rgb": np.round(out["rgb"] * 255).astype(np.uint8),
        "depth_zbuffer": np.clip(np.round(out["depth_zbuffer"] * 512), 0, 65534).astype(np.uint16),
        "normal": np.clip(np.round(127 + 128 * out["normal"]), 0, 255).astype(np.uint8),
        "reshading": np.round(out["reshading"] * 255).astype(np.uint8),
        "edge_texture": np.round(out["edge_texture"] * EDGE_STORE_MAX).astype(np.uint16),
        "segment_semantic": out["labels"].astype(np.uint8),
        "depth_mm": np.clip(np.round(out["depth_zbuffer"] * 1000), 0, 65535).astype(np.uint16),
    }


def scene_to_sample(out: dict[str, Any], a: str = "rgb", b: str = "depth_zbuffer", target: str = "labels",
                    layout: str = "taskonomy", depth_max: float = 10.0) -> dict:
    """A loader-style item from an in-memory render, exactly as the loaders would decode it.

    ``layout="taskonomy"`` decodes every domain per the Taskonomy peer protocol;
    ``layout="nyudv2"`` decodes depth as millimetres / ``depth_max`` (like ``NYUDv2``).
    ``target="labels"`` gives the int64 label map.
    """
    import torch

    from .transforms import decode_domain, depth_to_unit

    enc = encode_scene(out)

    def dec(domain):
        if domain in ("labels", "segment_semantic"):
            return torch.from_numpy(enc["segment_semantic"].astype(np.int64))
        if layout == "nyudv2" and domain == "depth_zbuffer":
            return depth_to_unit(enc["depth_mm"], depth_max)
        return decode_domain(domain, enc[domain])

    return {"a": dec(a), "b": dec(b), "target": dec(target), "id": f"seed_{out['meta']['seed']}"}


def scene_seed(seed: int, index: int) -> int:
    """The render seed of scene ``index`` of a data set generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def _save_png(arr, path, level=1):
    from PIL import Image

    Image.fromarray(arr).save(path, compress_level=level)


def _link_or_copy(src, dst):
    try:
        if os.path.exists(dst):
            os.remove(dst)
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_one(job):
    i, seed, size, out_dir, fitted = job
    enc = encode_scene(render_scene(seed, size, fitted=fitted))
    tdir, ndir = Path(out_dir) / "taskonomy", Path(out_dir) / "nyudv2"
    for dom in TASKONOMY_WRITE_DOMAINS:
        _save_png(enc[dom], tdir / dom / f"point_{i}_view_0_domain_{dom}.png")
    name = f"{i:06d}.png"
    _link_or_copy(tdir / "rgb" / f"point_{i}_view_0_domain_rgb.png", ndir / "rgb" / name)
    _link_or_copy(tdir / "segment_semantic" / f"point_{i}_view_0_domain_segment_semantic.png", ndir / "masks" / name)
    _save_png(enc["depth_mm"], ndir / "depth" / name)
    return i


def dataset_meta(n: int, size: int, seed: int, n_test: int, fitted: bool | str = False) -> dict:
    meta = {
        "generator": "mango.data.synthrooms", "generator_version": GENERATOR_VERSION,
        "seed": int(seed), "n": int(n), "size": int(size),
        "classes": list(SYNTHROOMS_CLASSES),
        "camouflaged_class": SYNTHROOMS_CAMOUFLAGED_CLASS, "decal_classes": list(SYNTHROOMS_DECAL_CLASSES),
        "splits": {"train": int(n - n_test), "test": int(n_test)},
        "scene_seeds": "scene i = mango.data.synthrooms.render_scene(scene_seed(seed, i), size, fitted=fitted)",
        "description": (
            "Procedural indoor RGB-D scenes. 'picture' and 'rug' are flat decals: only colour reveals them "
            "(depth/normal/reshading are the wall's or floor's). 'camouflaged' objects are absent from rgb and "
            "edge_texture (rgb is the render without them): only depth, normal and reshading reveal them."),
        "storage": {
            "taskonomy": "taskonomy/<domain>/point_{i}_view_0_domain_<domain>.png; rgb uint8; depth_zbuffer uint16 "
                         "1/512 m along the optical axis; normal uint8 RGB = 127 + 128 n (camera frame: x right, y up, "
                         "z towards the camera); reshading uint8; edge_texture uint16 = edge strength x 11355; "
                         "segment_semantic uint8 labels; train.txt/test.txt list ids point_{i}_view_0",
            "nyudv2": "nyudv2/{rgb,depth,masks}/NNNNNN.png; depth uint16 millimetres; masks uint8 labels; "
                      "train.txt/test.txt in the TokenFusion format 'rgb/... masks/... depth/...'",
        },
    }
    mode = fitted_mode(fitted)
    if mode:  # absent by default, so a default data set's meta stays what it always was
        meta["fitted"] = True if mode == "all" else mode
    return meta


def write_dataset(out_dir: str | Path, n: int, size: int = 128, seed: int = 0, test_fraction: float = 0.2,
                  workers: int | None = None, progress: bool = True, fitted: bool | str = False,
                  only_test: bool = False) -> dict:
    """Write n scenes in both layouts (see the module docstring); returns meta (with timing).
    ``only_test`` renders only the test split (the same scenes, ids and lists as the full data set's, with
    no train list): enough to score a checkpoint without rendering the scenes it trained on."""
    out_dir = Path(out_dir)
    n = int(n)
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    tdir, ndir = out_dir / "taskonomy", out_dir / "nyudv2"
    for dom in TASKONOMY_WRITE_DOMAINS:
        (tdir / dom).mkdir(parents=True, exist_ok=True)
    for sub in ("rgb", "depth", "masks"):
        (ndir / sub).mkdir(parents=True, exist_ok=True)
    fitted = fitted_mode(fitted) or False
    first = n_train if only_test else 0
    jobs = [(i, scene_seed(seed, i), int(size), str(out_dir), fitted) for i in range(first, n)]
    workers = max(1, min(workers or (os.cpu_count() or 1), len(jobs) or 1))
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="SynthRooms", unit="scene", disable=not progress, mininterval=1.0)
    if workers == 1:
        for job in jobs:
            _write_one(job)
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("fork" if sys.platform != "win32" else "spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_one, jobs, chunksize=4):
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - t0
    splits = {"train": range(0, n_train), "test": range(n_train, n)}
    for name, ids in splits.items():
        if only_test and name == "train":
            continue  # no list rather than an empty one: training on this folder fails at once
        (tdir / f"{name}.txt").write_text("".join(f"point_{i}_view_0\n" for i in ids))
        (ndir / f"{name}.txt").write_text(
            "".join(f"rgb/{i:06d}.png\tmasks/{i:06d}.png\tdepth/{i:06d}.png\n" for i in ids))
    meta = dataset_meta(n, size, seed, n_test, fitted)
    if only_test:
        meta["written"] = ["test"]
    for where, layout in ((out_dir, None), (tdir, "taskonomy"), (ndir, "nyudv2")):
        m = dict(meta, layout=layout) if layout else meta
        (where / "meta.json").write_text(json.dumps(m, indent=1) + "\n")
    meta["seconds"] = elapsed
    meta["scenes"] = len(jobs)
    meta["scenes_per_minute"] = 60.0 * len(jobs) / max(elapsed, 1e-9)
    meta["workers"] = workers
    return meta


# ----------------------------------------------------------------------------- pictures

_PALETTE = np.array([
    [174, 199, 232], [152, 223, 138], [240, 240, 240], [140, 86, 75], [255, 127, 14], [148, 103, 189],
    [31, 119, 180], [214, 39, 40], [255, 217, 47], [227, 119, 194], [23, 190, 207], [0, 0, 0]], np.uint8)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(_PALETTE)] = _PALETTE
    pal[255] = (90, 90, 90)
    return pal[labels]


def grid_rows(out: dict[str, Any]) -> list[np.ndarray]:
    """uint8 RGB views of every domain of one render: rgb, depth, normal, reshading, edges, labels, masks."""
    z = out["depth_zbuffer"]
    zn = (z - z.min()) / max(float(z.max() - z.min()), 1e-6)
    depth = (np.stack([1 - zn, 1 - zn * 0.6, 0.4 + 0.6 * zn], -1) * 255).astype(np.uint8)
    grey = lambda x: np.repeat((np.clip(x, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)
    lab = out["labels"]
    special = np.zeros(lab.shape + (3,), np.uint8)
    special[lab == SYNTHROOMS_CAMOUFLAGED_CLASS] = (255, 60, 60)
    special[np.isin(lab, SYNTHROOMS_DECAL_CLASSES)] = (60, 200, 255)
    return [
        (out["rgb"] * 255).astype(np.uint8), depth, ((out["normal"] + 1) * 127.5).astype(np.uint8),
        grey(out["reshading"]), grey(out["edge_texture"]), colorize_labels(lab), special,
    ]


GRID_COLUMNS = ("rgb", "depth_zbuffer", "normal", "reshading", "edge_texture", "labels", "camo(red)/decal(blue)")


def save_grid(path: str | Path, seeds: Sequence[int] = (0, 1, 2, 3), size: int = 128, fitted: bool | str = False) -> Path:
    """A PNG grid, one row per seed, one column per domain (GRID_COLUMNS), with a header row."""
    from PIL import Image, ImageDraw

    rows = [np.concatenate(grid_rows(render_scene(s, size, fitted=fitted)), 1) for s in seeds]
    body = np.concatenate(rows, 0)
    head = Image.new("RGB", (body.shape[1], 14), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for k, name in enumerate(GRID_COLUMNS):
        draw.text((k * size + 2, 1), name, fill=(0, 0, 0))
    img = Image.new("RGB", (body.shape[1], body.shape[0] + 14))
    img.paste(head, (0, 0))
    img.paste(Image.fromarray(body), (0, 14))
    path = Path(path)
    img.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mango.data.synthrooms", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="output folder (writes DIR/taskonomy and DIR/nyudv2)")
    ap.add_argument("--n", type=int, default=5000, help="number of scenes")
    ap.add_argument("--size", type=int, default=128, help="image size (square)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.2, help="the last round(n*f) scenes are the test split")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    ap.add_argument("--grid", type=Path, default=None, help="also save a PNG grid of every domain to this path")
    ap.add_argument("--grid-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--fitted", nargs="?", const="all", default=False, choices=FITTED_MODES,
                    help="kitchen and office furniture: counters with wall cabinets above, desks with drawers "
                         "('--fitted desks': the desks only)")
    ap.add_argument("--only-test", action="store_true",
                    help="render only the test split (the last round(n*f) scenes, the same as in the full data set), "
                         "e.g. to score a checkpoint with python -m train.evaluate")
    args = ap.parse_args(argv)
    if args.out is None and args.grid is None:
        ap.error("give --out DIR (and/or --grid PATH)")
    if args.grid is not None:
        print(f"grid: {save_grid(args.grid, args.grid_seeds, args.size, args.fitted)}")
    if args.out is not None:
        meta = write_dataset(args.out, args.n, args.size, args.seed, args.test_fraction, args.workers,
                             fitted=args.fitted, only_test=args.only_test)
        which = f"the {meta['scenes']} test scenes (of {args.n})" if args.only_test else f"{args.n} scenes"
        print(f"wrote {which} of {args.size}x{args.size} to {args.out} in {meta['seconds']:.1f} s "
              f"({meta['scenes_per_minute']:.0f} scenes/minute, {meta['workers']} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
