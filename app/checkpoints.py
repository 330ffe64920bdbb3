"""Which model each tab runs on: the bundled checkpoint, a Hub/local one chosen by the user, or,
when neither is there, a freshly initialised demo model that the UI labels as untrained.

Choosing a checkpoint (highest priority first):
1. the command line: ``python app.py --segmentation user/repo[@revision]`` (or a local folder);
2. an environment variable: ``MANGO_SEGMENTATION_CHECKPOINT=user/repo[@revision]``;
3. the bundled folder ``assets/checkpoints/<key>/`` (config.json + model.safetensors);
4. a freshly initialised demo-size model (outputs are meaningless; the UI says so).

A chosen checkpoint that cannot be loaded (offline, wrong task, missing file) falls back to the
next source, and the tab shows why in a warning. Loading never needs the network when the
bundled checkpoints are used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from mango.data import SYNTHROOMS_CLASSES
from mango.models import MangoConfig, MangoModel, ModalityConfig

log = logging.getLogger("mango.app")

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_ROOT = REPO_ROOT / "assets" / "checkpoints"

@dataclass(frozen=True)
class TaskSpec:
    """One model slot of the app."""

    key: str  # folder name under assets/checkpoints, CLI option name
    task: str  # MangoConfig.task
    title: str
    env_var: str
    fallback: dict[str, Any] = field(default_factory=dict)  # MangoConfig.preset overrides

    @property
    def bundled(self) -> Path:
        return CHECKPOINT_ROOT / self.key

    @property
    def cli_flag(self) -> str:
        return f"--{self.key}"


TASK_SPECS: dict[str, TaskSpec] = {
    spec.key: spec
    for spec in (
        TaskSpec(
            "segmentation", "segmentation", "RGB-D segmentation", "MANGO_SEGMENTATION_CHECKPOINT",
            {"class_names": SYNTHROOMS_CLASSES},
        ),
        TaskSpec(
            "translation-shade-texture", "translation", "shade + texture → rgb",
            "MANGO_TRANSLATION_SHADE_TEXTURE_CHECKPOINT",
            {"a": ModalityConfig("reshading", "image", 1), "b": ModalityConfig("edge_texture", "image", 1)},
        ),
        TaskSpec(
            "translation-depth-normal", "translation", "depth + normal → rgb",
            "MANGO_TRANSLATION_DEPTH_NORMAL_CHECKPOINT",
            {"a": ModalityConfig("depth_zbuffer", "image", 1), "b": ModalityConfig("normal", "image", 3)},
        ),
        TaskSpec("genre", "genre", "Movie genre", "MANGO_GENRE_CHECKPOINT"),
    )
}


@dataclass
class LoadedModel:
    """A model and what the UI says about it."""

    spec: TaskSpec
    model: MangoModel
    source: str  # "bundled", "chosen" or "untrained"
    location: str  # folder or repo id (and revision), or "freshly initialised"
    warnings: list[str] = field(default_factory=list)

    @property
    def config(self) -> MangoConfig:
        return self.model.config

    @property
    def trained(self) -> bool:
        return self.source != "untrained"

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.model.config.metadata)


def split_revision(source: str) -> tuple[str, str | None]:
    """"user/repo@rev" -> ("user/repo", "rev"); local paths and bare ids pass through."""
    if "@" in source and not Path(source).exists():
        repo, _, revision = source.rpartition("@")
        return repo, revision or None
    return source, None


def untrained_model(spec: TaskSpec, seed: int = 0) -> MangoModel:
    """A demo-size model with fixed random weights (seeded, so every start shows the same)."""
    config = MangoConfig.preset("demo", task=spec.task, **spec.fallback)
    config.metadata.update({"untrained": True, "training_data": "none (freshly initialised)"})
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return MangoModel(config).eval()
    finally:
        torch.random.set_rng_state(state)


def _shown(path: Path) -> str:
    """A path as the UI shows it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _has_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def load_task_model(spec: TaskSpec, chosen: str | None = None) -> LoadedModel:
    """The model for one slot, following the order in the module docstring."""
    warnings: list[str] = []
    if chosen:
        repo, revision = split_revision(chosen)
        try:
            model = MangoModel.from_pretrained(repo, revision=revision, expected_task=spec.task)
            where = repo + (f" @ {revision}" if revision else "")
            log.info("%s: loaded %s", spec.key, where)
            return LoadedModel(spec, model, "chosen", where)
        except Exception as err:  # any failure: say so in the UI and fall back
            message = f"Could not load the chosen checkpoint {chosen!r}: {str(err).rstrip('.')}. Using the next source instead."
            log.warning("%s: %s", spec.key, message)
            warnings.append(message)
    if _has_checkpoint(spec.bundled):
        try:
            model = MangoModel.from_pretrained(spec.bundled, expected_task=spec.task)
            return LoadedModel(spec, model, "bundled", _shown(spec.bundled), warnings)
        except Exception as err:
            message = f"The bundled checkpoint {_shown(spec.bundled)} could not be loaded: {str(err).rstrip('.')}."
            log.warning("%s: %s", spec.key, message)
            warnings.append(message)
    log.info("%s: no checkpoint, using a freshly initialised demo model", spec.key)
    return LoadedModel(spec, untrained_model(spec), "untrained", "freshly initialised (no checkpoint)", warnings)


def chosen_sources(cli: Mapping[str, str | None] | None = None, env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Per slot: the command-line choice, else the environment variable, else None."""
    env = os.environ if env is None else env
    cli = cli or {}
    return {key: cli.get(key) or env.get(spec.env_var) or None for key, spec in TASK_SPECS.items()}


def load_all(chosen: Mapping[str, str | None] | None = None) -> dict[str, LoadedModel]:
    chosen = chosen or {}
    return {key: load_task_model(spec, chosen.get(key)) for key, spec in TASK_SPECS.items()}
