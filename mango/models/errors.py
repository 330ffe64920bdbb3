"""The errors of loading models and weights; each message names the file, repo or variable to fix."""

from __future__ import annotations


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message names the file or the repo."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No such folder, repo, revision, or a checkpoint without config.json / model.safetensors."""


class TaskMismatchError(CheckpointError, ValueError):
    """The checkpoint is for another task than the caller expected."""


class HubOfflineError(CheckpointError, ConnectionError):
    """The Hub cannot be reached (offline switch or no network) and the cache lacks the file."""


class WeightsNotFoundError(CheckpointError, FileNotFoundError):
    """Pretrained weights that no source can provide; the message lists every way to get them."""
