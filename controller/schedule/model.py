"""What a schedule is, and the one validation every way in uses (MQTT, the dashboard's
API, scenario files), so a schedule refused in one place is refused everywhere with the
same words.

A schedule is a list of entries; each says: on these weekdays, have this cushion (or both)
at this setpoint by ``ready_at`` (local wall-clock time, ``HH:MM``), and optionally, at
``until``, switch heat off or go to a lower ``standby_c``.  JSON form::

    {"enabled": true,
     "entries": [{"days": ["mon", "tue"], "ready_at": "08:45", "setpoint_c": 37.0,
                  "cushion": 0, "until": "18:00", "standby_c": 34.0}]}

``days`` omitted: every day; ``cushion`` omitted or null: both; ``until`` earlier than (or
equal to) ``ready_at`` means the next day.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: a week of four sessions a day per cushion is plenty; bounds the payload and the work
MAX_ENTRIES = 28
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ENTRY_KEYS = ("days", "ready_at", "setpoint_c", "cushion", "until", "standby_c")


class ScheduleError(ValueError):
    """A schedule refused; the message names the entry and the key, for a person."""


@dataclass(frozen=True)
class Entry:
    ready_at: dtime
    setpoint_c: float
    cushion: int | None = None  # None: both cushions
    days: tuple[str, ...] = DAYS
    until: dtime | None = None
    standby_c: float | None = None  # at ``until``: this setpoint; None: heat off

    @property
    def cushions(self) -> tuple[int, ...]:
        return (0, 1) if self.cushion is None else (self.cushion,)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"days": list(self.days), "ready_at": _hm(self.ready_at),
                               "setpoint_c": self.setpoint_c, "cushion": self.cushion}
        if self.until is not None:
            out["until"] = _hm(self.until)
            out["standby_c"] = self.standby_c
        return out


@dataclass(frozen=True)
class Schedule:
    entries: tuple[Entry, ...] = ()
    enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "entries": [e.as_dict() for e in self.entries]}


@dataclass(frozen=True)
class Occurrence:
    """One entry on one day for one cushion, in local wall-clock time (naive)."""

    cushion: int
    setpoint_c: float
    ready_at: datetime
    until: datetime | None = None
    standby_c: float | None = None
    entry: int = 0
    key: str = field(default="", compare=False)

    def ident(self) -> str:
        return f"{self.cushion}@{self.ready_at.isoformat(timespec='minutes')}"


def _hm(t: dtime) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def parse_time(value: Any, where: str) -> dtime:
    """``"08:45"`` -> 08:45; exactly two-digit hours and minutes, 00:00-23:59."""
    if not isinstance(value, str):
        raise ScheduleError(f"{where} must be a time \"HH:MM\", got {value!r}")
    m = _TIME.fullmatch(value.strip())
    if m is None:
        raise ScheduleError(f"{where} must be a time \"HH:MM\" (00:00-23:59), got {value!r}")
    return dtime(int(m.group(1)), int(m.group(2)))


def _setpoint(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScheduleError(f"{where} must be a number in °C, got {value!r:.40}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise ScheduleError(f"{where} must be a finite number in °C")
    if not lo <= value <= hi:
        raise ScheduleError(f"{where} {value:g} °C is outside {lo:g}-{hi:g} °C")
    return round(float(value), 1)


def parse_entry(d: Any, where: str, lo: float = 30.0, hi: float = 40.0) -> Entry:
    """One entry from its JSON/TOML form; ``lo``/``hi``: the accepted setpoint range."""
    if not isinstance(d, dict):
        raise ScheduleError(f"{where} must be an object")
    unknown = sorted(set(d) - set(_ENTRY_KEYS))
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(_ENTRY_KEYS)})")
    for key in ("ready_at", "setpoint_c"):
        if key not in d:
            raise ScheduleError(f"{where}: {key} is required")
    ready = parse_time(d["ready_at"], f"{where}.ready_at")
    sp = _setpoint(d["setpoint_c"], f"{where}.setpoint_c", lo, hi)
    cushion = d.get("cushion")
    if cushion is not None and (isinstance(cushion, bool) or cushion not in (0, 1)):
        raise ScheduleError(f"{where}.cushion must be 0, 1 or omitted (both), got {cushion!r}")
    days: tuple[str, ...] = DAYS
    if "days" in d and d["days"] is not None:
        raw = d["days"]
        if not isinstance(raw, list) or not raw:
            raise ScheduleError(f"{where}.days must be a non-empty list such as [\"mon\", "
                                "\"tue\"] (omit it for every day)")
        for x in raw:
            if not isinstance(x, str) or x.lower() not in DAYS:
                raise ScheduleError(f"{where}.days: {x!r} is not a day ({', '.join(DAYS)})")
        if len({x.lower() for x in raw}) != len(raw):
            raise ScheduleError(f"{where}.days names a day twice")
        days = tuple(x for x in DAYS if x in {y.lower() for y in raw})
    until = None
    standby = None
    if d.get("until") is not None:
        until = parse_time(d["until"], f"{where}.until")
        if until == ready:
            raise ScheduleError(f"{where}.until equals ready_at: nothing would be held")
        if d.get("standby_c") is not None:
            standby = _setpoint(d["standby_c"], f"{where}.standby_c", lo, hi)
            if standby >= sp:
                raise ScheduleError(f"{where}.standby_c must be below setpoint_c")
    elif d.get("standby_c") is not None:
        raise ScheduleError(f"{where}.standby_c needs until (when to go to standby)")
    return Entry(ready, sp, None if cushion is None else int(cushion), days, until, standby)


def parse_schedule(data: Any, lo: float = 30.0, hi: float = 40.0) -> Schedule:
    """A whole schedule from ``{"enabled": bool, "entries": [...]}``; ScheduleError says
    what is wrong with the first bad entry."""
    if not isinstance(data, dict):
        raise ScheduleError("a schedule must be an object {\"enabled\": ..., \"entries\": [...]}")
    unknown = sorted(set(data) - {"enabled", "entries"})
    if unknown:
        raise ScheduleError(f"unknown key(s) {', '.join(unknown)} (allowed: enabled, entries)")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleError(f"enabled must be true or false, got {enabled!r}")
    raw = data.get("entries", [])
    if not isinstance(raw, list):
        raise ScheduleError("entries must be a list")
    if len(raw) > MAX_ENTRIES:
        raise ScheduleError(f"{len(raw)} entries: at most {MAX_ENTRIES}")
    entries = tuple(parse_entry(e, f"entries[{i}]", lo, hi) for i, e in enumerate(raw))
    seen: dict[tuple[str, int, dtime], int] = {}
    for i, e in enumerate(entries):
        for day in e.days:
            for c in e.cushions:
                k = (day, c, e.ready_at)
                if k in seen:
                    raise ScheduleError(f"entries[{i}] repeats entries[{seen[k]}]: cushion {c} "
                                        f"on {day} at {_hm(e.ready_at)}")
                seen[k] = i
    return Schedule(entries, enabled)


def occurrences(schedule: Schedule, start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence whose ``ready_at`` falls in [start, end), per cushion, in time
    order (an entry for both cushions gives two)."""
    out: list[Occurrence] = []
    if not schedule.enabled:
        return out
    day: date = start.date() - timedelta(days=1)
    while day <= end.date():
        name = DAYS[day.weekday()]
        for n, e in enumerate(schedule.entries):
            if name not in e.days:
                continue
            ready = datetime.combine(day, e.ready_at)
            if not start <= ready < end:
                continue
            until = None
            if e.until is not None:
                until = datetime.combine(day, e.until)
                if until <= ready:
                    until += timedelta(days=1)
            for c in e.cushions:
                occ = Occurrence(c, e.setpoint_c, ready, until, e.standby_c, n)
                out.append(occ)
        day += timedelta(days=1)
    out.sort(key=lambda o: (o.ready_at, o.cushion))
    return out
