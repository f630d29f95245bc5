"""One clock object shared by the controller and the simulator.

Everything that reasons about time (dead-man timers, retransmission, thermal steps,
safety windows) asks a clock instead of calling ``time`` directly.  That is what lets
a four-hour scenario run in seconds in-process (``SimClock``), the same code run in
real time against a pty (``RealClock``), and the demo run N times faster
(``ScaledClock``, or ``PacedClock``, which also waits for a thread that falls behind).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds, and a way to wait for them to pass."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock monotonic time."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Real time multiplied by ``speed``: the demo's ``--speed N``.

    ``sleep`` waits ``seconds / speed`` of wall time so loops written in simulated
    seconds keep their simulated cadence.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._wall0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


class SimClock:
    """A clock that only moves when told to: the in-process simulation's time.

    ``sleep`` advances the clock instead of waiting, so code that sleeps between
    polls still works when it is the only thing driving time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)


class PacedClock:
    """The demo's ``--speed N`` clock that waits for the threads living on it.

    A ``ScaledClock`` runs on whatever the machine does: when a busy machine leaves the
    simulator's thread unscheduled for 200 ms, 12 simulated seconds pass at ×60 in which
    the simulated board sent nothing, and the controller trips on "no readings" — a trip
    caused by the operating system, not by the table.  This clock runs ``speed`` times
    faster than wall time *but never more than* ``lead_s`` simulated seconds ahead of the
    last heartbeat (``beat``) of any thread that has joined it (the simulator, each
    controller loop): when one falls behind, simulated time holds until it catches up,
    so every limit is judged in simulated time that every participant really lived.

    A real fault must still trip, so a participant silent for more than ``patience_s``
    of *wall* time is taken as genuinely stalled and no longer holds the clock (its
    rules, e.g. ``control_stall``, then trip as usual); its next ``beat`` makes it a
    participant again.  A dead link holds nothing: its loop still beats.

    ``behind_s`` says how far simulated time has fallen behind ``speed`` × wall time.
    ``wall`` is injectable for tests.
    """

    def __init__(self, speed: float, lead_s: float, patience_s: float = 2.0,
                 wall: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0 or lead_s <= 0 or patience_s <= 0:
            raise ValueError("speed, lead_s and patience_s must be positive")
        self.speed = speed
        self.lead_s = lead_s
        self.patience_s = patience_s
        self._wall = wall
        self._lock = threading.Lock()
        self._wall_start = self._wall0 = wall()
        self._sim0 = 0.0
        self._last = 0.0
        self._beats: dict[str, tuple[float, float]] = {}  # name -> (sim t, wall t)
        self.holds = 0  # how many times simulated time was held back
        self._holding = False

    def now(self) -> float:
        with self._lock:
            wall = self._wall()
            t = self._sim0 + (wall - self._wall0) * self.speed
            floor = min((sim + self.lead_s for sim, w in self._beats.values()
                         if wall - w <= self.patience_s), default=t)
            held = floor < t
            if held:
                t = max(floor, self._last)
                self._sim0, self._wall0 = t, wall  # resume from here, never jump ahead
                self.holds += not self._holding
            self._holding = held
            t = max(t, self._last)
            self._last = t
            return t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def beat(self, name: str) -> None:
        """``name`` (a thread's loop) has caught up with now; joins it on first call."""
        t = self.now()
        with self._lock:
            self._beats[name] = (t, self._wall())

    def leave(self, name: str) -> None:
        """``name`` stops: it no longer holds the clock."""
        with self._lock:
            self._beats.pop(name, None)

    @property
    def behind_s(self) -> float:
        """Simulated seconds lost to holds: ``speed`` × wall time elapsed − ``now()``."""
        return max(0.0, (self._wall() - self._wall_start) * self.speed - self.now())


def heartbeat(clock: Clock, name: str) -> Callable[[], None]:
    """A function a loop calls once per iteration so a ``PacedClock`` waits for it
    (a no-op on every other clock)."""
    beat = getattr(clock, "beat", None)
    if beat is None:
        return lambda: None
    return lambda: beat(name)


def leave(clock: Clock, name: str) -> None:
    """The loop ``name`` stopped: it no longer holds a ``PacedClock``."""
    fn = getattr(clock, "leave", None)
    if fn is not None:
        fn(name)
