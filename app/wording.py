"""Sentences for the contributions view that keep signs: what raises a target, what lowers it.

A share of a sum is only meaningful when its parts agree in sign: Shapley values of -0.21 and +0.06
are not "77 % and 23 %". These functions say "depth raises the wall logit by 0.06; rgb lowers it by
0.21", give shares only where the signs agree, and say which way a likelihood change goes.
"""

from __future__ import annotations

import math
from typing import Sequence

from mango.data.transforms import taskonomy_depth_metres
from mango.models.config import IMAGENET_MEAN

UNCHANGED = 5e-4  # below this, a value is read as "leaves it unchanged"

NEGATIVE_BITS = (
    "Bits/dim can be negative: they measure a density of continuous features, not the probability of "
    "discrete pixels, and a density exceeds 1 wherever the features are concentrated in less than one unit "
    "per dimension, so −log₂ p per dimension falls below 0. Compare them only between models with the same encoders."
)

# Every sample from the prior lies above the test range (seen with the bundled genre checkpoint's at any τ).
ALL_LESS_LIKELY = (
    "<small>Every sample here is less likely than almost all real test {noun}. That is a finding about the flow, "
    "not an error: the real inputs lie where its density is high, while most of its probability mass (where "
    "its samples land) lies where the density is lower: a density can be high over a thin region that holds "
    "little of its mass. The decoded samples show what that mass looks like.</small>"
)


def magnitude(value: float) -> str:
    """|value| at a readable precision: 0.06, 0.205, 8.59, 3,714."""
    size = abs(value)
    return f"{size:,.0f}" if size >= 100 else f"{size:.3g}"


def effect(name: str, value: float, subject: str) -> str:
    """'depth raises the wall logit by 0.06' / 'rgb lowers it by 0.21' / 'rgb leaves it unchanged'."""
    if not math.isfinite(value):
        return f"{name}: no value"
    if abs(value) < UNCHANGED:
        return f"{name} leaves {subject} unchanged"
    return f"{name} {'raises' if value > 0 else 'lowers'} {subject} by {magnitude(value)}"


def effects(names: Sequence[str], values: Sequence[float], subject: str) -> str:
    """Both modalities' signed effects in one sentence, the one that raises the target most first:
    'depth raises the wall logit by 0.06; rgb lowers it by 0.21.'"""
    order = sorted(range(len(names)), key=lambda k: -values[k])
    parts = [effect(names[k], values[k], subject if i == 0 else "it") for i, k in enumerate(order)]
    return "; ".join(parts) + "."


def share(names: Sequence[str], values: Sequence[float]) -> str:
    """Who carries the net change, as a share only when both values have the same sign."""
    total = float(sum(values))
    signs = [v for v in values if abs(v) >= UNCHANGED]  # a value read as "unchanged" pulls no way
    same_sign = all(v >= 0 for v in signs) or all(v <= 0 for v in signs)
    if not same_sign:
        return "They pull in opposite directions, so no share is given."
    if abs(total) < UNCHANGED:
        return "Neither changes it."
    lead = max(range(len(values)), key=lambda k: abs(values[k]))
    change = "rise" if total > 0 else "fall"
    if len(signs) < len(values):
        return f"Only {names[lead]} moves it: {values[lead] / total:.0%} of the {change}."
    return f"Both push the same way: {names[lead]} gives {values[lead] / total:.0%} of the {change}."


def _direction(value: float) -> int:
    return 0 if abs(value) < UNCHANGED else (1 if value > 0 else -1)


def same_split(names: Sequence[str], first: Sequence[float], second: Sequence[float]) -> str:
    """Whether two baselines' Shapley values tell the same story: each modality pushing the same way, and
    the same one moving the target most. What differs is named when they do not."""
    lead = [max(range(len(names)), key=lambda k: abs(values[k])) for values in (first, second)]
    changed = [k for k in range(len(names)) if _direction(first[k]) != _direction(second[k])]
    if lead[0] == lead[1] and not changed:
        return (f"As against the constant baseline, {names[lead[0]]} moves it more and each modality pushes the same "
                "way: this split does not hinge on the baseline.")
    differs = []
    if lead[0] != lead[1]:
        differs.append(f"{names[lead[1]]} moves it more here, {names[lead[0]]} against the constant baseline")
    for k in changed:
        differs.append(f"{names[k]} leaves it unchanged here" if _direction(second[k]) == 0 else
                       f"{names[k]} moves it only here" if _direction(first[k]) == 0 else
                       f"{names[k]} pushes it the other way here")
    return (f"⚠️ Not the split above: {'; '.join(differs)}. Which modality matters, and how, depends here on what "
            "\"removed\" means: read each split as its baseline's answer, not the input's alone.")


def likelihood(names: Sequence[str], deltas_bits_per_dim: Sequence[float]) -> str:
    """What replacing each modality by its baseline does to the exact likelihood, sign explained; the caveat
    on a pair made *more* likely is said once, after both.

    ``deltas_bits_per_dim``: per modality, bits/dim without it minus bits/dim as given (fewer bits = more
    likely)."""
    said, likelier = [], []
    for name, delta in zip(names, deltas_bits_per_dim):
        if abs(delta) < 1e-5:
            said.append(f"Without {name}, the likelihood of the fused features does not change.")
        elif delta > 0:
            said.append(f"Without {name}, the fused features cost {magnitude(delta)} more bits/dim: the flow finds "
                        f"the pair **less** likely when {name} is replaced by its baseline.")
        else:
            said.append(f"Without {name}, the fused features cost {magnitude(delta)} fewer bits/dim: the flow finds "
                        f"the pair **more** likely with {name} replaced by its baseline.")
            likelier.append(name)
    if likelier:
        said.append("A featureless input can be more typical to a density than a real one; this says nothing about "
                    f"whether {' or '.join(likelier)} is useful for the prediction.")
    return " ".join(said)


def removed_as(name: str, mean: Sequence[float], depth_max: float = 10.0) -> str:
    """What "removing" an image modality puts in its place, in its own units: a constant image at its
    normalisation mean (zero after the model's normalisation), which is not the data's mean. ``name``:
    the modality's data name (``depth``: metres / ``depth_max``; ``depth_zbuffer``: Taskonomy log depth)."""
    if not mean:
        return "an empty plot"
    value = float(mean[0])
    if len(mean) == 3 and tuple(round(float(v), 3) for v in mean) == IMAGENET_MEAN:
        return "ImageNet's mean colour (a warm grey) everywhere"
    if name == "depth":
        return f"a flat wall at {value * depth_max:.2g} m everywhere"
    if name == "depth_zbuffer":
        return f"a flat wall at {float(taskonomy_depth_metres(value)):.2g} m everywhere"
    if name == "normal" and all(abs(float(v) - 0.5) < 0.01 for v in mean):
        return "no surface direction (the zero vector, 127 in each channel) everywhere"
    if name == "edge_texture":
        return f"an edge strength of {value:.2f} (on its 0–1 scale) everywhere"
    if name == "reshading":
        return f"a uniform shading of {value:.0%} of white"
    values = ", ".join(f"{float(v):.2f}" for v in mean)
    return f"the constant value {values} (of the input's range) everywhere"
