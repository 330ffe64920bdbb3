"""What every view of a model slot starts from: one example read and checked (`Prepared`), and the
counts and names that all the views print (class shares, percentages, modality labels, strongest tokens)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import plots

ProgressFn = Callable[[float, str], None]
DISPLAY = 256  # side of the square images the views draw on


def no_progress(fraction: float, message: str) -> None:
    return None


@dataclass
class Prepared:
    """One example, checked and ready: model inputs (batch of 1), what to draw, and notices."""

    a: torch.Tensor | list[str]
    b: torch.Tensor | list[str]
    panels: list[plots.Panel]
    displays: dict[str, np.ndarray]  # per image modality: preview at upload aspect ratio
    words: list[str] | None = None  # the text modality's word pieces, start to end token
    notices: list[str] = field(default_factory=list)


def class_shares(labels: np.ndarray, n_classes: int) -> list[tuple[int, float]]:
    """(class, share of pixels) for each predicted class, largest first, counted on the model's own labels:
    the one count behind the class table, the overlay's legend and the "Explain" list."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=n_classes)
    return [(int(k), float(counts[k] / counts.sum())) for k in np.argsort(-counts, kind="stable") if counts[k] > 0]


def percent(share: float, decimals: int = 0) -> str:
    """A share as a percentage number ("43", "43.2"); one that is there never reads 0 ("<1"), and one
    short of all never reads 100 (">99")."""
    text = f"{100.0 * share:.{decimals}f}"
    step = 10.0 ** -decimals
    if share > 0 and float(text) == 0:
        return f"<{step:g}"
    if share < 1 and float(text) == 100:
        return f">{100 - step:g}"
    return text


def strongest(weights: np.ndarray, label: Callable[[int], str], left_out: np.ndarray, top: int = 3,
              number: str = ".3f", shown: np.ndarray | None = None) -> str:
    """`plots.strongest_tokens` with the tokens named by ``label``, those in ``left_out`` skipped."""
    names = [None if left_out[t] else label(t) for t in range(len(weights))]
    return plots.strongest_tokens(weights, names, top, number, shown)


def modality_label(name: str) -> str:
    return {"depth_zbuffer": "depth", "edge_texture": "texture", "reshading": "shade"}.get(name, name)
