"""How the app keeps CPU threads and resident memory bounded on a small machine (a free Space: 2 vCPUs).

- **Threads.** One torch thread per request (`MANGO_TORCH_THREADS` to change it). More threads
  than free cores makes torch's thread pool spin: measured on the 2-core machine with other work
  running, a prediction took 3.3 s with 2 threads and 0.024 s with 1.
- **The allocator.** gradio runs handlers on a pool of worker threads, and glibc's malloc gives
  busy threads arenas of their own (up to 8 per core) whose free memory is never handed back:
  memory freed after a heavy request stays resident. `limit_allocator` caps the arenas at 2, and
  `release_memory` runs `malloc_trim` after each heavy request (about 0.1 ms), which returns the
  free pages of every arena to the system. Serving large blocks from mmap instead was measured
  too: it made a contributions request about 40 % slower (fresh pages are faulted in on every
  allocation), so it is off by default (``mmap_threshold``).
- **The garbage collector.** After start-up some 665,000 Python objects (gradio, plotly, torch)
  are alive for good; a full collection walks them all and holds the GIL for about 0.5 s, stalling
  every request. `freeze_startup_objects` moves them out of the collector's sight (`gc.freeze`),
  and `release_memory` never forces a full collection: tensors are freed by reference counting.

Both are no-ops where glibc is not the C library (macOS, musl); the app then runs as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading

import torch

log = logging.getLogger("mango.app")

M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
ARENA_MAX = 2

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
_limited = False


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name or "libc.so.6")
            libc.mallopt  # noqa: B018  # glibc only
            libc.malloc_trim  # noqa: B018
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def limit_allocator(arena_max: int = ARENA_MAX, mmap_threshold: int | None = None) -> bool:
    """Cap malloc's arenas, and with ``mmap_threshold`` (bytes) serve larger blocks from mmap
    (once per process). True when applied.

    ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` in the environment win: then nothing is changed.
    """
    global _limited
    with _lock:
        if _limited:
            return True
        libc = _glibc()
        if libc is None:
            return False
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(M_ARENA_MAX, arena_max)
        if mmap_threshold is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        _limited = True
        return True


def release_memory() -> None:
    """Return the allocator's free pages to the system after a heavy request (~0.1 ms; no GC pause)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def freeze_startup_objects() -> None:
    """Collect once, then exempt every object alive now (the loaded app) from later collections."""
    gc.collect()
    gc.freeze()


def env_count(name: str, default: int) -> int:
    """A count of at least 1 set in the environment (threads, a queue lane's width, the sessions kept), or
    ``default`` when unset or empty. A typo stops the app at start with the variable's name and value, not
    int()'s bare "invalid literal"; 0 is refused too (a lane of 0 serves nothing)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdecimal() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1; got {raw!r}")
    return int(raw)


def set_torch_threads(threads: int | None = None) -> int:
    """One torch thread per request by default (``MANGO_TORCH_THREADS`` to change it)."""
    threads = threads or env_count("MANGO_TORCH_THREADS", 1)
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
