"""One workaround for the installed gradio, applied when the app is built.

gradio's ``processing_utils.save_pil_to_cache`` names each output image after the hash of its bytes
and rewrites the file in place every time. When two requests produce the same image at the same
time (two users clicking the same example), the second rewrite truncates the file while the first
is being downloaded, and that download fails ("Too little data for declared Content-Length"; the
concurrency test catches it). The replacement writes a new image under a temporary name and renames
it into place, and leaves an existing file alone: the name is the hash of the content, so an
existing file is already the same image. gradio's own ``save_file_to_cache`` works the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils
from PIL import Image

_original = processing_utils.save_pil_to_cache


def atomic_save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = folder / f"{name}.{format}"
    if not target.exists():
        fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(staging, target)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
    return str(target.resolve())


def apply() -> None:
    """Install the atomic writer (idempotent)."""
    processing_utils.save_pil_to_cache = atomic_save_pil_to_cache
