"""SynthRooms' known answers, and a model's explanations checked against them (issue 11).

SynthRooms was built so that some objects can be seen in one modality only:

- camouflaged objects are absent from the colour image: only geometry (depth, normals, shading)
  reveals them;
- pictures and rugs are flat decals: only colour reveals them.

An explanation that credits the other modality with such an object teaches something false. This
module finds the known-answer objects of a labelled scene and checks each explanation method.

**What "the revealing modality comes out larger" means here.** The target is the mean logit (or
log-probability, `mango.interpret.SCORES`) of the object's class over the object's *ground-truth*
region (not the predicted one: the object is where it is, whatever the model says). Each method gives one signed number per modality: how much that
modality moves the target from the baseline ("removed", see `mango.interpret`). An explanation
*points at* the revealing modality when that modality **raises** the class logit, and by more than
the other modality does: ``value[revealing] > max(value[other], 0)``. A modality that lowers the
correct class's logit is not revealing the object, however large its magnitude. For the attention
rollout (unsigned: the share of the object's tokens' absolute rollout weight on each modality's input
tokens, a signed map's weight, not a share of content) the revealing modality must give more than half.

With two players, Shapley values and feature ablation always rank the modalities alike:
phi_A - phi_B = ablation_A - ablation_B = f(A only) - f(B only). Their verdicts can differ only
through the "raises it" condition.

"Shapley values, blurred baseline" are the same game with `mango.interpret.blurred_baselines` as "removed"
(each image blurred by one patch): whether the verdict survives another choice of baseline.

Integrated Gradients counts as pointing at the right modality only where it has converged
(`mango.interpret.IG_TOLERANCE`): a map whose completeness error is large is not an explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from . import interpret

#: class name -> the modality names that reveal it (the other modalities of a scene do not show it).
REVEALED_BY: dict[str, frozenset[str]] = {
    "camouflaged": frozenset({"depth", "depth_zbuffer", "depth_euclidean", "normal", "reshading"}),
    "picture": frozenset({"rgb", "edge_texture"}),
    "rug": frozenset({"rgb", "edge_texture"}),
}
#: class name -> kind of known answer, as the benchmark groups them.
KIND: dict[str, str] = {"camouflaged": "camouflaged", "picture": "decal", "rug": "decal"}
DETECTED_RECALL = 0.5  # the model "sees" an object when it labels at least this share of its pixels
METHODS: tuple[str, ...] = ("shapley", "blurred_shapley", "ablation", "integrated_gradients", "rollout")
METHOD_LABELS: dict[str, str] = {
    "shapley": "Shapley values", "blurred_shapley": "Shapley values, blurred baseline", "ablation": "feature ablation",
    "integrated_gradients": "Integrated Gradients", "rollout": "attention rollout",
}
METHOD_COLOURS: dict[str, str] = {  # the benchmark's figure and the app's contributions chart
    "shapley": "#2563eb", "blurred_shapley": "#93c5fd", "ablation": "#f59e0b", "integrated_gradients": "#10b981",
    "rollout": "#6b7280",
}


def revealing_key(class_name: str, names: tuple[str, str]) -> str | None:
    """"a" or "b": the one input modality that reveals objects of this class; None when the class has
    no known answer or the model's two modalities do not split into revealing / not revealing."""
    reveal = REVEALED_BY.get(class_name)
    if reveal is None:
        return None
    keys = [key for key, name in zip("ab", names) if name in reveal]
    return keys[0] if len(keys) == 1 else None


@dataclass
class KnownObject:
    """One connected piece of a known-answer class in the ground-truth labels."""

    class_index: int
    class_name: str
    kind: str
    revealing: str  # "a" or "b"
    region: Tensor  # (H, W) bool

    @property
    def pixels(self) -> int:
        return int(self.region.sum())


def known_objects(labels: Tensor | np.ndarray, class_names: Sequence[str], names: tuple[str, str],
                  min_pixels: int = 1) -> list[KnownObject]:
    """The known-answer objects of one (H, W) label map: connected components (8-neighbour) of each
    known-answer class with at least ``min_pixels`` pixels, largest first within a class."""
    from scipy import ndimage

    labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    found = []
    for index, name in enumerate(class_names):
        key = revealing_key(name, names)
        if key is None or not (labels == index).any():
            continue
        components, count = ndimage.label(labels == index, structure=np.ones((3, 3), bool))
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        for component in sorted(range(1, count + 1), key=lambda c: -sizes[c]):
            if sizes[component] >= min_pixels:
                region = torch.from_numpy(components == component)
                found.append(KnownObject(index, name, KIND[name], key, region))
    return found


