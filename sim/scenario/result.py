"""What a run records: trips, alarms, resets, refusals, per-cushion figures and the
sampled trace, and the JSON that ``hydrotherm scenario run --json`` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .schema import Event

# --- the result -------------------------------------------------------------------------


@dataclass
class TripRecord:
    at_s: float
    cushion: int | None
    reason: str
    detail: str
    affects: tuple[int, ...]  # the cushions whose heater the trip switches off
    fault: Event | None  # the fault it is attributed to (see ``_attribute``)
    heater_off_at_s: float | None = None  # since when off (and off ever since, if latched)
    cleared_at_s: float | None = None
    on_while_tripped_s: float = 0.0  # time with power after the grace period
    first_on_while_tripped_s: float | None = None

    @property
    def detect_s(self) -> float | None:
        return None if self.fault is None else self.at_s - self.fault.at_s

    @property
    def heater_off_s(self) -> float | None:
        if self.fault is None or self.heater_off_at_s is None:
            return None
        return self.heater_off_at_s - self.fault.at_s

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": rounded(self.at_s), "cushion": self.cushion, "reason": self.reason,
                "detail": self.detail,
                "fault": None if self.fault is None else self.fault.label(),
                "detect_s": rounded(self.detect_s), "heater_off_s": rounded(self.heater_off_s),
                "off_after_trip_s": rounded(None if self.heater_off_at_s is None
                                       else max(0.0, self.heater_off_at_s - self.at_s)),
                "affects": list(self.affects), "cleared_at_s": rounded(self.cleared_at_s),
                "on_while_tripped_s": rounded(self.on_while_tripped_s)}


@dataclass
class AlarmRecord:
    at_s: float
    cushion: int
    name: str
    detail: str
    cleared_at_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": rounded(self.at_s), "cushion": self.cushion, "name": self.name,
                "detail": self.detail, "cleared_at_s": rounded(self.cleared_at_s)}


@dataclass
class ResetRecord:
    at_s: float  # the event's time
    cushion: int | None
    actor: str
    done_at_s: float | None = None
    ok: bool | None = None  # None: no verdict before the end of the run
    cleared: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": rounded(self.at_s), "cushion": self.cushion, "actor": self.actor,
                "done_at_s": rounded(self.done_at_s), "ok": self.ok, "cleared": self.cleared,
                "refused": self.refused}


@dataclass
class RefusalRecord:
    at_s: float
    do: str
    cushion: int | None
    value: Any
    reason: str
    logged: bool = False  # the event log holds a command_refused for it
    unchanged: bool = True  # the setting was left as it was

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": rounded(self.at_s), "do": self.do, "cushion": self.cushion,
                "value": self.value, "reason": self.reason, "logged": self.logged,
                "unchanged": self.unchanged}


@dataclass
class CushionFigures:
    max_water_c: float
    final_water_c: float
    settle_s: float | None
    overshoot_c: float | None
    energy_wh: float
    setpoint_c: float  # at the end
    heat_on: bool  # at the end

    def as_dict(self) -> dict[str, Any]:
        return {"max_water_c": rounded(self.max_water_c, 3),
                "final_water_c": rounded(self.final_water_c, 3),
                "settle_s": rounded(self.settle_s), "overshoot_c": rounded(self.overshoot_c, 3),
                "energy_wh": rounded(self.energy_wh, 2), "setpoint_c": self.setpoint_c,
                "heat_on": self.heat_on}


@dataclass
class Trace:
    """Sampled every ``trace_period_s``: columns, ``[cushion][k]`` for per-cushion ones."""

    t_s: list[float] = field(default_factory=list)
    water_c: list[list[float]] = field(default_factory=lambda: [[], []])
    measured_c: list[list[float | None]] = field(default_factory=lambda: [[], []])
    setpoint_c: list[list[float]] = field(default_factory=lambda: [[], []])
    applied: list[list[float]] = field(default_factory=lambda: [[], []])
    power_w: list[list[float]] = field(default_factory=lambda: [[], []])
    relay_closed: list[bool] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"t_s": [rounded(t) for t in self.t_s],
                "water_c": [[rounded(v, 3) for v in c] for c in self.water_c],
                "measured_c": [[rounded(v, 3) for v in c] for c in self.measured_c],
                "setpoint_c": self.setpoint_c,
                "applied": [[rounded(v, 3) for v in c] for c in self.applied],
                "power_w": [[rounded(v, 1) for v in c] for c in self.power_w],
                "relay_closed": self.relay_closed}


@dataclass
class Failure:
    expect: str  # which expectation, as in the file: "trips[0]", "max_water_c"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"expect": self.expect, "reason": self.reason}


@dataclass
class Result:
    name: str
    path: str
    duration_s: float
    seed: int
    step_s: float
    grace_s: float
    cushions: list[CushionFigures]
    trips: list[TripRecord]
    alarms: list[AlarmRecord]
    resets: list[ResetRecord]
    refusals: list[RefusalRecord]
    events: list[dict[str, Any]]
    log_kinds: dict[str, int]
    trace: Trace
    wall_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    board: str = "python"  # the board that ran it: [board] kind
    schedule: list[Any] = field(default_factory=list)  # schedule.ScheduleRecord
    #: the controller's model (``[plant]`` and the sensor lag) and the simulated truth per
    #: cushion (``[true_plant]`` over it): what differed is visible in the JSON
    model: dict[str, Any] = field(default_factory=dict)
    true_plant: list[dict[str, Any]] = field(default_factory=list)
    #: the room the controller used at the end (``controller/room.py``: measured by the
    #: board's room sensor, or the configured estimate and why)
    room: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def max_water_c(self) -> float:
        return max(c.max_water_c for c in self.cushions)

    def to_json(self, trace: bool = True) -> dict[str, Any]:
        out = {
            "name": self.name, "file": self.path, "passed": self.passed,
            "failures": [f.as_dict() for f in self.failures],
            "board": self.board,
            "duration_s": self.duration_s, "seed": self.seed, "wall_s": rounded(self.wall_s, 3),
            "step_s": self.step_s, "grace_s": rounded(self.grace_s, 3),
            "max_water_c": rounded(self.max_water_c, 3),
            "cushions": [c.as_dict() for c in self.cushions],
            "model": self.model,
            "true_plant": self.true_plant,
            "room": self.room,
            "trips": [t.as_dict() for t in self.trips],
            "alarms": [a.as_dict() for a in self.alarms],
            "resets": [r.as_dict() for r in self.resets],
            "refusals": [r.as_dict() for r in self.refusals],
            "events": self.events,
            "log": self.log_kinds,
            "schedule": [r.as_dict() for r in self.schedule],
        }
        if trace:
            out["trace"] = self.trace.as_dict()
        return out

    def summary(self) -> list[str]:
        """Human-readable lines for the terminal."""
        lines = [f"scenario {self.name!r}: {'PASSED' if self.passed else 'FAILED'} "
                 f"({self.duration_s:g} s simulated in {self.wall_s:.1f} s, seed {self.seed}, "
                 f"{self.board} board)"]
        for i, c in enumerate(self.cushions):
            settle = "-" if c.settle_s is None else f"{c.settle_s:.0f} s"
            over = "-" if c.overshoot_c is None else f"{c.overshoot_c:.2f} °C"
            lines.append(f"  cushion {i}: max {c.max_water_c:.2f} °C, final "
                         f"{c.final_water_c:.2f} °C, settle {settle}, overshoot {over}, "
                         f"{c.energy_wh:.1f} Wh")
        if self.room is not None:
            lines.append(f"  {self.room['text']}")
        for t in self.trips:
            where = "table" if t.cushion is None else f"cushion {t.cushion}"
            det = ("" if t.fault is None or t.detect_s is None
                   else f", detected {t.detect_s:.1f} s after {t.fault.label()}")
            off = "" if t.heater_off_s is None else f", heater off after {t.heater_off_s:.1f} s"
            lines.append(f"  trip {t.reason} ({where}) at {t.at_s:.1f} s{det}{off}")
        for a in self.alarms:
            lines.append(f"  alarm {a.name} (cushion {a.cushion}) at {a.at_s:.1f} s")
        for r in self.resets:
            verdict = {True: "accepted", False: "refused", None: "no verdict"}[r.ok]
            lines.append(f"  reset at {r.at_s:g} s by {r.actor}: {verdict}")
        for r in self.refusals:
            lines.append(f"  refused {r.do} {r.value!r} at {r.at_s:g} s: {r.reason}")
        for r in self.schedule:
            start = "-" if r.heat_start_s is None else f"{r.heat_start_s:.0f} s"
            ready = "never" if r.ready_s is None else f"{r.ready_s:.0f} s"
            lines.append(f"  schedule cushion {r.cushion} {r.ready_at} ({r.ready_at_s:.0f} s): "
                         f"heat from {start}, ready at {ready}")
        for f in self.failures:
            lines.append(f"  FAILED {f.expect}: {f.reason}")
        return lines


def rounded(v: float | None, nd: int = 2) -> float | None:
    """``v`` rounded for the JSON; None for a missing or non-finite value (JSON has no NaN)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(v, nd)


