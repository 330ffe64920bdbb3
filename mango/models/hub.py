"""Checkpoint IO and Hugging Face Hub access, offline-first.

A checkpoint is a folder holding `config.json` (a `MangoConfig` as JSON) and
`model.safetensors` (weights only). Loading reads JSON and tensors and nothing else, so a
checkpoint can never execute code.

Why not `hf_hub_download` straight away: with no network it retries for ~25 s before failing,
and `HF_HUB_OFFLINE` is read once, when huggingface_hub is imported. So every Hub access here
first asks the local cache, then decides whether the Hub can be reached (the offline switch read
*now*, then a sub-second TCP probe of the endpoint), and fails at once with a message naming the
repo, the file and the cache folder when it cannot.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch

from .config import ConfigError, MangoConfig

if TYPE_CHECKING:
    from .model import MangoModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PROBE_TIMEOUT_S = 0.5


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message names the file or the repo."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No such folder, repo, revision, or a checkpoint without config.json / model.safetensors."""


class TaskMismatchError(CheckpointError, ValueError):
    """The checkpoint is for another task than the caller expected."""


class HubOfflineError(CheckpointError, ConnectionError):
    """The Hub cannot be reached (offline switch or no network) and the cache lacks the file."""


# ---------------------------------------------------------------------- Hub environment
_TRUE = {"1", "on", "yes", "true"}


def hub_offline_switch() -> bool:
    """HF_HUB_OFFLINE as it is set now (env), or as huggingface_hub read it at import."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """The Hub cache as the environment says now: HF_HUB_CACHE, else HF_HOME/hub, else default."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


_probe_cache: dict[str, tuple[float, bool]] = {}


def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can a TCP connection to the endpoint be opened within `timeout` seconds?

    DNS lookups cannot be given a timeout, so the probe runs in a daemon thread that is simply
    abandoned when it overruns. The answer is remembered for 30 s per endpoint.
    """
    endpoint = endpoint or hub_endpoint()
    now = time.monotonic()
    cached = _probe_cache.get(endpoint)
    if cached and now - cached[0] < 30.0:
        return cached[1]
    url = urlparse(endpoint)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    _probe_cache[endpoint] = (now, result[0])
    return result[0]


def hub_unavailable_reason() -> str | None:
    """Why the Hub cannot be used right now, or None when it can."""
    if hub_offline_switch():
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    endpoint = hub_endpoint()
    if not hub_reachable(endpoint):
        return f"{endpoint} cannot be reached (no network?)"
    return None


def fetch_hub_file(repo_id: str, filename: str, revision: str | None = None, what: str = "file") -> Path:
    """Path of `filename` from a Hub repo: from the cache when there, else downloaded.

    Fails within about a second, naming the repo, file and cache, when the Hub is unusable and
    the cache lacks the file.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = hub_cache_dir()
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache, local_files_only=True))
    except HFValidationError as err:
        raise CheckpointNotFoundError(f"{where!r} is neither a local folder nor a valid Hub repo id ({err})") from err
    except LocalEntryNotFoundError:
        pass
    reason = hub_unavailable_reason()
    if reason is not None:
        raise HubOfflineError(
            f"cannot load {what} {filename!r} of Hub repo {where}: it is not in the Hugging Face "
            f"cache ({cache}) and {reason}. Download it once with network, or pass a local folder."
        )
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache, endpoint=hub_endpoint()))
    except RepositoryNotFoundError as err:
        raise CheckpointNotFoundError(f"Hub repo {repo_id!r} not found (or private without a token)") from err
    except RevisionNotFoundError as err:
        raise CheckpointNotFoundError(f"Hub repo {repo_id!r} has no revision {revision!r}") from err
    except EntryNotFoundError as err:
        raise CheckpointNotFoundError(f"Hub repo {where} has no {filename!r}; not a {what}") from err


def require_hub_file(repo_id: str, filenames: str | tuple[str, ...], what: str) -> None:
    """Fail fast before a third-party loader (timm, open_clip) would retry for half a minute.

    Passes when any of `filenames` is cached or the Hub can be reached.
    """
    from huggingface_hub import try_to_load_from_cache

    names = (filenames,) if isinstance(filenames, str) else tuple(filenames)
    for name in names:
        if isinstance(try_to_load_from_cache(repo_id, name, cache_dir=hub_cache_dir()), str):
            return
    reason = hub_unavailable_reason()
    if reason is not None:
        raise HubOfflineError(
            f"pretrained {what} ({repo_id}: {' / '.join(names)}) is not in the Hugging Face cache "
            f"({hub_cache_dir()}) and {reason}. Train from scratch (set the pretrained field to "
            f"None) or fetch the weights once with network."
        )


# ---------------------------------------------------------------------- checkpoints
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
    config_file = fetch_hub_file(text, CONFIG_NAME, revision, what="MANGO checkpoint config")
    fetch_hub_file(text, WEIGHTS_NAME, revision, what="MANGO checkpoint weights")
    return config_file.parent


def save_checkpoint(model: "MangoModel", folder: str | os.PathLike[str]) -> Path:
    """Write config.json + model.safetensors into `folder` (created if needed)."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save(folder / CONFIG_NAME)
    metadata = {"format": "pt", "mango_format_version": str(model.config.format_version)}
    save_model(model, str(folder / WEIGHTS_NAME), metadata=metadata)
    return folder


def load_config(folder: Path) -> MangoConfig:
    try:
        return MangoConfig.load(folder / CONFIG_NAME)
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f"checkpoint folder {str(folder)!r} has no {CONFIG_NAME}") from err


def load_checkpoint(
    cls: type["MangoModel"],
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    expected_task: str | None = None,
    device: str | torch.device = "cpu",
) -> "MangoModel":
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    folder = resolve_checkpoint(path_or_repo_id, revision)
    config = load_config(folder)
    if expected_task is not None and config.task != expected_task:
        raise TaskMismatchError(
            f"checkpoint {str(path_or_repo_id)!r} is a {config.task!r} model, expected {expected_task!r}"
        )
    model = cls(config, load_pretrained=False)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointNotFoundError(f"checkpoint folder {str(folder)!r} has no {WEIGHTS_NAME}")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{str(weights)!r} is not a readable safetensors file ({err})") from err
    except RuntimeError as err:  # shape mismatch
        raise CheckpointError(f"{str(weights)!r} does not match {CONFIG_NAME}: {err}") from err
    missing, unexpected = sorted(missing), sorted(unexpected)
    if missing or unexpected:
        raise CheckpointError(
            f"{str(weights)!r} does not match {CONFIG_NAME}: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    return model.to(device).eval()


def push_checkpoint(
    model: "MangoModel",
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload MANGO checkpoint",
) -> str:
    """Create the repo if needed and upload config.json + model.safetensors; returns the commit URL."""
    from huggingface_hub import HfApi

    reason = hub_unavailable_reason()
    if reason is not None:
        raise HubOfflineError(f"cannot push to Hub repo {repo_id!r}: {reason}")
    api = HfApi(endpoint=hub_endpoint(), token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, tmp)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "HubOfflineError",
    "TaskMismatchError",
    "fetch_hub_file",
    "hub_cache_dir",
    "hub_offline_switch",
    "hub_reachable",
    "load_checkpoint",
    "push_checkpoint",
    "require_hub_file",
    "resolve_checkpoint",
    "save_checkpoint",
]
