"""Local wall-clock time for the schedule, mapped onto the controller's clock.

The controller reasons in its own seconds (``hydrotherm.clock``: monotonic in production,
simulated in scenarios); a therapist's schedule is in local wall-clock time ("08:45 on
Monday").  A ``LocalTime`` converts both ways:

* ``SimulatedLocalTime``: a simulation's ``start_at`` is the local time at clock time 0
  (or at its creation); local time moves exactly with the clock, with no daylight-saving
  change (a scenario states its own wall clock).
* ``SystemLocalTime``: the machine's local time zone (or a named IANA zone).  Daylight
  saving is read as Python's ``zoneinfo`` does with ``fold=0``: a wall time that happens
  twice (the autumn change, 02:30 twice) means the *first* one; a wall time the clock skips
  (the spring change, 02:30 never happens) is read with the offset before the change, so
  it falls one hour later (03:30).  Clinic hours are far from the 01:00-03:00 changes of
  the usual zones, so in practice a ready time keeps its wall-clock meaning across the
  change: 08:45 is 08:45 the day after, whatever the offset.  Each decision converts the
  next ready time afresh, so a change between two mornings needs nothing special.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from hydrotherm.clock import Clock


class LocalTime(Protocol):
    def now(self) -> datetime:
        """Local wall-clock time now (naive)."""
        ...

    def clock_at(self, local: datetime) -> float:
        """The controller clock's reading at local wall-clock time ``local``."""
        ...

    def local_at(self, clock_s: float) -> datetime:
        """The local wall-clock time at the controller clock's reading ``clock_s``."""
        ...


class SimulatedLocalTime:
    """``start_at`` is the local time when ``clock`` reads ``clock0`` (default: now)."""

    def __init__(self, start_at: datetime, clock: Clock, clock0: float | None = None) -> None:
        self.start_at = start_at.replace(tzinfo=None)
        self.clock = clock
        self.clock0 = clock.now() if clock0 is None else clock0

    def now(self) -> datetime:
        return self.local_at(self.clock.now())

    def clock_at(self, local: datetime) -> float:
        return self.clock0 + (local - self.start_at).total_seconds()

    def local_at(self, clock_s: float) -> datetime:
        return self.start_at + timedelta(seconds=clock_s - self.clock0)


class SystemLocalTime:
    """The real local time (``zone``: an IANA name such as ``Europe/Berlin``; None: the
    system's own zone)."""

    def __init__(self, clock: Clock, zone: str | None = None) -> None:
        self.clock = clock
        self.tz = ZoneInfo(zone) if zone else None

    def _epoch(self, local: datetime) -> float:
        if self.tz is None:
            return local.replace(fold=0).timestamp()  # naive: the system zone, fold=0
        return local.replace(tzinfo=self.tz, fold=0).timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), self.tz).replace(tzinfo=None)

    def clock_at(self, local: datetime) -> float:
        return self.clock.now() + (self._epoch(local) - time.time())

    def local_at(self, clock_s: float) -> datetime:
        epoch = time.time() + (clock_s - self.clock.now())
        return datetime.fromtimestamp(epoch, self.tz).replace(tzinfo=None)
