"""Writes the HEIC test files (run once; needs an encoder: `pip install pillow-heif`, which the
project does not install, since the app only decodes HEIC, through pi-heif).

    python tests/app/data/make_heic.py
"""

from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

HERE = Path(__file__).parent


def halves(width: int, height: int) -> Image.Image:
    """Left half dark, right half bright: which way the image was turned can be read back."""
    pixels = np.full((height, width, 3), 220, np.uint8)
    pixels[:, : width // 2] = 30
    return Image.fromarray(pixels)


def main() -> None:
    pillow_heif.register_heif_opener()
    held_upright = Image.Exif()
    held_upright[0x0112] = 6  # shown turned 90° clockwise, as a phone held upright stores it
    halves(64, 48).save(HERE / "upright.heic", quality=90, exif=held_upright.tobytes())
    halves(5712, 4284).save(HERE / "phone-24mp.heic", quality=10)  # a phone's default photo size


if __name__ == "__main__":
    main()
