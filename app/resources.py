"""How the app keeps CPU threads and resident memory bounded on a small machine (a free Space: 2 vCPUs).

- **Threads.** One torch thread per request (`MANGO_TORCH_THREADS` to change it). More threads
  than free cores makes torch's thread pool spin: measured on the 2-core machine with other work
  running, a prediction took 3.3 s with 2 threads and 0.024 s with 1.
- **The allocator.** gradio runs handlers on a pool of worker threads, and glibc's malloc gives
  busy threads arenas of their own (up to 8 per core) that are never handed back: memory freed
  after a heavy request stays resident. `limit_allocator` caps the arenas at 2 and serves blocks
  above 1 MB (tensors, mostly) straight from mmap, so freeing them returns them to the system.
  `release_memory` runs after each heavy request: a garbage collection, then `malloc_trim` hands
  back what the heaps hold free.

Both are no-ops where glibc is not the C library (macOS, musl); the app then runs as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
from pathlib import Path

import torch

log = logging.getLogger("mango.app")

M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20
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


def limit_allocator(arena_max: int = ARENA_MAX, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Cap malloc's arenas and send large blocks to mmap (once per process). True when applied.

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
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        _limited = True
        return True


def release_memory() -> None:
    """Return freed memory to the system after a heavy request (cheap: a few milliseconds)."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def set_torch_threads(threads: int | None = None) -> int:
    """One torch thread per request by default (``MANGO_TORCH_THREADS`` to change it)."""
    threads = threads or int(os.environ.get("MANGO_TORCH_THREADS", "1"))
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def resident_mb(pid: int | str = "self") -> float:
    """Resident memory (VmRSS) of a process in MB, from /proc; NaN where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")
