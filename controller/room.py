"""The room temperature the control law, the warm-up estimate and the schedule use: the
board's room sensor where there is one, the configured estimate otherwise — and which.

Why its own piece: the room enters the holding power (``UA·(T_sp − T_room)``), the
warm-up prior (``α₀ = (P + UA·T_room)/C``) and the schedule's start time.  A clinic at
12 °C in January with the configured 21 °C makes the feed-forward 30 W short on a 3.5 W/K
cushion and the schedule's warm-up 20–30 % too short (issue 13: the late mornings of the
schedule benchmark were all cold rooms).  A 1.1 board measures the room (docs/protocol.md
§11); a 1.0 board cannot, and a room sensor can break: then the configured value is used,
and the estimate *says so* — a configured room is an assumption, never shown as a reading.

The reading is filtered by a first-order average (``tau_s``, 5 min): the room changes over
hours, the sensor's noise and a draught from an opened door should not move the
feed-forward.  The filter starts at the first valid reading (not at the configured value,
which may be 9 K off).  A broken, implausible or stale room sensor falls back at once; when
it reads again the filter starts afresh from its reading.

The safety supervisor does not use the room at all (it judges against the whole plausible
range, ``controller/supervisor/envelope.py``): a wrong or broken room sensor can make the
control worse, never the protection weaker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from firmware_bridge.thermistor import SensorReading, SensorStatus

#: a room reading outside this is not a room (the range ``control.room_estimate_c`` takes)
ROOM_VALID_C = (-10.0, 45.0)
#: the filter's time constant
FILTER_TAU_S = 300.0
#: no valid room reading for this long: the measured value is stale, fall back
STALE_S = 30.0

MEASURED = "measured"
CONFIGURED = "configured"


def room_reading(room: SensorReading | None) -> tuple[float | None, str]:
    """One report's room sensor as (°C, "") when it is a valid room temperature, else
    (None, why not).  ``room`` None: the board has no room sensor (protocol 1.0)."""
    if room is None:
        return None, "no room sensor: a protocol 1.0 board"
    c = room.celsius
    if room.status is not SensorStatus.OK or c is None:
        return None, f"room sensor {room.status.value}"
    if not (math.isfinite(c) and ROOM_VALID_C[0] <= c <= ROOM_VALID_C[1]):
        return None, f"room sensor reads {c:.1f} °C, not a room temperature"
    return c, ""


@dataclass(frozen=True, slots=True)
class RoomEstimate:
    """The room temperature in use and where it came from.

    ``source``: ``"measured"`` (the board's room sensor, filtered) or ``"configured"``
    (``control.room_estimate_c``); ``reason``: why the configured value is used (empty
    when measured)."""

    celsius: float
    source: str
    reason: str = ""

    @property
    def measured(self) -> bool:
        return self.source == MEASURED

    @property
    def text(self) -> str:
        """For people: ``room: measured 12.3 °C`` or ``room: configured 21 °C (no room
        sensor)``."""
        if self.measured:
            return f"room: measured {self.celsius:.1f} °C"
        return f"room: configured {self.celsius:g} °C ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {"celsius": round(self.celsius, 2), "source": self.source,
                "reason": self.reason or None, "text": self.text}


class RoomTracker:
    """The room sensor's readings in, the ``RoomEstimate`` out.  ``observe`` with every
    telemetry report, ``estimate`` when the room is needed.  Pure computation: the caller
    gives the time."""

    __slots__ = ("configured_c", "tau_s", "stale_s", "_value", "_last_t", "_why")

    def __init__(self, configured_c: float, tau_s: float = FILTER_TAU_S,
                 stale_s: float = STALE_S) -> None:
        self.configured_c = float(configured_c)
        self.tau_s = tau_s
        self.stale_s = stale_s
        self._value: float | None = None  # the filtered reading (None: none valid)
        self._last_t: float | None = None  # when the last valid reading came
        self._why = "no reading from the board yet"

    def observe(self, now: float, room: SensorReading | None) -> None:
        """One report's room sensor: ``room`` None means the board has none (protocol
        1.0)."""
        c, why = room_reading(room)
        if c is None:
            self._drop(why)
            return
        if self._value is None or self._last_t is None:
            self._value = c
        else:
            dt = max(0.0, now - self._last_t)
            self._value += (c - self._value) * (1.0 - math.exp(-dt / self.tau_s))
        self._last_t = now

    def _drop(self, why: str) -> None:
        self._value = None
        self._last_t = None
        self._why = why

    def estimate(self, now: float | None = None) -> RoomEstimate:
        """The room in use at ``now`` (None: do not judge staleness)."""
        if self._value is not None and self._last_t is not None:
            age = 0.0 if now is None else now - self._last_t
            if age <= self.stale_s:
                return RoomEstimate(self._value, MEASURED)
            return RoomEstimate(self.configured_c, CONFIGURED,
                                f"no room reading for {age:.0f} s")
        return RoomEstimate(self.configured_c, CONFIGURED, self._why)


class RoomAverage:
    """The room over a whole record (autotune's experiment): the mean of the valid room
    readings, used only when (nearly) every report had one — a record whose room sensor
    came and went is not a measured room.  ``add`` each report, ``measured`` at the end."""

    __slots__ = ("reports", "valid", "_sum", "lo", "hi", "why_not")

    #: this share of the reports must carry a valid room reading
    MIN_VALID = 0.95

    def __init__(self) -> None:
        self.reports = 0
        self.valid = 0
        self._sum = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.why_not = "no report recorded"

    def add(self, room: SensorReading | None) -> None:
        self.reports += 1
        c, why = room_reading(room)
        if c is None:
            self.why_not = why
            return
        self.valid += 1
        self._sum += c
        self.lo = min(self.lo, c)
        self.hi = max(self.hi, c)

    def measured(self) -> float | None:
        """The mean room, or None (``why_not`` says why) when it was not measured
        throughout."""
        if self.reports == 0 or self.valid < self.MIN_VALID * self.reports:
            return None
        return self._sum / self.valid
