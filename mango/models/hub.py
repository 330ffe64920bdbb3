"""Hugging Face Hub access, offline-first: the only module that downloads from the Hub (whether it
can be reached is `mango.hub_env`'s to say).

Why not `hf_hub_download` straight away: with no network it retries for ~25 s before failing,
and `HF_HUB_OFFLINE` is read once, when huggingface_hub is imported. So every Hub access here
first asks the local cache, then decides whether the Hub can be reached (the offline switch read
*now*, then a sub-second TCP probe of the endpoint), and fails at once with a message naming the
repo, the file and the cache folder when it cannot.
"""

from __future__ import annotations

from pathlib import Path

from mango.hub_env import (  # noqa: F401  (re-exported: the Hub environment is part of this module's API)
    PROBE_TIMEOUT_S,
    hub_cache_dir,
    hub_endpoint,
    hub_offline_switch,
    hub_reachable,
    hub_unavailable_reason,
    push_unavailable_reason,
)

from .errors import CheckpointNotFoundError, HubOfflineError


def fetch_hub_file(repo_id: str, filename: str, revision: str | None = None, what: str = "file",
                   cached_only: bool = False) -> Path:
    """Path of `filename` from a Hub repo: from the cache when there, else downloaded (never, with
    ``cached_only``: `FileNotFoundError`).

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
        if cached_only:
            raise FileNotFoundError(f"{filename!r} of {where} is not in the Hugging Face cache ({cache})") from None
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
    except LocalEntryNotFoundError as err:  # a subclass of EntryNotFoundError: the download failed
        raise _download_failed(f"{what} {filename!r} of Hub repo {where}", err) from err
    except EntryNotFoundError as err:
        raise CheckpointNotFoundError(f"Hub repo {where} has no {filename!r}; not a {what}") from err
    except Exception as err:  # the probe only opened a TCP connection: proxies, TLS, dropped requests
        raise _download_failed(f"{what} {filename!r} of Hub repo {where}", err) from err


def fetch_hub_snapshot(repo_id: str, files: tuple[str, ...], revision: str | None = None, what: str = "files",
                       cached_only: bool = False) -> Path:
    """Folder holding `files` of a Hub repo: from the cache when all are there, else downloaded (never,
    with ``cached_only``: `FileNotFoundError`).

    Fails within about a second, naming the repo and cache, when the Hub is unusable and the
    cache lacks any of the files.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    cache = hub_cache_dir()
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(files), cache_dir=cache,
                                        local_files_only=True))
        if all((folder / name).is_file() for name in files):
            return folder
    except (LocalEntryNotFoundError, FileNotFoundError):
        pass
    if cached_only:
        raise FileNotFoundError(f"{repo_id} is not (wholly) in the Hugging Face cache ({cache})")
    reason = hub_unavailable_reason()
    if reason is not None:
        raise HubOfflineError(
            f"cannot load {what} from Hub repo {repo_id}: not in the Hugging Face cache ({cache}) and {reason}."
        )
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(files), cache_dir=cache,
                                      endpoint=hub_endpoint()))
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise CheckpointNotFoundError(f"Hub repo {repo_id!r} (revision {revision!r}) not found") from err
    except Exception as err:
        raise _download_failed(f"{what} from Hub repo {repo_id}", err) from err


def _download_failed(what: str, err: Exception) -> HubOfflineError:
    """The endpoint answered the probe but the download itself failed: an offline-class error, so
    callers fall back to their next source instead of seeing an httpx traceback."""
    return HubOfflineError(f"cannot download {what} from {hub_endpoint()}: {type(err).__name__}: {err}")


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


__all__ = [
    "fetch_hub_file",
    "fetch_hub_snapshot",
    "hub_cache_dir",
    "hub_endpoint",
    "hub_offline_switch",
    "hub_reachable",
    "hub_unavailable_reason",
    "require_hub_file",
]
