"""What each browser session did to its inputs, kept on the server so that a result computed on inputs
the user has since replaced never lands beside the new ones (see `app.events.MangoApp._unless_replaced`).

Gradio sends each event with the values its inputs had when it fired, and runs it when the queue gets to
it; on a busy Space that is seconds later, after uploads and edits the page has already shown.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from .inputs import is_missing

log = logging.getLogger("mango.app")


class Replacements:
    """What each browser session did to its inputs by hand: how many times it replaced them, by kind
    ("inputs": an upload or removal, "plot": a plot edit), and what each tab's slots hold since (as its
    last upload, removal, plot edit, example or setting switch left them). Sessions beyond
    ``sessions`` are forgotten, oldest first."""

    def __init__(self, sessions: int = 4096, lag: float = 2.0, upload_wait: float = 15.0, land_wait: float = 10.0):
        self._counts: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._held: dict[str, dict[str, dict[str, str | None]]] = {}  # session -> tab -> slot -> value
        self._known: dict[str, dict[str, dict[str, set[str]]]] = {}  # session -> tab -> slot -> every value held
        self._refused: dict[str, dict[str, dict[str, str | None]]] = {}  # session -> tab -> a press's inputs
        self._filled: dict[str, dict[str, dict[str, str | None]]] = {}  # session -> tab -> the last example's
        self._filled_at: dict[str, dict[str, float]] = {}  # session -> tab -> when the last example's came
        self._clicked: dict[str, dict[str, tuple[float, int]]] = {}  # session -> tab -> an example's click (when,
        # and how many uploads and removals the session had made by then)
        self._landing: dict[str, int] = {}  # session -> results let go (`lands`) and not yet on their way
        self._clearing: dict[str, int] = {}  # session -> clears told (`replace`) and not yet on their way
        self._sessions = sessions
        self.lag = lag
        self.upload_wait = upload_wait
        self.land_wait = land_wait
        self._lock = threading.Lock()
        self._told = threading.Condition(self._lock)  # notified on each hold, and each result on its way

    def bump(self, session: str | None, kind: str) -> None:
        if session is None:
            return
        with self._lock:
            self._bump(session, kind)

    def _bump(self, session: str, kind: str) -> None:
        counts = self._seen(session)
        counts[kind] = counts.get(kind, 0) + 1

    def count(self, session: str | None, kinds: tuple[str, ...]) -> int:
        with self._lock:
            return self._count(session, kinds)

    def _count(self, session: str | None, kinds: tuple[str, ...]) -> int:
        counts = self._counts.get(session or "", {})
        return sum(counts.get(kind, 0) for kind in kinds)

    def lands(self, session: str | None, kinds: tuple[str, ...], before: int, tab: str | None = None,
              slots: dict[str, Any] | None = None, on_landed: Callable[[Callable[[], None]], bool] | None = None) -> bool:
        """Whether a result computed since the session had made ``before`` replacements of ``kinds`` (of
        ``tab``'s ``slots``, when it read them) may land: none came since, and the slots still hold them.
        If so, it is counted as landing until ``on_landed`` (`app.landing.on_landed`) calls back, when it is
        on its way to the page: the session's next replacement holds its clear back until then (`replace`).
        Sent first, the clear landed before the result, which then sat beside the cleared views. The other
        way round, a result computed after a replacement waits, at most ``land_wait``, for its clear to be on
        its way: a press woken by the upload it waited for (`pressed`) was sent first, and wiped."""
        with self._told:
            if session is not None and not self._told.wait_for(
                    lambda: not self._clearing.get(session) or self._count(session, kinds) != before, self.land_wait):
                log.warning("an upload's or edit's clear was not on its way after %.0f s; a result goes first",
                            self.land_wait)
            if session is not None and self._count(session, kinds) != before:
                return False
            if tab is not None and not self._holds(session, tab, slots or {}):
                return False
            if session is not None and on_landed is not None and on_landed(functools.partial(self._landed, session)):
                self._landing[session] = self._landing.get(session, 0) + 1
            return True

    def _landed(self, session: str, counts: dict[str, int] | None = None) -> None:
        """A result (or, with ``counts`` `_clearing`, a clear) of the session is on its way."""
        with self._told:
            counts = self._landing if counts is None else counts
            left = counts.pop(session, 0) - 1
            if left > 0:
                counts[session] = left
            self._told.notify_all()

    def hold(self, session: str | None, tab: str, **slots: Any) -> None:
        """What these slots of ``tab`` hold now: a file as gradio hands it to a handler (a path in its
        upload cache, the same for every event of one upload), or the plot's text."""
        if session is None:
            return
        with self._lock:
            self._hold(session, tab, slots)

    def _hold(self, session: str, tab: str, slots: dict[str, Any]) -> None:
        self._seen(session)
        held = self._held.setdefault(session, {}).setdefault(tab, {})
        held.update(_slot_values(slots))
        known = self._known.setdefault(session, {}).setdefault(tab, {})
        for slot, value in held.items():
            seen = known.setdefault(slot, set())
            if value is not None and len(seen) < _KNOWN_PER_SLOT:
                seen.add(value)
        self._refused.get(session, {}).pop(tab, None)
        self._told.notify_all()

    def opened(self, session: str | None, tabs: tuple[str, ...]) -> None:
        """A new page: these tabs' slots are empty, except those an event of the page has told since. The
        page's load event can reach a busy server after its first uploads, and emptied the slots they had
        filled: a press of those files then waited for nothing, or its result was dropped as stale."""
        if session is None:
            return
        with self._lock:
            for tab in tabs:
                if tab not in self._held.get(session, {}):
                    self._hold(session, tab, {"a": None, "b": None})

    def replace(self, session: str | None, tab: str, kind: str,
                on_landed: Callable[[Callable[[], None]], bool] | None = None, **slots: Any) -> bool:
        """An upload, removal or plot edit (``kind``: "inputs" or "plot") that left these values in ``tab``'s
        slots: counted, then held, in one step; False, and nothing done, when the session had already told
        these very values: the rgb's upload event had read the depth uploaded just after it, or an example
        had told its plot, and the event's clear would wipe a prediction of those very values. Counted
        first: a press waiting for the hold (`pressed`) then reads the new count as its baseline, and its
        result is not taken for stale. Then waits, at most ``land_wait``, for the session's results already let
        go (`lands`) to be on their way: the caller's clear is sent after them, and clears them. Its clear is
        counted as on its way only once ``on_landed`` (`app.landing.on_landed`) calls back: results computed
        after it wait for that (`lands`)."""
        with self._lock:
            if self._already_told(session, tab, slots):
                return False
            if session is not None:
                self._bump(session, kind)
                if on_landed is not None and on_landed(functools.partial(self._landed, session, self._clearing)):
                    self._clearing[session] = self._clearing.get(session, 0) + 1
                self._hold(session, tab, slots)
                if not self._told.wait_for(lambda: not self._landing.get(session), self.land_wait):
                    log.warning("results let go before an upload or edit were not on their way after %.0f s; "
                                "its clear goes first", self.land_wait)
            return True

    def fill(self, session: str | None, tab: str, **slots: Any) -> None:
        """`hold`, for an example (or a reset) that filled the slots: its own prediction is then told apart
        from one of an example clicked before it (`pressed`)."""
        self.hold(session, tab, **slots)
        if session is not None:
            with self._lock:
                self._filled.setdefault(session, {})[tab] = _slot_values(slots)
                self._filled_at.setdefault(session, {})[tab] = time.monotonic()
                self._told.notify_all()

    def example_clicked(self, session: str | None, tab: str) -> None:
        """An example of ``tab`` was clicked: its files reach the page, then the server (`fill`), moments later."""
        if session is None:
            return
        with self._lock:
            self._seen(session)
            self._clicked.setdefault(session, {})[tab] = (time.monotonic(), self._uploads(session))

    def empty_for_good(self, session: str | None, tab: str, **slots: Any) -> bool:
        """Whether a press that found slots of ``tab`` empty (those passed as None) was of the page as it is.
        A press right after an example click can leave before the example's files reach the page: it
        carries the slots as they were, empty, and an example's files then fill them (the example runs its
        own prediction). Waits for them at most ``lag`` after the click; an upload or removal since the
        click makes the press the user's own."""
        with self._told:
            clicked = self._clicked.get(session or "", {}).get(tab)
            if clicked is None or time.monotonic() - clicked[0] > self.lag or self._uploads(session) != clicked[1]:
                return True
            values = _slot_values(slots)
            left = clicked[0] + self.lag - time.monotonic()

            def settled() -> bool:
                return self._overtaken(session, tab, values) or self._carries_filled(session, tab, values)

            self._told.wait_for(settled, left)
            return not self._overtaken(session, tab, values)

    def _overtaken(self, session: str | None, tab: str, values: dict[str, str | None]) -> bool:
        """Whether an example clicked since the session's last upload or removal has told its files, and
        they are in the slots these ``values`` have empty (a plot erased since is empty again)."""
        if self._filled_since_click(session, tab) is None or self._carries_filled(session, tab, values):
            return False
        if self._uploads(session) != self._clicked[session or ""][tab][1]:
            return False
        held = self._held.get(session or "", {}).get(tab, {})
        return all(held.get(slot) is not None for slot, value in values.items() if value is None)

    def _carries_filled(self, session: str | None, tab: str, values: dict[str, str | None]) -> bool:
        """Whether these values hold a file (or plot) of the example clicked last, told since its click: a
        press of them left after the example's files reached the page, and a slot it has empty was emptied
        by hand."""
        filled = self._filled_since_click(session, tab) or {}
        return any(value is not None and value == filled.get(slot) for slot, value in values.items())

    def _filled_since_click(self, session: str | None, tab: str) -> dict[str, str | None] | None:
        """The files the example clicked last has told, or None before they came (or with no click)."""
        clicked = self._clicked.get(session or "", {}).get(tab)
        filled_at = self._filled_at.get(session or "", {}).get(tab)
        if clicked is None or filled_at is None or filled_at < clicked[0]:
            return None
        return self._filled.get(session or "", {}).get(tab, {})

    def holds(self, session: str | None, tab: str, **slots: Any) -> bool:
        """Whether ``tab``'s slots still hold these values, the inputs an event was sent with; an upload
        or edit since, even while the event waited in the queue, makes them others. A slot the session
        never told of (an API call) holds whatever it is asked about."""
        with self._lock:
            return self._holds(session, tab, slots)

    def _already_told(self, session: str | None, tab: str, slots: dict[str, Any]) -> bool:
        """Whether the session has told these very values for these slots of ``tab`` (unlike `holds`, a slot
        never told is not taken to hold anything)."""
        held = self._held.get(session or "", {}).get(tab, {})
        return all(slot in held and held[slot] == _slot_value(value) for slot, value in slots.items())

    def _holds(self, session: str | None, tab: str, slots: dict[str, Any]) -> bool:
        held = self._held.get(session or "", {}).get(tab, {})
        return all(held[slot] == _slot_value(value) for slot, value in slots.items() if slot in held)

    def pressed(self, session: str | None, tab: str, by_example: bool = False, from_page: bool = False,
                **slots: Any) -> bool:
        """Whether a prediction's button may go ahead with these inputs: the slots hold them, now or within
        ``lag`` seconds, or the last press asked for the same ones and nothing was uploaded, edited or
        chosen since. What the server knows of the slots can lag behind the page: a button pressed right
        after an upload can reach the server before the upload's own event (the press carries the new
        file, the server still holds the old slot), so the press waits for it; and an upload's event can
        arrive after the example that followed it, so a second press of the same inputs is then believed,
        and no button stays dead. A press that carries a file (or plot) the server has never seen in its
        slot is ahead of that upload's event, which a busy page or server can hold back for seconds: it
        waits up to ``upload_wait`` for it, unless an event puts yet another one in that slot meanwhile
        (the press's are then replaced). An example's own prediction (``by_example``) refused counts as a
        first press only for the example the slots were last filled with: refused because another example was
        clicked since, it would make a press sent before that click believed, and its result would land
        beside the other example's inputs. A press with a slot empty that an example clicked just before
        it has filled since (`empty_for_good`) changes nothing, at once: the example runs its own. So does
        an example's own prediction that carries other inputs than the example told (`fill`): it reads the
        slots when it leaves, and a busy page lets the user remove or replace a file before that. It would
        predict the user's change, or fail on the emptied slot, unasked; the change's clear says to press.
        A press ``from_page`` of a session that has told nothing of ``tab`` yet came ahead of the page's load
        event (`opened`) and first uploads: it waits for either, at most ``lag``. Run at once, as an API call
        is, its result landed before the uploads' clears, which wiped it. Still untold then, it is believed,
        and its inputs held: the page shows them."""
        values = _slot_values(slots)
        with self._told:
            if from_page and session is not None and not self._told.wait_for(lambda: self._told_of(session, tab),
                                                                              self.lag):
                self._hold(session, tab, values)
                return True
            start = time.monotonic()
            if by_example and self._filled.get(session or "", {}).get(tab, values) != values:
                return False
            if not by_example and None in values.values() and self._overtaken(session, tab, values):
                return False
            ahead = self._ahead_of_upload(session, tab, values)
            before = dict(self._held.get(session or "", {}).get(tab, {}))
            while not self._holds(session, tab, slots):  # at once for a session that never told (an API call)
                if self._refused.get(session or "", {}).get(tab) == values:
                    break  # the second press: believed at once
                held = self._held.get(session or "", {}).get(tab, {})
                if any(held.get(slot) not in (before.get(slot), values[slot]) for slot in ahead):
                    ahead = []  # yet another file came in a slot it waits for: the press's are replaced
                left = start + (self.upload_wait if ahead else self.lag) - time.monotonic()
                if left <= 0:
                    if not by_example or self._filled.get(session or "", {}).get(tab) == values:
                        self._refused.setdefault(session or "", {})[tab] = values
                    return False
                self._told.wait(left)
            else:
                self._refused.get(session or "", {}).pop(tab, None)
                return True
        self.hold(session, tab, **slots)  # ends the refusal too
        return True

    def _told_of(self, session: str, tab: str) -> bool:
        return tab in self._held.get(session, {})

    def _ahead_of_upload(self, session: str | None, tab: str, values: dict[str, str | None]) -> list[str]:
        """The slots for which ``values`` holds a file the server has never seen there: its upload's event
        has not come yet."""
        held = self._held.get(session or "", {}).get(tab, {})
        known = self._known.get(session or "", {}).get(tab, {})
        return [slot for slot, value in values.items()
                if slot in held and value is not None and value != held[slot] and value not in known.get(slot, ())]

    def _uploads(self, session: str | None) -> int:
        """How many uploads and removals the session has made: a press after one is of the slots it left."""
        return self._counts.get(session or "", {}).get("inputs", 0)

    def _seen(self, session: str) -> dict[str, int]:
        """The session's counts, the session now the newest; the oldest forgotten beyond ``sessions``."""
        counts = self._counts.setdefault(session, {})
        self._counts.move_to_end(session)
        while len(self._counts) > self._sessions:
            old, _ = self._counts.popitem(last=False)
            self._held.pop(old, None)
            self._known.pop(old, None)
            self._refused.pop(old, None)
            self._filled.pop(old, None)
            self._filled_at.pop(old, None)
            self._clicked.pop(old, None)
            self._landing.pop(old, None)
            self._clearing.pop(old, None)
        return counts


_KNOWN_PER_SLOT = 256  # files remembered per slot and session; a stale press of one beyond them waits `upload_wait`


def _slot_value(value: Any) -> str | None:
    return None if is_missing(value) else str(value)


def _slot_values(slots: dict[str, Any]) -> dict[str, str | None]:
    return {slot: _slot_value(value) for slot, value in slots.items()}
