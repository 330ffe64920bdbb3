"""Colour science for what the app draws: perceived differences (CIELAB, CIE94), colour blindness (simulated
dichromacy), text contrast (WCAG 2), and the class palette ordered so that its first colours are far apart
for every eye. No plotting: `plots` draws with these."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from plotly.colors import qualitative


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    if len(colour) == 3:  # "#000": CSS's short form
        colour = "".join(2 * c for c in colour)
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def _linear_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0–255 -> linear light in 0–1 (the sRGB transfer function undone)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0–255 -> CIELAB (D65); `delta_e94` measures perceived differences in it."""
    c = _linear_rgb(rgb)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e94(lab: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """CIE 1994 colour difference (graphic arts weights) of each ``lab`` from ``reference``, made symmetric
    by taking the smaller of the two orders. Unlike plain CIELAB distance (CIE76) it does not count a
    chroma step between two saturated greens as a large difference: CIE76 ranked #16FF32 and #1CBE4F,
    which look alike over a photo, as far apart."""
    def one_way(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        chroma_a, chroma_b = np.hypot(a[..., 1], a[..., 2]), np.hypot(b[..., 1], b[..., 2])
        d_chroma = chroma_a - chroma_b
        d_hue_sq = np.maximum(((a[..., 1:] - b[..., 1:]) ** 2).sum(-1) - d_chroma ** 2, 0.0)
        return np.sqrt((a[..., 0] - b[..., 0]) ** 2 + (d_chroma / (1 + 0.045 * chroma_a)) ** 2
                       + d_hue_sq / (1 + 0.015 * chroma_a) ** 2)
    return np.minimum(one_way(lab, reference), one_way(reference, lab))


# Machado, Oliveira & Fernandes (2009), severity 1: how each full dichromacy maps linear sRGB.
DICHROMACY = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def simulate_dichromacy(rgb: np.ndarray, kind: str) -> np.ndarray:
    """(..., 3) sRGB in 0–255 as a person with ``kind`` (a key of `DICHROMACY`) sees it, in 0–255."""
    linear = np.clip(_linear_rgb(rgb) @ DICHROMACY[kind].T, 0.0, 1.0)
    return np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear) * 255.0


def _distinct_order(colours: Sequence[str], dichromat_weight: float = 2.0) -> list[str]:
    """``colours`` reordered so that each next one is the farthest from all before it (greedy): any
    prefix is spread out over this set. Far means the smaller of the CIE94 difference in normal vision
    and ``dichromat_weight`` times the smallest one under the three simulated dichromacies (with normal
    vision alone, sofa and lamp were 2.4 apart for deuteranopes). Near-white and near-black colours
    (L > 88, L < 25) are left out: they vanish on light or dark photos."""
    rgb = np.array([hex_to_rgb(c) for c in colours], dtype=np.float64)
    lab = rgb_to_lab(rgb)
    keep = np.flatnonzero((lab[:, 0] <= 88) & (lab[:, 0] >= 25))
    seen = [lab[keep]] + [rgb_to_lab(simulate_dichromacy(rgb[keep], kind)) for kind in DICHROMACY]

    def difference(i: int) -> np.ndarray:
        dichromat = np.min([delta_e94(view, view[i]) for view in seen[1:]], axis=0)
        return np.minimum(delta_e94(seen[0], seen[0][i]), dichromat_weight * dichromat)

    chosen = [0]
    nearest = difference(0)
    while len(chosen) < len(keep):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, difference(pick))
    return [colours[keep[i]] for i in chosen]


# Class colours: plotly's qualitative sets, ordered farthest-first so the first dozen (SynthRooms has
# 12 classes) are far apart, also for colour-blind eyes; tests/app/test_plots.py checks the distances.
PALETTE: list[str] = _distinct_order(list(dict.fromkeys(
    c.upper() for c in qualitative.D3 + qualitative.Bold + qualitative.Dark24 + qualitative.Alphabet + qualitative.Light24
    if c.startswith("#"))))


def class_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of an sRGB hex colour."""
    return float(_linear_rgb(np.array(hex_to_rgb(colour))) @ [0.2126, 0.7152, 0.0722])


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two hex colours (1 to 21; text needs 4.5)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background`` (plotly's own pick put grey #444 on
    the green IG bars, 3.8:1)."""
    return max(("#ffffff", "#111827"), key=lambda text: contrast_ratio(text, background))
