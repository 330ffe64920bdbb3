"""Writes that a kill cannot leave half done: a file or folder is either the old one or the new one.

A file is written beside its target (``NAME.part``), flushed to disk, then renamed over it. A folder
is written whole under a staging name (``NAME.tmp``) and then swapped in with two renames; a kill
between them leaves ``NAME.old`` and the complete ``NAME.tmp``, and ``settle_staged_dir`` finishes
or undoes the swap when the run starts again. Renames are atomic on POSIX file systems.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from mango.atomic import atomic_write_text, part_path

__all__ = ["atomic_write_text", "remove_part_file", "replace_dir", "settle_staged_dir", "staging_dir"]


def staging_dir(target: Path) -> Path:
    """The folder to write a new `target` into before `replace_dir` swaps it in."""
    return target.with_name(target.name + ".tmp")


def _old_dir(target: Path) -> Path:
    return target.with_name(target.name + ".old")


def replace_dir(staged: Path, target: Path) -> None:
    """Swap the complete folder `staged` in for `target` (which need not exist)."""
    old = _old_dir(target)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def settle_staged_dir(target: Path, keep: Callable[[Path], bool]) -> None:
    """After a kill: swap in the staged folder when `keep(staged)` says it is complete and wanted, else drop it.

    Either way the leftovers of an interrupted `replace_dir` (``NAME.old``) are removed.
    """
    staged, old = staging_dir(target), _old_dir(target)
    if staged.is_dir():
        if keep(staged):
            replace_dir(staged, target)
        else:
            shutil.rmtree(staged)
    if old.exists():
        if not target.exists():  # cannot happen after a complete staged folder was kept; be safe anyway
            os.replace(old, target)
        else:
            shutil.rmtree(old)


def remove_part_file(path: Path) -> None:
    """Drop the ``.part`` file a kill during `atomic_write_text(path, ...)` left behind."""
    part_path(path).unlink(missing_ok=True)
