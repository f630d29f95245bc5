"""Words for the marks on ``scenario run --plot``: faults, client events, commands, trips.

Pure (no matplotlib), so the labels can be checked without drawing.  The cushions are
named as on the dashboard and the trips by their plain titles, with the code in
brackets for the engineer reading the plot next to the JSON.
"""

from __future__ import annotations

from typing import Any

from controller.heat_state import cushion_words, trip_title

#: what kind of mark an applied event is: fault, client, command
FAULT_DOS = ("fault", "clear_fault", "unplug", "replug", "board_reset", "host_stall")
CLIENT_DOS = ("client_on", "client_off")


def _where(cushion: Any) -> str:
    return f" ({cushion_words(cushion)})" if cushion is not None else ""


def event_kind(ev: dict[str, Any]) -> str:
    do = ev.get("do")
    if do in FAULT_DOS:
        return "fault"
    if do in CLIENT_DOS:
        return "client"
    return "command"


def event_label(ev: dict[str, Any]) -> str:
    """One applied scenario event (``Result.events``) as a short label."""
    do = ev.get("do")
    where = _where(ev.get("cushion"))
    if do == "fault":
        return f"fault: {ev.get('fault', '?')}{where}"
    if do == "clear_fault":
        return f"fault cleared: {ev.get('fault', '?')}{where}"
    if do in ("unplug", "replug", "board_reset", "host_stall"):
        return f"fault: {str(do).replace('_', ' ')}"
    if do == "client_on":
        return "client lies down" + where
    if do == "client_off":
        return "client gets up" + where
    if do == "setpoint":
        return f"setpoint {ev.get('value', '?')} °C{where}"
    if do == "heat":
        return f"heat {'on' if ev.get('value') else 'off'}{where}"
    if do == "reset":
        return "reset" + where
    return str(do)


def trip_label(reason: str, cushion: Any) -> str:
    return f"trip: {trip_title(reason)} [{reason}]{_where(cushion)}"


def client_spans(events: list[dict[str, Any]], end_s: float) -> list[tuple[float, float]]:
    """(start, end) in seconds of each time a client lay on the table (the last one,
    if the client never got up, to the end of the run)."""
    spans = []
    start: float | None = None
    for ev in events:
        if ev.get("do") == "client_on" and start is None:
            start = float(ev["at_s"])
        elif ev.get("do") == "client_off" and start is not None:
            spans.append((start, float(ev["at_s"])))
            start = None
    if start is not None:
        spans.append((start, end_s))
    return spans


def _clock(ready_at: Any) -> str:
    """``2026-12-07T08:45`` -> ``08:45`` (the day is on the plot's axis already)."""
    text = str(ready_at)
    return text[11:16] if len(text) >= 16 and text[10] == "T" else text


def _minutes(seconds: float) -> str:
    m = round(abs(seconds) / 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def schedule_label(rec: dict[str, Any]) -> str:
    """The due time of one scheduled occurrence (``Result.schedule``, as_dict)."""
    return f"ready by {_clock(rec.get('ready_at'))}, {rec.get('setpoint_c', '?')} °C" \
        f"{_where(rec.get('cushion'))}"


def ready_label(rec: dict[str, Any]) -> str:
    """When the water was ready (``ready_s``), against the due time: early, on time, late,
    or never (then placed at the due time)."""
    where = _where(rec.get("cushion"))
    ready, due = rec.get("ready_s"), rec.get("ready_at_s")
    if ready is None:
        return f"NOT ready{where}"
    if due is None:
        return f"ready{where}"
    d = float(ready) - float(due)
    if d > 60:
        return f"ready{where}, {_minutes(d)} LATE"
    if d < -60:
        return f"ready{where}, {_minutes(d)} early"
    return f"ready{where}, on time"
