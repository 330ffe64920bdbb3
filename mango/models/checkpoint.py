"""Checkpoints: a folder with `config.json` and `model.safetensors`, on disk or on the Hub.

Loading reads JSON and tensors and nothing else, so a checkpoint can never execute code.
Frozen pretrained weights that install with a package (or come from the Hub) are not copied into
every checkpoint: the model names them (``external_state_prefixes``), saving leaves them out, and
loading fetches them again through ``mango.models.weights``, which checks they are the very
weights the checkpoint was trained with.

`CheckpointMixin` gives a model class `save_pretrained`, `from_pretrained` and `push_to_hub`. It
depends on the model only through that small protocol (a `config` with `save`/`load`, a
constructor ``cls(config, load_pretrained=...)``, ``external_state_prefixes()`` and
``load_external_weights()``), so this module imports no model code and the import graph of
`mango.models` has no cycle.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch

from mango.atomic import atomic_write_text, replace_file

from .card import model_card
from .config import MangoConfig
from .errors import CheckpointError, CheckpointNotFoundError, HubOfflineError, TaskMismatchError
from .hub import fetch_hub_file, hub_endpoint, push_unavailable_reason

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="CheckpointMixin")


def write_metadata_entry(folder: str | os.PathLike[str], key: str, value: Any) -> Path:
    """Set ``metadata[key]`` in a local checkpoint's config.json, for a measurement made after training
    (the app's sampling temperature, the score on real photos).

    Only that entry changes: the file is edited as JSON, not re-saved from a loaded config (which would
    also write every field the file leaves at its default), and replaced in one step; the weights are
    not touched."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointNotFoundError(f"{str(folder)!r} is not a local checkpoint folder: it has no {CONFIG_NAME}")
    config = json.loads(path.read_text())
    config.setdefault("metadata", {})[key] = value
    atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def resolve_checkpoint(path_or_repo_id: str | os.PathLike[str], revision: str | None = None) -> Path:
    """The local folder holding config.json and model.safetensors of a path or Hub repo id."""
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        if revision is not None:
            raise CheckpointError(f"revision={revision!r} given for a local folder {str(path)!r}")
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise CheckpointNotFoundError(f"checkpoint folder {str(path)!r} has no {name}")
        return path
    text = str(path_or_repo_id)
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") != 1
    if looks_like_path:
        raise CheckpointNotFoundError(f"no checkpoint folder at {text!r} (and it is not a Hub repo id 'owner/name')")
    try:
        config_file = fetch_hub_file(text, CONFIG_NAME, revision, what="MANGO checkpoint config")
        fetch_hub_file(text, WEIGHTS_NAME, revision, what="MANGO checkpoint weights")
    except CheckpointError as err:  # "owner/name" may also be a mistyped local path: say both
        raise type(err)(f"no local folder {text!r}, so it was read as a Hub repo id: {err}") from err
    return config_file.parent


def load_config(folder: Path) -> MangoConfig:
    try:
        return MangoConfig.load(folder / CONFIG_NAME)
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f"checkpoint folder {str(folder)!r} has no {CONFIG_NAME}") from err


def _is_external(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key.startswith(prefix) for prefix in prefixes)


def saved_state(model: Any) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores: the state dict without the external frozen weights."""
    prefixes = tuple(model.external_state_prefixes())
    state, seen = {}, set()
    for key, value in model.state_dict().items():
        if _is_external(key, prefixes):
            continue
        tensor = value.detach().cpu().contiguous()
        if tensor.data_ptr() in seen:  # tied tensors: safetensors refuses shared storage
            tensor = tensor.clone()
        seen.add(tensor.data_ptr())
        state[key] = tensor
    return state


class CheckpointMixin:
    """`save_pretrained` / `from_pretrained` / `push_to_hub` for a model with a `config`."""

    config: MangoConfig

    def external_state_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of frozen pretrained weights that are fetched, not stored."""
        return ()

    def load_external_weights(self) -> None:
        """Fetch the weights named by `external_state_prefixes` (nothing by default)."""

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write `path/model.safetensors` and `path/config.json` (no pickles). Each file is written
        under a temporary name and renamed into place, the weights first: saving over a checkpoint
        that fails part way leaves the old pair (or new weights beside the old config), never a
        half-written file or a new config beside the old weights."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        metadata = {"format": "pt", "mango_format_version": str(self.config.format_version)}
        replace_file(folder / WEIGHTS_NAME, lambda part: save_file(saved_state(self), str(part), metadata=metadata))
        self.config.save(folder / CONFIG_NAME)
        return folder

    @classmethod
    def from_pretrained(
        cls: type[M],
        path_or_repo_id: str | os.PathLike[str],
        revision: str | None = None,
        expected_task: str | None = None,
        device: str | torch.device = "cpu",
    ) -> M:
        """Load from a local folder or a Hub repo id ("owner/name", revision pinnable), cache first;
        returns the model in eval mode. Raises CheckpointNotFoundError, TaskMismatchError,
        ConfigVersionError, HubOfflineError, WeightsNotFoundError (within about a second) with
        messages naming the file, task, version, repo or weights."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = resolve_checkpoint(path_or_repo_id, revision)
        config = load_config(folder)
        if expected_task is not None and config.task != expected_task:
            raise TaskMismatchError(
                f"checkpoint {str(path_or_repo_id)!r} is a {config.task!r} model, expected {expected_task!r}"
            )
        model = cls(config, load_pretrained=False)  # type: ignore[call-arg]
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointNotFoundError(f"checkpoint folder {str(folder)!r} has no {WEIGHTS_NAME}")
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{str(weights)!r} is not a readable safetensors file ({err})") from err
        prefixes = tuple(model.external_state_prefixes())
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)  # type: ignore[attr-defined]
        except RuntimeError as err:  # shape mismatch
            raise CheckpointError(f"{str(weights)!r} does not match {CONFIG_NAME}: {err}") from err
        missing = sorted(k for k in missing if not _is_external(k, prefixes))
        unexpected = sorted(unexpected)
        if missing or unexpected:
            raise CheckpointError(
                f"{str(weights)!r} does not match {CONFIG_NAME}: missing {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        model.load_external_weights()
        return model.to(device).eval()  # type: ignore[attr-defined]

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    revision: str | None = None, commit_message: str = "Upload MANGO checkpoint") -> str:
        """Create the model repo if needed and upload config.json, model.safetensors and a model card
        (README.md, `mango.models.card`); returns the commit URL."""
        from huggingface_hub import HfApi

        reason = push_unavailable_reason(repo_id, token)
        if reason is not None:
            raise HubOfflineError(f"cannot push to Hub repo {repo_id!r}: {reason}")
        api = HfApi(endpoint=hub_endpoint(), token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            (Path(tmp) / "README.md").write_text(model_card(self.config, repo_id), encoding="utf-8")
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)
        return str(getattr(info, "commit_url", info))


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "CheckpointMixin", "load_config", "resolve_checkpoint", "saved_state"]
