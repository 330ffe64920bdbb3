"""When a handler's result is on its way to the page.

A handler returns its result, and gradio then postprocesses it (images saved, figures serialised)
before the queue sends it, which takes longer the busier the server. A result that a handler let go as
still current can therefore be sent after the clear of an upload told meanwhile, and land beside the
cleared views. `Blocks` calls back each handler that asked (`on_landed`) once its result is postprocessed,
in the same step of the event loop that hands it to the queue: a clear that waits for those callbacks
(`app.sessions.Replacements.replace`) is sent after the result.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any, Callable

import gradio as gr

log = logging.getLogger("mango.app")


class _Callbacks:
    """One event's callbacks. Closed once its result is on its way: a handler still running after that
    (its event cancelled: a thread cannot be stopped) has no result on its way, and nothing to wait for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] | None = []

    def add(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if self._callbacks is None:
                return False
            self._callbacks.append(callback)
            return True

    def close(self) -> list[Callable[[], None]]:
        with self._lock:
            callbacks, self._callbacks = self._callbacks or [], None
            return callbacks


_CALLBACKS: contextvars.ContextVar[_Callbacks | None] = contextvars.ContextVar("landing", default=None)


def on_landed(callback: Callable[[], None]) -> bool:
    """Have ``callback`` called once this event's result is on its way to the page (or failed on the way).
    False, and nothing kept, outside an event of `Blocks` (a direct call's result is already where it goes)
    or after its result went (a cancelled event's handler, still running)."""
    callbacks = _CALLBACKS.get()
    return callbacks is not None and callbacks.add(callback)


class Blocks(gr.Blocks):
    """gr.Blocks that calls each event's `on_landed` callbacks after gradio has postprocessed its result.
    Nothing awaits between that and the queue's sending it (gradio's ``process_events``), so nothing the
    callbacks let go can be sent first. Handlers run in a worker thread on a copy of this context: what
    they add to is this event's."""

    async def process_api(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        callbacks = _Callbacks()
        token = _CALLBACKS.set(callbacks)
        try:
            return await super().process_api(*args, **kwargs)
        finally:
            _CALLBACKS.reset(token)
            for callback in callbacks.close():
                try:
                    callback()
                except Exception:  # a bug: the result still goes out
                    log.exception("a landing callback failed")
