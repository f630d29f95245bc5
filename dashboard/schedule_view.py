"""The ready-by schedule on the page, in words: the next ready time, when heating starts
(or started) and why, per cushion, from the ``schedule`` part of the table's state
(``controller/schedule/runner.py``, ``ScheduleRunner.status``).

The controller computes the plan; the page only puts it in words, and says "unknown"
when the table does not report a schedule (an older controller, or not heard from).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.heat_state import cushion_words

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _when(iso: Any, today: str | None) -> str:
    """``2026-12-07T08:45`` -> ``08:45`` (today) or ``Tue 08:45``."""
    if not isinstance(iso, str):
        return ""
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    hm = f"{t.hour:02d}:{t.minute:02d}"
    if today is not None and iso[:10] == today:
        return hm
    return f"{_DAYS[t.weekday()]} {hm}"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def present_schedule(state: dict[str, Any] | None) -> dict[str, Any]:
    """What the schedule box shows; ``known`` False when the table reports no schedule."""
    sched = (state or {}).get("schedule")
    if not isinstance(sched, dict):
        return {"known": False, "enabled": False, "entries": [],
                "text": "This table does not report a schedule (unknown).", "cushions": []}
    local = sched.get("local_time")
    today = local[:10] if isinstance(local, str) else None
    out = []
    listed = sched.get("cushions")
    for c in listed if isinstance(listed, list) else []:
        if not isinstance(c, dict):
            continue
        i = c.get("cushion")
        name = cushion_words(i).capitalize()
        sp = _num(c.get("setpoint_c"))
        nxt = _when(c.get("next_ready_at"), today)
        start = _when(c.get("heat_start_at"), today)
        late = bool(c.get("late"))
        if not nxt:
            next_text = "No scheduled ready time"
            start_text = ""
        else:
            next_text = f"Ready at {nxt}" + (f" at {sp:.1f} °C" if sp is not None else "")
            phase = c.get("phase")
            if phase == "waiting":
                start_text = f"Heating starts at {start}" if start else "Start not planned yet"
            elif phase == "overridden":
                start_text = "Changed by a person: the schedule leaves it alone"
            elif start:
                start_text = f"Heating since {start}"
            else:
                start_text = ""
        exp = _when(c.get("expected_ready_at"), today)
        late_text = ""
        if late:
            late_text = (f"Will be late: expected ready at {exp}" if exp else
                         "Will be late: the heater cannot reach the setpoint in time")
        why = str(c.get("why") or "") if nxt else ""
        out.append({"cushion": i, "name": name, "scheduled": bool(nxt), "next_text": next_text,
                    "start_text": start_text, "why": why,
                    "late": late, "late_text": late_text})
    stored = sched.get("schedule")
    entries = stored.get("entries") if isinstance(stored, dict) else None
    entries = entries if isinstance(entries, list) else []
    return {"known": True, "enabled": bool(sched.get("enabled")),
            "entries": [e for e in entries if isinstance(e, dict)],
            "text": "" if sched.get("enabled") else "The schedule is switched off.",
            "cushions": out}


def describe_schedule_event(kind: str, d: dict[str, Any]) -> str:
    """The schedule's event-log rows in words (``controller/schedule/runner.py``)."""
    if kind == "schedule":
        n = d.get("entries")
        return (f"Schedule changed: {n} ready time(s)"
                + ("" if d.get("enabled", True) else ", switched off"))
    if kind == "schedule_late":
        due = _when(d.get("ready_at"), None)
        exp = _when(d.get("expected_at"), None)
        return (f"Will be late for {due}: expected ready at {exp}" if exp else
                f"Will be late for {due}: the heater cannot reach the setpoint in time")
    if kind == "schedule_learned":
        ratio = _num(d.get("ratio"))
        return ("Warm-up learned from this morning" +
                (f": this cushion takes ×{ratio:.2f} the model's time" if ratio else ""))
    if kind == "schedule_overridden":
        return "Changed by a person: the schedule leaves this cushion alone until its next " \
               "ready time"
    return kind
