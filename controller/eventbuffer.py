"""Events the log could not write yet: kept in order in memory, written when it can.

Why: a disk fills, an SD card is remounted read-only, a sector fails.  A trip that is not
on record did not happen for whoever reads the log later, so a failed write must neither
vanish in silence (what happened before issue 9) nor stop the controller: heating is
governed by the supervisor and the board, never by the disk.  So a failed write is not an
exception for the caller.  The row waits here, ``writable`` turns false (the controller
raises the alarm ``event_log_unwritable`` from it), and while anything waits every new
row joins the back of the queue, so the log's order stays the order things happened.
The queue is retried on every new row, on every history sample (once a second) and by
``retry`` at most every ``retry_s``; rows keep the time they happened, not the time they
reached the disk.

Bounded: at most ``max_rows`` rows wait.  When one more arrives, the oldest waiting row
that is not a trip (``trip`` or ``board_fault``) is dropped, and one ``events_dropped`` row,
in the place of the first row dropped, says how many, of which kinds and over what time,
so the log shows where it has a gap and how large.  Trips are never dropped (they latch
until a person resets them, so only a handful can happen however long the disk is full),
which may take the queue past ``max_rows`` by those few rows.

History samples are not queued: a lost 1 s sample harms nobody and the minute aggregate
survives.  A failed sample counts in ``samples_lost`` and keeps ``writable`` false; a
sample that is written is the sign that the disk takes writes again, so it also retries
the waiting events.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .eventlog import EventLog

#: Kinds never dropped from a full queue.
PROTECTED_KINDS = frozenset({"trip", "board_fault"})

#: Events waiting at most (a busy session logs a few hundred an hour; this is hours of
#: events at a few hundred bytes each, well under a megabyte of memory).
DEFAULT_MAX_ROWS = 2000

#: Waiting rows are retried at least this often (in the caller's clock) while nothing new
#: arrives.  Each try is one INSERT that fails at once on a full or read-only disk.
RETRY_S = 1.0

#: What a failed write raises: SQLite's errors (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR,
#: a database locked for longer than the busy timeout) and the OS's.
LOG_ERRORS = (sqlite3.Error, OSError)


@dataclass
class _Row:
    kind: str
    time: float
    cushion: int | None
    actor: str | None
    reason: str | None
    detail: dict[str, Any] | None


@dataclass
class _Gap:
    """Rows dropped from a full queue, written as one ``events_dropped`` row."""

    first: float
    last: float
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, row: _Row) -> None:
        self.count += 1
        self.first = min(self.first, row.time)
        self.last = max(self.last, row.time)
        self.kinds[row.kind] = self.kinds.get(row.kind, 0) + 1


class EventBuffer:
    """Writes events to ``log`` now, or as soon as it can, in order.  Thread-safe."""

    def __init__(self, log: EventLog, max_rows: int = DEFAULT_MAX_ROWS,
                 retry_s: float = RETRY_S) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.log = log
        self.max_rows = max_rows
        self.retry_s = retry_s
        self._queue: deque[_Row | _Gap] = deque()
        self._rows = 0  # _Row entries in the queue (gaps not counted)
        self._lock = threading.RLock()
        self._next_retry = float("-inf")
        #: the last write's error, "" once a write has succeeded with nothing waiting
        self.error = ""
        self.dropped = 0  # rows dropped from a full queue, in all
        self.written_late = 0  # rows written from the queue, in all
        self.samples_lost = 0  # history samples not written, in all
        self.failures = 0  # failed writes, in all

    # --- state -----------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Nothing waits and the last write succeeded."""
        with self._lock:
            return not self._queue and not self.error

    @property
    def queued(self) -> int:
        with self._lock:
            return self._rows

    def status(self) -> dict[str, Any]:
        """JSON-ready, for the controller's snapshot."""
        with self._lock:
            return {"writable": not self._queue and not self.error, "queued": self._rows,
                    "dropped": self.dropped, "samples_lost": self.samples_lost,
                    "error": self.error}

    def describe(self) -> str:
        """One sentence for the alarm's detail."""
        with self._lock:
            text = f"the event log cannot be written ({self.error or 'unknown error'})"
            if self._rows:
                text += f"; {self._rows} event(s) wait in memory"
            if self.dropped:
                text += f"; {self.dropped} dropped because the queue was full"
            return text

    # --- writing ---------------------------------------------------------------------------

    def record(self, kind: str, time: float, cushion: int | None = None,
               actor: str | None = None, reason: str | None = None,
               detail: dict[str, Any] | None = None) -> int | None:
        """Write one event, after every event still waiting.  Returns its id when it is
        in the log now, None when it waits.  A malformed event (unknown kind, bad time)
        raises as ``EventLog.record`` does and is not queued."""
        self.log.check_event(kind, time, cushion, detail)
        row = _Row(kind, float(time), cushion, actor, reason, detail)
        with self._lock:
            self._append(row)
            return self._flush()

    def record_sample(self, time: float, cushion: int, water_c: float | None,
                      setpoint_c: float | None, output: float | None) -> bool:
        """Store one history sample now or never (see the module docstring)."""
        with self._lock:
            try:
                self.log.record_sample(time, cushion, water_c, setpoint_c, output)
            except LOG_ERRORS as exc:
                self.samples_lost += 1
                self._failed(exc)
                return False
            if self._queue:
                self._flush()
            else:
                self.error = ""
            return True

    def retry(self, now: float) -> None:
        """Try the waiting rows again, at most every ``retry_s`` of ``now``'s clock."""
        with self._lock:
            if self._queue and now >= self._next_retry:
                self._next_retry = now + self.retry_s
                self._flush()

    def close(self) -> list[dict[str, Any]]:
        """One last try; returns the rows that still could not be written (for the
        caller to put somewhere a person will see them) and forgets them."""
        with self._lock:
            self._flush()
            left = [_as_dict(item) for item in self._queue]
            self._queue.clear()
            self._rows = 0
            return left

    # --- internals -------------------------------------------------------------------------

    def _append(self, row: _Row) -> None:
        self._queue.append(row)
        self._rows += 1
        while self._rows > self.max_rows and self._drop_oldest():
            pass

    def _drop_oldest(self) -> bool:
        """Drop the oldest droppable row into the gap before it (or a new gap in its
        place).  False when only trips are left."""
        gap: _Gap | None = None
        for i, item in enumerate(self._queue):
            if isinstance(item, _Gap):
                gap = item
                continue
            if item.kind in PROTECTED_KINDS:
                continue
            del self._queue[i]
            if gap is None:
                gap = _Gap(item.time, item.time)
                self._queue.insert(i, gap)
            gap.add(item)
            self._rows -= 1
            self.dropped += 1
            return True
        return False

    def _flush(self) -> int | None:
        """Write waiting rows, oldest first, until one fails.  Returns the id of the last
        row written if the queue is now empty (so the caller's own row is in the log)."""
        last_id: int | None = None
        while self._queue:
            item = self._queue[0]
            try:
                if isinstance(item, _Gap):
                    last_id = self.log.record(
                        "events_dropped", item.first,
                        reason=f"{item.count} event{'s' if item.count != 1 else ''} "
                               "dropped: the event log could not be written and the queue "
                               "in memory was full",
                        detail={"count": item.count, "first": item.first, "last": item.last,
                                "kinds": dict(item.kinds)})
                else:
                    last_id = self.log.record(item.kind, item.time, cushion=item.cushion,
                                              actor=item.actor, reason=item.reason,
                                              detail=item.detail)
            except LOG_ERRORS as exc:
                self._failed(exc)
                return None
            self._queue.popleft()
            if isinstance(item, _Row):
                self._rows -= 1
                if self.error:
                    self.written_late += 1
        self.error = ""
        return last_id

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.error = f"{type(exc).__name__}: {exc}"


def _as_dict(item: _Row | _Gap) -> dict[str, Any]:
    if isinstance(item, _Gap):
        return {"kind": "events_dropped", "time": item.first, "count": item.count,
                "kinds": dict(item.kinds)}
    return {"kind": item.kind, "time": item.time, "cushion": item.cushion,
            "actor": item.actor, "reason": item.reason, "detail": item.detail}
