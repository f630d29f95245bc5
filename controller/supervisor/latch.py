"""Latching: a trip stays until a person's reset clears it, and every change is an event.

The rules only *raise* trips (``Latches.trip``); whether a trip may clear is the rule's
own ``cause()``, judged by ``Supervisor.reset``.  Events are queued under the
supervisor's lock and delivered outside it (``flush``), so a listener that takes long or
calls back into the supervisor cannot deadlock it or see half-updated state.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .events import TABLE_WIDE, SupervisorEvent, Trip

#: Bound on the supervisor's own event log.
EVENT_LOG_LEN = 1000

#: A latch's key: (reason, cushion or None).
Key = tuple[str, int | None]


@dataclass
class Latch:
    trip: Trip
    reports_at_trip: int  # reports observed when it latched
    sensors: set[int] = field(default_factory=set)  # sensor indices involved (sensor trips)


def affects(key: Key, cushion: int) -> bool:
    """Whether the latched trip ``key`` switches ``cushion`` off (its own or table-wide)."""
    reason, c = key
    return c is None or c == cushion or reason in TABLE_WIDE


class Latches:
    """The latched trips (oldest first) and the event queue."""

    def __init__(self, lock: threading.RLock,
                 on_event: Callable[[SupervisorEvent], None] | None) -> None:
        self.latched: dict[Key, Latch] = {}
        self._lock = lock
        self._on_event = on_event
        self._pending: deque[SupervisorEvent] = deque()
        #: the supervisor's own log of its events, newest last (bounded)
        self.events: deque[SupervisorEvent] = deque(maxlen=EVENT_LOG_LEN)

    def __contains__(self, key: Key) -> bool:
        return key in self.latched

    def trip(self, reason: str, cushion: int | None, detail: str, now: float, reports: int,
             sensor: int | None = None, flags: int = 0) -> None:
        """Latch ``(reason, cushion)`` unless it already is (the first detail is kept);
        ``sensor`` adds a sensor to those the trip involves (its reset checks each).

        ``flags`` (board fault flags, ``board_fault``) accumulate: board flags that the
        latched trip has not seen yet are added to it, its detail gains this one, and a
        ``trip`` event says so again (a cut-out opening after a dead-man makes the trip one
        that needs a service person, and the record must show why)."""
        key = (reason, cushion)
        latch = self.latched.get(key)
        if latch is None:
            trip = Trip(reason, cushion, now, detail, flags)
            latch = Latch(trip, reports)
            self.latched[key] = latch
            self._emit_trip(trip, now)
        elif flags & ~latch.trip.flags:
            old = latch.trip
            trip = replace(old, flags=old.flags | flags, detail=f"{old.detail}; then {detail}")
            latch.trip = trip
            self._emit_trip(trip, now)
        if sensor is not None:
            latch.sensors.add(sensor)

    def add(self, trip: Trip, reports: int, now: float) -> None:
        """Latch a trip carried over from before a restart (``Supervisor.restore``)."""
        key = (trip.reason, trip.cushion)
        if key not in self.latched:
            self.latched[key] = Latch(trip, reports)
            self._emit_trip(trip, now)

    def _emit_trip(self, trip: Trip, now: float) -> None:
        ev = SupervisorEvent("trip", now, trip.cushion, trip.reason, None, trip.detail,
                             trip.flags, trip.service)
        self.events.append(ev)
        self._pending.append(ev)

    def emit(self, kind: str, now: float, cushion: int | None, reason: str,
             actor: str | None, detail: str) -> None:
        ev = SupervisorEvent(kind, now, cushion, reason, actor, detail)
        self.events.append(ev)
        self._pending.append(ev)

    def flush(self) -> None:
        """Deliver the queued events, outside the lock (call without holding it)."""
        if not self._pending:
            # nothing queued (the common case): no lock round trip.  An event another
            # thread queues meanwhile is delivered by that thread's own flush.
            return
        fn = self._on_event
        while True:
            with self._lock:
                if not self._pending:
                    return
                ev = self._pending.popleft()
            if fn is not None:
                fn(ev)
