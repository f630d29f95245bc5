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
