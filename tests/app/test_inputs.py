"""app.inputs: uploads are read with the training conventions, and bad ones get a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.inputs import InputError, check_pair_sizes, check_plot, load_image


def save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return str(path)


def test_16_bit_depth_is_millimetres_over_depth_max(tmp_path):
    depth = np.full((40, 60), 2500, dtype=np.uint16)  # 2.5 m
    loaded = load_image(save(tmp_path / "d.png", depth), "depth", 1, 32, depth_max=10.0)
    assert loaded.tensor.shape == (1, 32, 32) and loaded.bit_depth == 16
    torch.testing.assert_close(loaded.tensor, torch.full((1, 32, 32), 0.25))
    assert loaded.original_size == (60, 40)
    assert loaded.display.dtype == np.uint8 and loaded.display.shape[2] == 3


def test_8_bit_depth_is_read_as_metres_over_255_with_a_notice_that_says_so(tmp_path):
    # the notice called it "relative depth": a map stretched to 0–255 per image reads as another scene
    loaded = load_image(save(tmp_path / "d.png", np.full((16, 16), 51, np.uint8)), "depth", 1, 16)
    torch.testing.assert_close(loaded.tensor, torch.full((1, 16, 16), 0.2))  # 51 / 255 × 10 m = 2 m
    notice = next(n for n in loaded.notices if "8-bit" in n)
    assert "value / 255 × 10 m" in notice and "steps of 3.9 cm" in notice and "relative" not in notice
    assert "near is bright" in notice and "back to front" in notice  # a monocular estimate is inverse depth
    # Taskonomy's z-buffer: 8-bit values go through the log scale, which the notice gives in metres
    from mango.data.transforms import taskonomy_depth_metres

    z = load_image(save(tmp_path / "z.png", np.full((16, 16), 128, np.uint8)), "depth_zbuffer", 1, 16)
    notice = next(n for n in z.notices if "8-bit" in n)
    metres = float(taskonomy_depth_metres(float(z.tensor.mean())))
    assert f"128 ≈ {metres:.1f} m" in notice and "logarithmic" in notice and 0.4 < metres < 0.6
    assert "near is bright" in notice and "back to front" in notice


def test_each_tab_s_units_say_that_near_must_be_dark():
    """A monocular estimate (Depth Anything, MiDaS) or a disparity map is near-bright, the reverse of what
    both models read, and nothing in the file tells them apart: the units under the upload boxes say it."""
    from app import texts

    for tab, unit in (("segmentation", "millimetres"), ("translation", "1/512 m")):
        text = texts.depth_units(tab)
        assert unit in text and "Near must be dark" in text and "reads back to front" in text


def test_taskonomy_domains(tmp_path):
    raw = np.full((16, 16), 1000, np.uint16)
    z = load_image(save(tmp_path / "z.png", raw), "depth_zbuffer", 1, 16)
    torch.testing.assert_close(z.tensor, torch.full((1, 16, 16), float(np.log1p(1000) / 11.1)))
    edge = load_image(save(tmp_path / "e.png", np.full((16, 16), 11355 // 2, np.uint16)), "edge_texture", 1, 16)
    assert abs(float(edge.tensor.mean()) - 0.5) < 1e-3
    normal = load_image(save(tmp_path / "n.png", np.full((16, 16, 3), 127, np.uint8)), "normal", 3, 16)
    torch.testing.assert_close(normal.tensor, torch.full((3, 16, 16), 127 / 255))


def test_three_channel_depth(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="single-channel"):
        load_image(save(tmp_path / "c.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)), "depth", 1, 16)
    grey = np.repeat(rng.integers(0, 255, (16, 16, 1), dtype=np.uint8), 3, axis=2)
    loaded = load_image(save(tmp_path / "g.png", grey), "depth", 1, 16)
    assert any("identical channels" in n for n in loaded.notices)


def png16(path, array, exif: bytes | None = None):
    """A 16-bit RGB (3 channels) or RGBA (4) PNG, written by hand: PIL cannot write one; ``exif``: an eXIf chunk."""
    import struct
    import zlib

    height, width, channels = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, {3: 2, 4: 6}[channels], 0, 0, 0)
    extra = chunk(b"eXIf", exif) if exif is not None else b""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return str(path)


def test_16_bit_colour_png_depth_is_read_at_full_depth(tmp_path):
    """Three equal 16-bit channels (millimetres) are one 16-bit depth map, not an 8-bit map of their high byte."""
    depth = np.arange(1000, 1000 + 32 * 32 * 4, 4, dtype=np.uint16).reshape(32, 32)  # 1.000–5.092 m
    grey = load_image(save(tmp_path / "grey.png", depth), "depth", 1, 32, depth_max=10.0)
    rgb = load_image(png16(tmp_path / "rgb16.png", np.stack([depth] * 3, axis=2)), "depth", 1, 32, label="depth map",
                     depth_max=10.0)
    assert rgb.bit_depth == 16 and not any("8-bit" in n for n in rgb.notices)
    torch.testing.assert_close(rgb.tensor, grey.tensor)
    assert any("3 identical channels; read as one channel, at its full 16 bits" in n for n in rgb.notices)
    opaque = np.full((32, 32, 1), 65535, np.uint16)
    rgba = load_image(png16(tmp_path / "rgba16.png", np.concatenate([np.stack([depth] * 3, 2), opaque], 2)), "depth", 1,
                      32, depth_max=10.0)
    torch.testing.assert_close(rgba.tensor, grey.tensor)
    assert any("alpha" in n and "every pixel was opaque" in n for n in rgba.notices)
    # the translation tab's 16-bit domains the same way
    zbuffer = load_image(png16(tmp_path / "z.png", np.stack([depth] * 3, 2)), "depth_zbuffer", 1, 16)
    torch.testing.assert_close(zbuffer.tensor, load_image(save(tmp_path / "zg.png", depth), "depth_zbuffer", 1, 16).tensor)
    edges = load_image(png16(tmp_path / "e.png", np.full((16, 16, 3), 11355 // 2, np.uint16)), "edge_texture", 1, 16)
    assert edges.bit_depth == 16 and abs(float(edges.tensor.mean()) - 0.5) < 1e-3
    coloured = np.stack([depth, depth, depth + 1], axis=2)
    with pytest.raises(InputError, match="3 different colour channels"):
        load_image(png16(tmp_path / "c.png", coloured), "depth", 1, 16)
    photo = load_image(png16(tmp_path / "photo.png", np.full((16, 16, 3), 257 * 200, np.uint16)), "rgb", 3, 16)
    torch.testing.assert_close(photo.tensor, torch.full((3, 16, 16), 200 / 255))  # colour stays as it was read


def test_depth_beyond_the_models_range_is_said(tmp_path):
    depth = np.full((20, 20), 3000, np.uint16)
    depth[:5] = 25000  # a quarter at 25 m
    loaded = load_image(save(tmp_path / "far.png", depth), "depth", 1, 16, label="depth map", depth_max=10.0)
    assert "25.0% of the depth map lies beyond 10 m, the farthest the model reads" in " ".join(loaded.notices)
    near = load_image(save(tmp_path / "near.png", np.full((20, 20), 3000, np.uint16)), "depth", 1, 16, depth_max=10.0)
    assert not any("beyond" in n for n in near.notices)


def test_rgb_accepts_grey_and_alpha_with_a_notice(tmp_path):
    grey = load_image(save(tmp_path / "g.png", np.full((16, 16), 200, np.uint8)), "rgb", 3, 8)
    assert grey.tensor.shape == (3, 8, 8) and any("greyscale" in n for n in grey.notices)
    opaque = load_image(save(tmp_path / "a.png", np.full((16, 16, 4), 255, np.uint8)), "rgb", 3, 8)
    assert opaque.tensor.shape == (3, 8, 8)
    assert any("alpha" in n and "every pixel was opaque" in n for n in opaque.notices)
    pixels = np.full((16, 16, 4), 255, np.uint8)
    pixels[:4, :, 3] = 0  # a quarter transparent
    see_through = load_image(save(tmp_path / "t.png", pixels), "rgb", 3, 8, label="RGB image")
    assert any("RGB image has an alpha" in n and "25% of pixels" in n for n in see_through.notices)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)  # stored landscape, left half white
    pixels[:, :20] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display" (a phone held upright)
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_image(str(path), "rgb", 3, 20, label="RGB image")
    assert loaded.original_size == (20, 40)  # shown upright: portrait
    assert any("turned 90° clockwise" in n and "EXIF" in n for n in loaded.notices)
    top, bottom = float(loaded.tensor[:, :5].mean()), float(loaded.tensor[:, -5:].mean())
    assert top > 0.9 and bottom < 0.1  # the white left half is now on top


def test_non_square_images_are_centre_cropped_like_the_training_data(tmp_path):
    strip = np.zeros((8, 4000), np.uint16)
    strip[:, 1996:2004] = 5000  # the centre 8x8 square is 5 m away, the rest 0
    loaded = load_image(save(tmp_path / "strip.png", strip), "depth", 1, 16, label="depth", depth_max=10.0)
    torch.testing.assert_close(loaded.tensor, torch.full((1, 16, 16), 0.5))  # not squashed 500:1
    assert loaded.original_size == (4000, 8)
    notice = next(n for n in loaded.notices if "cropped" in n)
    assert "4000×8 (aspect ratio 500:1, landscape)" in notice and "(0.2% of it" in notice
    assert "its centre square was kept (0.2% of it; the left and right were cropped) at the model's 16×16 px" in notice
    assert loaded.display.shape[0] == loaded.display.shape[1]  # the overlay is drawn on the same square
    portrait = load_image(save(tmp_path / "phone.png", np.zeros((40, 30, 3), np.uint8)), "rgb", 3, 16)
    assert any("30×40 (aspect ratio 1:1.33, portrait)" in n for n in portrait.notices)  # the orientation is kept
    square = load_image(save(tmp_path / "sq.png", np.zeros((30, 30, 3), np.uint8)), "rgb", 3, 16)
    assert not any("cropped" in n for n in square.notices)


@pytest.mark.parametrize("value", [0, 1200])
def test_constant_depth_gets_a_warning(tmp_path, value):
    loaded = load_image(save(tmp_path / "d.png", np.full((32, 32), value, np.uint16)), "depth", 1, 16, label="depth map")
    warning = next(n for n in loaded.notices if "same value" in n)
    assert f"({value})" in warning and "unreliable" in warning
    assert ("no measurement" in warning) == (value == 0)
    varied = load_image(save(tmp_path / "v.png", np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)), "depth", 1, 16)
    assert not any("same value" in n for n in varied.notices)


@pytest.mark.parametrize("content", [b"not an image at all\n", b"\x89PNG\r\n\x1a\n broken"])
def test_non_images_and_broken_files(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not an image|damaged|could not be decoded"):
        load_image(str(path), "rgb", 3, 16, label="RGB image")


def test_missing_and_huge_and_tiny(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_image(None, "rgb", 3, 16, label="RGB image")
    with pytest.raises(InputError, match="no longer on the server"):
        load_image(str(tmp_path / "gone.png"), "rgb", 3, 16)
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 4000), 0).save(huge)
    with pytest.raises(InputError, match="5000×4000 pixels; the limit"):
        load_image(str(huge), "depth", 1, 16)
    with pytest.raises(InputError, match="at least 8×8"):
        load_image(save(tmp_path / "t.png", np.zeros((4, 4), np.uint8)), "depth", 1, 16)


def test_a_phone_photo_over_the_limits_is_decoded_smaller_when_it_is_a_jpeg(tmp_path):
    # a phone's default photo is 24 megapixels (5712×4284); a JPEG decodes at 1/2, 1/4 or 1/8 of its size
    # without the full image in memory, so it is read at the first of these that fits, with a notice
    ramp = np.add.outer(np.arange(4284) // 17, np.arange(5712) // 23).astype(np.uint8)
    photo = tmp_path / "IMG_0001.jpg"
    image = Image.fromarray(np.stack([ramp, ramp[::-1], 255 - ramp], axis=-1))
    exif = image.getexif()
    exif[0x0112] = 6  # held upright
    image.save(photo, quality=90, exif=exif)
    loaded = load_image(str(photo), "rgb", 3, 16, label="RGB image")
    assert loaded.original_size == (4284, 5712)  # as uploaded, turned upright by its EXIF tag (decoded at half)
    assert "The RGB image is 5712×4284 pixels" in loaded.notices[0] and "decoded at 2856×2142 (1/2" in loaded.notices[0]
    assert any("turned 90° clockwise" in notice for notice in loaded.notices)
    wide = tmp_path / "panorama.jpg"  # 32000 px wide: a quarter is still over 4096 px, an eighth fits
    Image.new("RGB", (32000, 600), (90, 120, 150)).save(wide)
    loaded = load_image(str(wide), "rgb", 3, 16)
    assert loaded.original_size == (32000, 600) and "(1/8 of its size)" in loaded.notices[0]
    wider = tmp_path / "wider.jpg"  # past an eighth too: refused, as a PNG over the limits is
    Image.new("L", (40000, 200), 100).save(wider)
    with pytest.raises(InputError, match="40000×200 pixels; the limit"):
        load_image(str(wider), "rgb", 3, 16)


HEIC = Path(__file__).parent / "data"  # made by data/make_heic.py


def test_a_heic_photo_is_read_upright():
    # what phones save: left half dark, right half bright, stored with "turn 90° clockwise to show";
    # upright, the dark half is on top, as a browser or phone shows it
    loaded = load_image(str(HEIC / "upright.heic"), "rgb", 3, 16, label="RGB image")
    assert loaded.original_size == (48, 64)
    top, bottom = loaded.tensor[:, :7].mean(), loaded.tensor[:, 9:].mean()
    assert top < 0.2 < 0.75 < bottom
    assert any("is a HEIC photo" in notice for notice in loaded.notices)  # the browser may not preview it


def test_a_heic_phone_photo_over_the_limits_is_reduced_after_decoding(tmp_path):
    loaded = load_image(str(HEIC / "phone-24mp.heic"), "rgb", 3, 16, label="RGB image")
    assert loaded.original_size == (5712, 4284)  # as uploaded
    assert "The RGB image is 5712×4284 pixels" in loaded.notices[0] and "decoded at 2856×2142 (1/2" in loaded.notices[0]
    png = load_image(save(tmp_path / "p.png", np.zeros((20, 20, 3), np.uint8)), "rgb", 3, 16)
    assert not any("HEIC" in notice for notice in png.notices)
    left, right = loaded.tensor[..., :7].mean(), loaded.tensor[..., 9:].mean()
    assert left < 0.2 < 0.75 < right


def test_a_heic_too_large_to_decode_is_refused(monkeypatch):
    monkeypatch.setattr("app.inputs.HEIF_DECODE_PIXELS", 20_000_000)  # below the photo's 24.5 megapixels
    with pytest.raises(InputError, match="5712×4284 pixels; the limit"):
        load_image(str(HEIC / "phone-24mp.heic"), "rgb", 3, 16)


def test_pair_sizes_and_plots(tmp_path):
    a = load_image(save(tmp_path / "a.png", np.zeros((20, 30, 3), np.uint8)), "rgb", 3, 16)
    b = load_image(save(tmp_path / "b.png", np.zeros((10, 15), np.uint16)), "depth", 1, 16)
    assert "resized" in check_pair_sizes(a, b, "RGB image", "depth")[0]
    assert check_pair_sizes(a, a, "x", "y") == []
    assert check_plot("  A   film about   cats. ")[0] == "A film about cats."
    for bad, pattern in [("", "empty"), ("   ", "empty"), (None, "empty"), ("Cats.", "1 word; it needs at least 3"),
                         ("word " * 2000, "limit is"), ("🎬🍿😱🔥 💀 👻", "0 words"), ("\x00\x01 \x02", "0 words")]:
        with pytest.raises(InputError, match=pattern):
            check_plot(bad)


def test_plots_in_scripts_without_spaces_are_counted_by_character():
    text, notices = check_plot("一个孤独的灯塔看守人在暴风雨之夜发现了一封神秘的信。")
    assert text.startswith("一个") and notices == []
    cleaned, notices = check_plot("A\x00 film\x07 about\u200b cats.")
    assert cleaned == "A film about cats." and "3 control or invisible characters were removed" in notices[0]


def test_depth_holes_are_filled_and_said(tmp_path):
    depth = np.full((32, 32), 2000, dtype=np.uint16)
    depth[:, 16:] = 4000
    depth[8:12, 14:18] = 0  # no measurement, across the edge
    loaded = load_image(save(tmp_path / "d.png", depth), "depth", 1, 32, label="depth map")
    assert float(loaded.tensor.min()) >= 0.2 - 1e-6  # no pixel read as 0 m
    notice = next(n for n in loaded.notices if "measured nothing" in n)
    assert notice.startswith(f"{16 / 1024:.1%} of the depth map is 0")
    torch.testing.assert_close(loaded.tensor[0, 10, 13], torch.tensor(0.2))
    torch.testing.assert_close(loaded.tensor[0, 10, 18], torch.tensor(0.4))
    complete = load_image(save(tmp_path / "c.png", np.full((32, 32), 2000, np.uint16)), "depth", 1, 32)
    assert not any("measured nothing" in n for n in complete.notices)
    zbuffer = load_image(save(tmp_path / "z.png", depth), "depth_zbuffer", 1, 32)  # Taskonomy: not a camera's 0
    assert not any("measured nothing" in n for n in zbuffer.notices)


@pytest.mark.parametrize("size", [128, 256])
def test_a_too_large_image_names_the_models_own_input_size(tmp_path, size):
    path = save(tmp_path / "wide.png", np.zeros((10, 5000, 3), np.uint8))
    with pytest.raises(InputError, match=f"the limit is 4096 pixels per side.*works at {size}×{size} anyway"):
        load_image(path, "rgb", 3, size, label="poster")


def test_8_bit_depth_zeros_are_depth_not_holes(tmp_path):
    # an 8-bit map has no "no measurement" code: its zeros are read as 0 m (and warned), not filled
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    loaded = load_image(save(tmp_path / "d8.png", ramp), "depth", 1, 256)
    assert not any("measured nothing" in n for n in loaded.notices)
    assert float(loaded.tensor[0, :, 0].max()) == 0.0  # the nearest column stays at 0


def test_a_map_of_one_measured_depth_and_holes_is_flat_and_warned(tmp_path):
    depth = np.zeros((64, 64), np.uint16)
    depth[10:20, 10:20] = 1500  # one patch measured, the rest holes
    loaded = load_image(save(tmp_path / "holes.png", depth), "depth", 1, 32, label="depth map")
    assert any("measured nothing" in n for n in loaded.notices)
    warning = next(n for n in loaded.notices if "same value" in n)
    assert warning.startswith("⚠️ With its holes filled, the depth map has the same value (1500)") and "unreliable" in warning


def test_a_non_square_photo_is_read_as_the_loaders_read_it(tmp_path):
    # the app cropped first and resized after; the loaders resize first: 7 % of a real photo's
    # segmentation differed
    from mango.data.transforms import PairedTransform, rgb_to_unit

    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    loaded = load_image(save(tmp_path / "photo.png", photo), "rgb", 3, 128)
    transform = PairedTransform(128, train=False)
    expected = transform.image(rgb_to_unit(photo), transform.params(480, 640))
    torch.testing.assert_close(loaded.tensor, expected)
    assert loaded.display.shape[0] == loaded.display.shape[1]  # the patch grid is drawn on the square it read


def test_8_bit_depth_with_zeros_is_warned_that_they_read_as_0_m(tmp_path):
    depth = np.full((32, 32), 80, np.uint8)
    depth[:4] = 0  # a depth camera's holes, kept in an 8-bit map
    loaded = load_image(save(tmp_path / "d8.png", depth), "depth", 1, 32, label="depth map")
    warning = next(n for n in loaded.notices if n.startswith("⚠️ 12.5% of the depth map is 0"))
    assert "read as 0 m" in warning and "16-bit" in warning


@pytest.mark.parametrize("modality, stored, bits", [("depth", 0, 16), ("depth", 0, 8), ("depth_zbuffer", 0, 16)])
def test_an_all_zero_depth_map_is_said_to_read_as_a_surface_at_the_lens(tmp_path, modality, stored, bits):
    # it said "the model sees no depth at all", and spoke of depth cameras and 'camouflaged' on the
    # translation tab; the model reads 0 m, and another constant gives another prediction
    array = np.full((32, 32), stored, np.uint16 if bits == 16 else np.uint8)
    loaded = load_image(save(tmp_path / "zero.png", array), modality, 1, 16, label="depth")
    warning = next(n for n in loaded.notices if "same value" in n)
    assert "a flat surface at 0 m, touching the lens" in warning and "camouflaged" not in warning
    assert ("no measurement" in warning) == (modality == "depth" and bits == 16)
    assert "another constant gives another prediction" in warning


@pytest.mark.parametrize("unit, scale, warned", [("mm", 1000, False), ("cm", 100, True), ("m", 1, True)])
def test_a_depth_map_in_other_units_than_millimetres_is_warned(tmp_path, unit, scale, warned):
    depth = (np.linspace(1.8, 3.6, 32 * 32).reshape(32, 32) * scale).round().astype(np.uint16)  # a room, 1.8–3.6 m
    loaded = load_image(save(tmp_path / f"{unit}.png", depth), "depth", 1, 16, label="depth")
    said = [n for n in loaded.notices if "is it in millimetres" in n]
    assert bool(said) == warned
    if warned:
        assert f"{int(depth.max())} mm away" in said[0]


def test_transparency_kept_in_a_palette_or_a_colour_key_is_said(tmp_path):
    # only an alpha channel was reported; a GIF's or a palette PNG's transparent index was dropped silently
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette.paste(1, (0, 0, 8, 16))
    palette.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(str(tmp_path / "p.png"), "rgb", 3, 16, label="poster")
    assert any("has a transparent palette colour" in n and "50%" in n for n in loaded.notices)
    keyed = Image.new("RGB", (16, 16), (255, 255, 255))
    keyed.paste((10, 20, 30), (0, 0, 16, 4))
    keyed.save(tmp_path / "k.png", transparency=(255, 255, 255))
    loaded = load_image(str(tmp_path / "k.png"), "rgb", 3, 16, label="poster")
    assert any("has a transparent colour key" in n and "75%" in n for n in loaded.notices)
    torch.testing.assert_close(loaded.tensor[:, 0, 0], torch.tensor([10, 20, 30]) / 255.0)  # the colours as stored
    assert sum("transparent" in n for n in loaded.notices) == 1  # said once, not again as an alpha channel
    depth = np.full((16, 16), 3000, np.uint16)
    depth[:8] = 0
    Image.fromarray(depth).save(tmp_path / "d16.png", transparency=0)  # a 16-bit grey PNG's colour key
    loaded = load_image(str(tmp_path / "d16.png"), "depth", 1, 16, label="depth")
    assert any("has a transparent colour key" in n and "50%" in n for n in loaded.notices)


def test_a_jpeg_over_pil_s_bomb_warning_is_read_at_an_eighth_and_named_by_its_upload_size(tmp_path):
    # PIL warns from 89.5 megapixels: a 108-megapixel phone JPEG was refused, though an eighth of it fits
    big = tmp_path / "108mp.jpg"
    Image.new("L", (12000, 9000), 120).save(big, quality=50)
    loaded = load_image(str(big), "rgb", 3, 16, label="RGB image")
    assert loaded.original_size == (12000, 9000)  # as uploaded, not as decoded
    assert any("decoded at 3000×2250 (1/4" in n for n in loaded.notices)
    assert any("The RGB image is 12000×9000 (aspect ratio 1.33:1" in n for n in loaded.notices)


def test_a_strip_is_cut_to_its_centre_square_before_it_is_resized(tmp_path, monkeypatch):
    # resized whole as the loaders do, a 4096×8 upload became a 3×256×131072 tensor (400 MB) at 256 px
    import torch.nn.functional as F

    sizes = []
    interpolate = F.interpolate
    monkeypatch.setattr(F, "interpolate", lambda x, *a, **k: sizes.append(interpolate(x, *a, **k).numel()) or
                        interpolate(x, *a, **k))
    strip = np.random.default_rng(0).integers(0, 256, (8, 4096, 3), dtype=np.uint8)
    loaded = load_image(save(tmp_path / "strip.png", strip), "rgb", 3, 256)
    assert loaded.tensor.shape == (3, 256, 256) and max(sizes) == 3 * 256 * 256
    photo = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    sizes.clear()
    load_image(save(tmp_path / "p.png", photo), "rgb", 3, 256)  # a photo: the loaders' path, the short side resized
    assert max(sizes) == 3 * 256 * 341


def test_depth_shares_count_what_the_model_reads(tmp_path):
    # the notices counted the whole upload: sides at 20 m around a centre at 3 m were "50 % beyond 10 m"
    depth = np.full((100, 400), 3000, np.uint16)
    depth[:, :100] = depth[:, 300:] = 20000
    loaded = load_image(save(tmp_path / "far.png", depth), "depth", 1, 16, label="depth")
    assert not any("beyond" in n for n in loaded.notices) and float(loaded.tensor.max()) <= 0.3 + 1e-6
    depth[:, :175] = 20000  # now a quarter of the centre square (columns 150–249) is far
    loaded = load_image(save(tmp_path / "far2.png", depth), "depth", 1, 16, label="depth")
    assert any(n.startswith("25.0% of the depth (in the centre square the model reads) lies beyond 10 m")
               for n in loaded.notices)
    holes = np.full((100, 400), 3000, np.uint16)
    holes[:, :20] = 0  # a depth camera's holes, all in the cut side
    loaded = load_image(save(tmp_path / "holes.png", holes), "depth", 1, 16, label="depth")
    assert not any("measured nothing" in n for n in loaded.notices)


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def test_a_millimetre_map_with_a_near_object_is_not_said_to_be_in_other_units(tmp_path):
    # the check is on the farthest point: a hand 30 cm from the camera in a 3 m room is still millimetres
    depth = np.full((32, 32), 3000, np.uint16)
    depth[:4, :4] = 300
    loaded = load_image(save(tmp_path / "d.png", depth), "depth", 1, 16, label="depth")
    assert not any("is it in millimetres" in n for n in loaded.notices)


def test_partly_transparent_pixels_count_in_the_alpha_notice(tmp_path):
    pixels = np.full((16, 16, 4), 255, np.uint8)
    pixels[:4, :, 3] = 128  # a quarter half-transparent, none fully
    loaded = load_image(save(tmp_path / "t.png", pixels), "rgb", 3, 8, label="RGB image")
    assert any("RGB image has an alpha" in n and "25% of pixels that are (partly) transparent" in n
               for n in loaded.notices)


def test_partly_transparent_pixels_count_in_a_16_bit_colour_png(tmp_path):
    depth = np.full((16, 16), 2000, np.uint16)
    alpha = np.full((16, 16), 65535, np.uint16)
    alpha[:8] = 30000  # half partly transparent
    path = png16(tmp_path / "rgba16.png", np.stack([depth, depth, depth, alpha], axis=2))
    loaded = load_image(path, "depth", 1, 16, label="depth")
    assert any("alpha" in n and "50% of pixels" in n for n in loaded.notices)


def test_a_mirrored_quarter_turn_swaps_the_upload_size_too(tmp_path):
    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))  # stored landscape
    exif = image.getexif()
    exif[0x0112] = 5  # transpose: a quarter turn and a mirror; shown portrait
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_image(str(path), "rgb", 3, 16, label="RGB image")
    assert loaded.original_size == (20, 40)
    assert any("20×40 (aspect ratio 1:2, portrait)" in n for n in loaded.notices)


def test_a_16_bit_colour_png_is_turned_upright_by_its_exif_tag(tmp_path):
    depth = np.full((20, 40), 5000, np.uint16)
    depth[:, :20] = 1000  # stored landscape, left half near (1 m)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the left half ends up on top
    data = exif.tobytes()
    data = data[6:] if data.startswith(b"Exif\x00\x00") else data
    path = png16(tmp_path / "d16.png", np.stack([depth] * 3, axis=2), exif=data)
    loaded = load_image(path, "depth", 1, 20, label="depth", depth_max=10.0)
    assert loaded.original_size == (20, 40) and any("turned 90° clockwise" in n for n in loaded.notices)
    top, bottom = float(loaded.tensor[0, :5].mean()), float(loaded.tensor[0, -5:].mean())
    assert top == pytest.approx(0.1, abs=0.02) and bottom == pytest.approx(0.5, abs=0.02)


def test_the_crop_notice_of_a_portrait_photo_gives_the_share_kept(tmp_path):
    portrait = load_image(save(tmp_path / "phone.png", np.zeros((40, 30, 3), np.uint8)), "rgb", 3, 16)
    notice = next(n for n in portrait.notices if "cropped" in n)
    assert "(75.0% of it; the top and bottom were cropped)" in notice


def test_a_tiny_share_beyond_the_range_never_reads_zero(tmp_path):
    depth = np.full((100, 100), 3000, np.uint16)
    depth[0, 0] = 25000  # one pixel in 10,000 at 25 m
    loaded = load_image(save(tmp_path / "far.png", depth), "depth", 1, 16, label="depth map", depth_max=10.0)
    assert any(n.startswith("under 0.1% of the depth map lies beyond 10 m") for n in loaded.notices)


def test_a_16_bit_greyscale_photo_keeps_its_high_byte(tmp_path):
    grey = np.full((16, 16), 50000, np.uint16)  # 50000 // 257 = 194; its low byte would be 80
    loaded = load_image(save(tmp_path / "g16.png", grey), "rgb", 3, 16, label="poster")
    torch.testing.assert_close(loaded.tensor, torch.full((3, 16, 16), 194 / 255))


def test_a_plot_of_exactly_the_minimum_words_is_accepted():
    assert check_plot("Cats chase mice.")[0] == "Cats chase mice."
    with pytest.raises(InputError, match="2 words"):
        check_plot("Cats chase.")


def test_shares_of_a_portrait_map_say_they_count_the_centre_square(tmp_path):
    depth = np.full((400, 100), 3000, np.uint16)
    depth[:175] = 20000  # a quarter of the centre square (rows 150-249) is beyond 10 m
    loaded = load_image(save(tmp_path / "far.png", depth), "depth", 1, 16, label="depth")
    assert any(n.startswith("25.0% of the depth (in the centre square the model reads) lies beyond 10 m")
               for n in loaded.notices)


def test_an_all_zero_8_bit_depth_map_is_warned_once(tmp_path):
    # the constant map's warning says it; the "x % is 0" warning would repeat it
    loaded = load_image(save(tmp_path / "z.png", np.zeros((32, 32), np.uint8)), "depth", 1, 16, label="depth")
    assert sum("same value" in n for n in loaded.notices) == 1
    assert not any("of the depth is 0" in n for n in loaded.notices)


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_an_animation_is_read_by_its_first_frame_and_said(tmp_path, suffix):
    """The upload box plays the animation; the model reads one picture, so the notice says which."""
    frames = [Image.fromarray(np.full((16, 16, 3), value, np.uint8)) for value in (200, 20, 110)]
    path = tmp_path / f"a{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    loaded = load_image(str(path), "rgb", 3, 16)
    assert any("holds 3 images" in n and "only the first" in n for n in loaded.notices), loaded.notices
    assert abs(float(loaded.tensor.mean()) - 200 / 255) < 0.02  # the first frame's colour
    frames[0].save(still := tmp_path / f"still{suffix}")
    assert not any("images" in n for n in load_image(str(still), "rgb", 3, 16).notices)
