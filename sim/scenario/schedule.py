"""Scenario files with a ready-by schedule: ``start_at``, ``[[schedule]]`` and the
``schedule_met`` verdict (format: ``docs/scenarios.md``).

The entries are checked by the controller's own schedule validation
(``controller.schedule.parse_entry``), so a file is refused for the same reasons the
dashboard and MQTT refuse a schedule.  What a run reports per scheduled cushion and
occurrence is measured on the *true* water (the plant), not on what the controller
believed: ``ready_s`` is the first time from which the water stays within
``SETTLE_BAND_C`` of the scheduled setpoint for ``READY_HOLD_S`` (or to the end of the
run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.schedule import Schedule, ScheduleError, occurrences
from controller.schedule.model import parse_entry

from .schema import SETTLE_BAND_C

#: ready means staying within the band this long (or to the end of the run)
READY_HOLD_S = 600.0
#: schedule_met: ready no later than this after ready_at ...
LATE_ALLOWED_S = 60.0
#: ... and no earlier than this before it (heating hours early is waste)
EARLY_ALLOWED_S = 1200.0


@dataclass
class ScheduleRecord:
    cushion: int
    ready_at: str  # local wall-clock time, for people
    setpoint_c: float
    ready_at_s: float
    heat_start_s: float | None
    ready_s: float | None

    @property
    def late_s(self) -> float | None:
        return None if self.ready_s is None else max(0.0, self.ready_s - self.ready_at_s)

    def as_dict(self) -> dict[str, Any]:
        r = _round1
        return {"cushion": self.cushion, "ready_at": self.ready_at,
                "setpoint_c": self.setpoint_c, "ready_at_s": r(self.ready_at_s),
                "heat_start_s": r(self.heat_start_s), "ready_s": r(self.ready_s),
                "late_s": r(self.late_s)}


def _round1(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def parse_schedule_section(data: dict[str, Any], ck: Any, cfg: Any
                           ) -> tuple[datetime | None, Schedule | None]:
    """``start_at`` and ``[[schedule]]`` of a file (both absent: no schedule); ``ck`` is
    the parser's checker (``parse._Checker``), which names the line of a problem."""
    start_at = None
    if "start_at" in data:
        v = data["start_at"]
        if isinstance(v, datetime):  # TOML's own local date-time, unquoted
            start_at = v.replace(tzinfo=None)
        elif isinstance(v, str):
            try:
                start_at = datetime.fromisoformat(v)
            except ValueError:
                raise ck.fail(("start_at",), f"{v!r} is not a local date-time such as "
                                             "\"2026-12-07T05:00:00\"") from None
            if start_at.tzinfo is not None:
                raise ck.fail(("start_at",), "give the local wall-clock time without a "
                                             "time zone offset")
        else:
            raise ck.fail(("start_at",), "expected a local date-time such as "
                                         "\"2026-12-07T05:00:00\"")
    raw = data.get("schedule")
    if raw is None:
        return start_at, None
    if not isinstance(raw, list) or not raw:
        raise ck.fail(("schedule",), "expected [[schedule]] entries")
    if start_at is None:
        raise ck.fail(("schedule",), "a schedule needs start_at (the local wall-clock time "
                                     "at t = 0), e.g. start_at = \"2026-12-07T05:00:00\"")
    ctl = cfg.control
    entries = []
    for i, e in enumerate(raw):
        try:
            entries.append(parse_entry(e, f"schedule[{i}]", ctl.setpoint_min_c,
                                       ctl.setpoint_max_c))
        except ScheduleError as exc:
            msg = str(exc)
            key = next((k for k in ("ready_at", "setpoint_c", "cushion", "days", "until",
                                    "standby_c") if f".{k}" in msg), None)
            raise ck.fail(("schedule", i) + ((key,) if key and isinstance(e, dict)
                                             and key in e else ()), msg) from None
    return start_at, Schedule(tuple(entries))


def measure(start_at: datetime, schedule: Schedule, duration_s: float, sec_t: list[float],
            sec_w: list[list[float]], runs: list[dict[str, Any]]) -> list[ScheduleRecord]:
    """One record per scheduled cushion and occurrence due within the run.  ``sec_t`` and
    ``sec_w``: the 1 s record of the true water; ``runs``: the runner's records."""
    out: list[ScheduleRecord] = []
    end = start_at + timedelta(seconds=duration_s)
    last_due = [0.0, 0.0]
    for occ in occurrences(schedule, start_at, end + timedelta(seconds=1)):
        due = (occ.ready_at - start_at).total_seconds()
        if due > duration_s + 1e-6:
            continue
        i = occ.cushion
        start = next((r["heat_start_s"] for r in runs if r["cushion"] == i
                      and r["ready_at"] == occ.ready_at.isoformat()), None)
        ready = ready_time(sec_t, sec_w[i], occ.setpoint_c, last_due[i])
        out.append(ScheduleRecord(i, occ.ready_at.isoformat(timespec="minutes"),
                                  occ.setpoint_c, due, start, ready))
        last_due[i] = due
    return out


def ready_time(ts: list[float], ws: list[float], sp: float, since: float = 0.0
               ) -> float | None:
    """First time >= ``since`` from which the water stays within the band for
    ``READY_HOLD_S`` or to the end."""
    n = len(ts)
    nxt_out = [n] * (n + 1)  # index of the first out-of-band sample at or after k
    for k in range(n - 1, -1, -1):
        nxt_out[k] = k if abs(ws[k] - sp) > SETTLE_BAND_C else nxt_out[k + 1]
    for k in range(n):
        if ts[k] < since - 1e-6 or abs(ws[k] - sp) > SETTLE_BAND_C:
            continue
        j = nxt_out[k]
        if j == n or ts[j] - ts[k] >= READY_HOLD_S:
            return ts[k]
    return None


def check(records: list[ScheduleRecord]) -> list[str]:
    """Reasons ``schedule_met`` fails (empty: met)."""
    if not records:
        return ["no scheduled ready time falls within the run"]
    bad = []
    for r in records:
        if r.ready_s is None:
            bad.append(f"cushion {r.cushion} was never ready for {r.ready_at} "
                       f"({r.setpoint_c:g} °C)")
        elif r.ready_s > r.ready_at_s + LATE_ALLOWED_S:
            bad.append(f"cushion {r.cushion} ready {r.ready_s - r.ready_at_s:.0f} s late for "
                       f"{r.ready_at}")
        elif r.ready_s < r.ready_at_s - EARLY_ALLOWED_S:
            bad.append(f"cushion {r.cushion} ready {r.ready_at_s - r.ready_s:.0f} s early for "
                       f"{r.ready_at} (more than {EARLY_ALLOWED_S / 60:g} min)")
    return bad
