"""Files written whole or not at all: written beside the target as ``NAME.part``, then renamed over it.

A reader, or a restart after a kill, sees the old file or the new one, never half of one (renames are
atomic on POSIX file systems). `train/atomic.py` builds its folder swaps on the same convention.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def part_path(path: Path) -> Path:
    """Where a new `path` is written before it replaces the old one."""
    return path.with_name(path.name + ".part")


def replace_file(path: str | os.PathLike[str], write_to: Callable[[Path], Any]) -> None:
    """`write_to(part)` writes the new file, which is then renamed over `path`; on an error the
    partial file is removed and `path` is left as it was."""
    path = Path(path)
    partial = part_path(path)
    try:
        write_to(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text`, flushed to disk before the rename."""

    def write(partial: Path) -> None:
        with partial.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    replace_file(path, write)