def points_at(values: Sequence[float], revealing: str) -> bool:
    """Whether a per-modality (A, B) explanation credits the revealing modality: it raises the target,
    and by more than the other modality does (see the module docstring)."""
    r = "ab".index(revealing)
    return bool(values[r] > max(values[1 - r], 0.0))


@dataclass
class ObjectCheck:
    """Every method's per-modality values (A, B) for one known-answer object, and the verdicts.

    ``values["rollout"]`` are shares of mixing weight (they add up to 1); the others are signed
    changes of the target. ``recall`` is the fraction of the object's pixels the model labels with
    its class: an explanation can only be right where the model sees the object at all.
    """

    obj: KnownObject
    values: dict[str, tuple[float, float]]
    right: dict[str, bool]
    recall: float
    f_both: float
    f_none: float
    ig_delta: float
    ig_steps: int
    ig_converged: bool
    score: str = "logit"


def _repeat(x: Any, k: int) -> Any:
    if isinstance(x, Tensor):
        return x.expand(k, *x.shape[1:])
    return list(x) * k


def check_objects(model: nn.Module, a: Any, b: Any, objects: Sequence[KnownObject], score: str = "logit",
                  ig_steps: int = 32, max_ig_steps: int = 128, internal_batch_size: int = 16) -> list[ObjectCheck]:
    """Run every method on each object of one example (a, b: batch of 1), all objects in one batch.

    ``score`` picks the target: the class's mean "logit" or "log_prob" over the object's region
    (`mango.interpret.SCORES`; the rollout does not depend on it).

    Integrated Gradients (at the encoder features, Gauss-Legendre) starts at ``ig_steps`` and
    doubles the steps for objects whose delta is above tolerance, up to ``max_ig_steps``.
    """
    if not objects:
        return []
    k = len(objects)
    classes = [o.class_index for o in objects]
    regions = torch.stack([o.region for o in objects])
    ak, bk = _repeat(a, k), _repeat(b, k)
    target = interpret.objects_target(classes, regions, score)
    contrib = interpret.modality_contributions(model, ak, bk, target)
    blurred = interpret.blurred_shapley(model, ak, bk, target)

    totals = torch.full((k, 2), float("nan"))
    delta = torch.full((k,), float("nan"))
    converged = torch.zeros(k, dtype=torch.bool)
    steps_used = torch.zeros(k, dtype=torch.long)
    todo, steps = list(range(k)), ig_steps
    while todo:
        sub = interpret.objects_target([classes[i] for i in todo], regions[todo], score)
        ig = interpret.integrated_gradients(model, _repeat(a, len(todo)), _repeat(b, len(todo)), sub, n_steps=steps,
                                            internal_batch_size=internal_batch_size)
        ok = ig.converged()
        for j, i in enumerate(todo):
            totals[i], delta[i], converged[i], steps_used[i] = ig.totals[j], ig.delta[j], ok[j], steps
        todo = [i for j, i in enumerate(todo) if not ok[j]]
        steps *= 2
        if steps > max_ig_steps:
            break

    with torch.no_grad():
        out = model(a, b)
        predicted = out.output.argmax(dim=1)[0].cpu()
        mixing = None
        flow = getattr(model, "flow", None)
        if flow is not None and hasattr(flow, "rollout"):
            mixing = interpret.rollout(model, out.features)

    checks = []
    for i, obj in enumerate(objects):
        values = {
            "shapley": tuple(contrib.shapley[i].tolist()),
            "blurred_shapley": tuple(blurred[i].tolist()),
            "ablation": tuple(contrib.ablation[i].tolist()),
            "integrated_gradients": tuple(totals[i].tolist()),
        }
        if mixing is not None:
            weights = interpret.region_token_weights(obj.region, model.config.grid)
            values["rollout"] = tuple(interpret.rollout_sources(mixing, weights).tolist())
        right = {m: points_at(v, obj.revealing) for m, v in values.items()}
        right["integrated_gradients"] = right["integrated_gradients"] and bool(converged[i])
        recall = float((predicted[obj.region] == obj.class_index).float().mean())
        checks.append(ObjectCheck(
            obj, values, right, recall, float(contrib.coalitions["both"][i]), float(contrib.coalitions["none"][i]),
            float(delta[i]), int(steps_used[i]), bool(converged[i]), score,
        ))
    return checks
