"""Can the Hugging Face Hub be used now? The offline switch, the endpoint, the cache folder, a
sub-second reachability probe, and why a push could not work.

Kept apart from `mango.models.hub` and free of torch, so a command that only needs the answer
(`python -m app.publish` without network) gives it in about a second instead of after loading the
models' libraries.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 0.5


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


def push_unavailable_reason(repo_id: str, token: str | None = None) -> str | None:
    """Why a push to ``repo_id`` cannot work right now (a malformed id, no Hub, no token), or None."""
    from huggingface_hub import get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        return f"{repo_id!r} is not a Hub repo id 'owner/name' ({err})"
    if "/" not in repo_id:
        return f"{repo_id!r} is not a Hub repo id 'owner/name'"
    reason = hub_unavailable_reason()
    if reason is not None:
        return reason
    if token is None and get_token() is None:
        return "no Hugging Face token (run `hf auth login`, or set HF_TOKEN)"
    return None
