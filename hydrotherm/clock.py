"""One clock object shared by the controller and the simulator.

Everything that reasons about time (dead-man timers, retransmission, thermal steps,
safety windows) asks a clock instead of calling ``time`` directly.  That is what lets
a four-hour scenario run in seconds in-process (``SimClock``), the same code run in
real time against a pty (``RealClock``), and the demo run N times faster
(``ScaledClock``).
"""

from __future__ import annotations

import threading
import time
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
