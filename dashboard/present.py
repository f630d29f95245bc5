"""What the page shows, in words: one place for the templates and the live updates.

The server turns a table's raw MQTT view (``TableView.as_dict()``) into a *presented*
view: display strings, plain-language trip and alarm texts, connection problems.  The
templates render it on first load and the Server-Sent Events carry the same structure,
so the browser only copies strings into elements and no wording lives in JavaScript.

The trip ``reason`` names are the interface names of the safety table (docs: the
supervisor); the numbers in the texts come from the configuration, never literals.

Whether a cushion can heat is the table's own derived heat state
(``controller/heat_state.py``, carried in the state payload), shown as it is: "Ready in"
only while it is warming up, "At temperature" only when it is, and for a blocked cushion
"Cannot heat" with every reason.  The page adds only what the table cannot know: that the
table or the broker is not heard from (then the state is unknown).
"""

from __future__ import annotations

import math
import time
from typing import Any

from controller.heat_state import TRIP_TITLES, unknown
from hydrotherm.config import Config

from .plain import actor_text, refusal_text, why_text
from .schedule_view import describe_schedule_event, present_schedule

CUSHION_NAMES = ("Upper body", "Lower body")


def cushion_name(cushion: Any) -> str:
    if isinstance(cushion, int) and not isinstance(cushion, bool) and 0 <= cushion < 2:
        return CUSHION_NAMES[cushion]
    return "Both cushions"


def _c(value: float) -> str:
    """A temperature limit as the texts print it: 41.0 °C."""
    return f"{value:.1f} °C"


def trip_texts(cfg: Config) -> dict[str, tuple[str, str]]:
    """reason -> (short title, full text: what happened, what was done, what to do)."""
    s = cfg.safety
    per_min = f"{s.rise_too_fast_c_per_min:g} °C per minute"
    window_min = f"{s.no_rise_window_s / 60:g} min"
    off_min = f"{s.rise_while_off_window_s / 60:g} min"
    return {
        "over_temperature": (
            TRIP_TITLES["over_temperature"],
            f"The water is too hot: a sensor read above {_c(s.over_temperature_c)}. All heaters "
            "are off and the master relay is open. Take the client off the table, let the "
            f"water cool below {_c(s.over_temperature_c - s.over_temperature_reset_margin_c)}, "
            "then reset."),
        "sensor_open": (
            TRIP_TITLES["sensor_open"],
            "A temperature sensor is disconnected (open circuit). Heating stopped. Check the "
            "sensor cable, then reset."),
        "sensor_short": (
            TRIP_TITLES["sensor_short"],
            "A temperature sensor is short-circuited. Heating stopped. Check the sensor and "
            "its cable, then reset."),
        "sensor_disagree": (
            TRIP_TITLES["sensor_disagree"],
            f"The two temperature sensors of this cushion differ by more than "
            f"{s.sensor_disagree_c:g} °C. Heating stopped. Check that both sensors sit in the "
            "water, then reset."),
        "no_rise": (
            TRIP_TITLES["no_rise"],
            f"In {window_min} at high power the water warmed less than any working heater "
            "would have warmed it. Heating stopped. The heater or its relay may have "
            "failed: call service, then reset."),
        "rise_too_fast": (
            TRIP_TITLES["rise_too_fast"],
            "The water warmed faster than the heater can warm a full cushion (the limit is "
            f"{per_min}, or faster than any full cushion can warm, or faster than this "
            "cushion warmed before at the same power): the cushion may be empty or leaking, "
            "or the heater plate dry. Heating stopped. Check the cushion, then "
            "reset."),
        "rise_while_off": (
            TRIP_TITLES["rise_while_off"],
            f"With the heater off the water warmed more than {s.rise_while_off_c:g} °C "
            f"(within {off_min}) beyond what the heater plate's stored heat and the room "
            "can explain: a heater relay may be stuck on. The master relay is open. Call "
            "service before using the table again."),
        "stale_telemetry": (
            TRIP_TITLES["stale_telemetry"],
            f"No readings arrived from the heater board for more than {s.stale_telemetry_s:g} s. "
            "All heaters are off. Check the board's cable and power, then reset."),
        "board_fault": (
            TRIP_TITLES["board_fault"],
            "The heater board reported a fault (see the detail). All heaters are off. Check the "
            "board, then reset."),
        "plate_dry": (
            TRIP_TITLES["plate_dry"],
            "The heater plate is much hotter than the water: the cushion is emptying or dry "
            "(it may be leaking). Ask the client to get up now. This cushion's heater is off. "
            "Check and refill the cushion; reset once the plate has cooled to the water."),
        "control_stall": (
            TRIP_TITLES["control_stall"],
            f"The control program did not run for {s.control_stall_s:g} s. All heaters are off. "
            "Reset; if it happens again, restart the controller and call service."),
    }


ALARM_TITLES = {"high_temperature": "water warmer than it should be",
                "event_log_unwritable": "the event log cannot be written"}


def alarm_texts(cfg: Config) -> dict[str, str]:
    s = cfg.safety
    return {
        "high_temperature": (
            f"The water is warm: more than {s.high_alarm_margin_c:g} °C above the setpoint, or "
            f"above {_c(s.high_alarm_c)}. Check that the client is comfortable."),
        "event_log_unwritable": (
            "The event log cannot be written (disk full, read-only or failing). Heating "
            "goes on; events wait in memory and are written when the disk works again. "
            "Call service."),
    }


def trip_text(cfg: Config, reason: str) -> tuple[str, str]:
    known = trip_texts(cfg).get(reason)
    if known is not None:
        return known
    return (f"Safety trip: {reason}",
            f"The controller stopped heating ({reason}). Check the table, then reset.")


def alarm_text(cfg: Config, name: str) -> str:
    return alarm_texts(cfg).get(name, f"Alarm: {name}.")


def _clock(t: Any) -> str:
    if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
        return time.strftime("%H:%M:%S", time.localtime(t))
    return ""


def _num(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


SENSOR_WORDS = {"open": "disconnected", "short": "short-circuited", "unavailable": "—"}


def _sensor_text(water: dict[str, Any], status: dict[str, Any]) -> str:
    parts = []
    for key in ("primary", "redundant"):
        v = _num(water.get(key))
        st = status.get(key, "unavailable")
        parts.append(f"{v:.2f}" if v is not None and st == "ok"
                     else SENSOR_WORDS.get(str(st), str(st)))
    return f"Sensors {parts[0]} / {parts[1]} °C"


STATE_LABELS = {"heating": "Heating", "ready": "Ready",
                "holding": "Above the setpoint", "off": "Heating off",
                "blocked": "Cannot heat", "unknown": "State unknown"}


def present_cushion(cfg: Config, c: dict[str, Any], usable: bool,
                    state: dict[str, Any] | None = None,
                    not_heard: str = "") -> dict[str, Any]:
    """One cushion of a state snapshot, for display.  ``usable``: readings are current;
    ``state``: the whole snapshot (to derive the heat state from a payload that lacks
    it); ``not_heard``: why the table is not heard from (then the state is unknown)."""
    i = c.get("cushion", 0)
    water = _num((c.get("water_c") or {}).get("estimate")) if usable else None
    setpoint = _num(c.get("setpoint_c"))
    heat_on = bool(c.get("heat_on"))
    output = _num(c.get("output")) if usable else None
    ready_s = _num(c.get("ready_in_s")) if usable else None
    trips = [present_trip(cfg, t) for t in c.get("trips") or []]
    alarms = [{"name": a.get("name", "?"), "text": alarm_text(cfg, a.get("name", "?")),
               "title": ALARM_TITLES.get(str(a.get("name")), "Alarm"),
               "detail": str(a.get("detail") or "")} for a in c.get("alarms") or []]
    hs = c.get("heat_state")
    if not isinstance(hs, dict) or hs.get("state") not in STATE_LABELS:
        hs = unknown("This table's controller does not report a heat state").as_dict()
    if not_heard:
        hs = unknown(not_heard).as_dict()
    kind = hs["state"]
    own = {f"tripped: {t['reason']}" for t in trips}
    blocked = [{"reason": str(b.get("reason", "")), "text": why_text(str(b.get("text", ""))),
                # shown already as this cushion's trip box: the page lists it once
                "dup": str(b.get("reason", "")) in own
                and not str(b.get("text", "")).startswith("Safety trip on the")}
               for b in hs.get("blocked_by") or [] if kind == "blocked"]
    ready = ""
    if kind == "heating" and ready_s is not None and ready_s >= 30:
        ready = f"Ready in {math.ceil(ready_s / 60)} min"
    elif kind == "ready":
        ready = "At temperature"
    service = [t for t in trips if t["service"]]
    return {
        "cushion": i,
        "name": cushion_name(i),
        "water_c": water,
        "water_text": f"{water:.1f}" if water is not None else "—",
        "sensors_text": _sensor_text(c.get("water_c") or {}, c.get("sensor_status") or {})
        if usable else "Readings unavailable",
        "setpoint_c": setpoint,
        "setpoint_text": f"{setpoint:.1f}" if setpoint is not None else "—",
        "heat_on": heat_on,
        "output_pct": round(100 * output) if output is not None else None,
        "output_text": f"{100 * output:.0f} %" if output is not None else "—",
        "heat_state": kind,
        "action_text": STATE_LABELS[kind],
        "state_text": str(hs.get("text") or STATE_LABELS[kind]),
        "blocked": blocked,
        "ready_text": ready,
        "trips": trips,
        "alarms": alarms,
        "can_reset": any(not t["service"] for t in trips),
        "reset_note": (SERVICE_RESET_NOTE if service and len(service) == len(trips) else
                       SERVICE_PARTIAL_NOTE if service else ""),
    }


#: Why the reset button is not offered for a trip that needs a service person.
SERVICE_RESET_NOTE = (
    "Reset is not offered here: this trip's cause cannot be shown to have gone while the "
    "heaters are cut off, so only a service person may reset it, at the controller's "
    "machine, after checking the table. Call service.")
SERVICE_PARTIAL_NOTE = (
    "Reset clears only the other trips: the one marked \"Call service\" needs a service "
    "person at the controller's machine.")


def present_trip(cfg: Config, t: dict[str, Any]) -> dict[str, Any]:
    """One latched trip for display.  A trip that needs a service person (the state's
    ``service_only``, from the supervisor's ``SERVICE_ONLY``) says "Call service" first and
    why, in the controller's words."""
    reason = t.get("reason", "?")
    title, text = trip_text(cfg, reason)
    service = bool(t.get("service_only"))
    if service:
        title = f"Call service: {title}"
        why = str(t.get("service_why") or "").strip()
        text = (f"{text} Only a service person can reset this, at the controller's machine"
                + (f": {why}." if why else "."))
    return {"reason": reason, "title": title, "text": text, "service": service,
            "detail": why_text(str(t.get("detail") or "")), "at": _clock(t.get("at"))}


def room_text(state: dict[str, Any] | None, live: bool) -> str:
    """The room the control law and the schedule use, as the controller says (measured by
    the board, or the configured value and why); nothing when the table is not live — a
    room from an old state is not worth showing next to "state unknown"."""
    room = (state or {}).get("room")
    if not live or not isinstance(room, dict):
        return ""
    text = room.get("text")
    if isinstance(text, str) and text:
        return text[:1].upper() + text[1:]
    return ""


def present_table(cfg: Config, view: dict[str, Any] | None, broker: bool,
                  broker_error: str = "", table_id: str = "") -> dict[str, Any]:
    """The whole table for display; ``view`` is ``TableView.as_dict()`` or None (never
    heard of).  ``problems`` are the connection states the page must never hide."""
    view = view or {"table_id": table_id, "status": "unknown", "readings": "unknown",
                    "state": None, "state_received_at": None, "state_updates": 0}
    state = view.get("state") or None
    status = view.get("status", "unknown")
    problems: list[dict[str, str]] = []
    if not broker:
        why = f" ({broker_error})" if broker_error else ""
        problems.append({"level": "error", "code": "broker",
                         "text": "Broker unreachable: the dashboard cannot reach the MQTT broker"
                                 f"{why}. The values shown may be out of date."})
    if status == "offline":
        problems.append({"level": "error", "code": "offline",
                         "text": "Table offline: its controller is not running or has lost the "
                                 "broker. The values shown are the last known ones."})
    elif status != "online" and state is None:
        problems.append({"level": "warning", "code": "unknown",
                         "text": "Nothing heard from this table yet: is its controller running "
                                 "and connected to the broker?"})
    link = (state or {}).get("link") or {}
    readings_ok = (state is not None and bool(link.get("healthy"))
                   and view.get("readings") != "offline")
    if state is not None and not readings_ok:
        detail = link.get("error") or link.get("state") or "link down"
        problems.append({"level": "error", "code": "readings",
                         "text": "Readings unavailable: the controller has lost contact with the "
                                 f"heater board ({detail}). Heating is off until readings "
                                 "return."})
    usable = readings_ok and status == "online" and broker
    not_heard = ""
    if not broker:
        not_heard = "State unknown: the dashboard cannot reach the broker"
    elif status != "online":
        not_heard = "State unknown: the table is not heard from"
    cushions = [present_cushion(cfg, c, readings_ok, state, not_heard)
                for c in (state or {}).get("cushions", [])]
    if readings_ok:
        for c in cushions:
            if c["water_c"] is None:
                problems.append({"level": "error", "code": "readings",
                                 "text": f"{c['name']}: no valid temperature reading."})
    return {
        "table_id": view.get("table_id") or table_id,
        "status": status,
        "broker": broker,
        "readings_ok": readings_ok,
        "live": usable,
        "problems": problems,
        "time": _num((state or {}).get("time")),
        "updated_text": _clock((state or {}).get("time")),
        "updates": view.get("state_updates", 0),
        "tripped": bool((state or {}).get("tripped")),
        "room_text": room_text(state, usable),
        "cushions": cushions,
        "schedule": present_schedule(state) if status == "online" and broker
        else present_schedule(None),
    }


def describe_event(cfg: Config, e: dict[str, Any]) -> str:
    """One event-log row in words."""
    kind = e.get("kind", "?")
    d = e.get("detail") or {}
    reason = e.get("reason") or ""
    if kind == "setpoint":
        return f"Setpoint {d.get('from', '?')} → {d.get('to', '?')} °C"
    if kind == "heat":
        return "Heating switched " + ("on" if d.get("to") else "off")
    if kind == "trip":
        title, _ = trip_text(cfg, reason)
        extra = d.get("detail")
        return f"Safety trip: {title}" + (f" ({extra})" if extra else "")
    if kind == "trip_reset":
        return f"Trip reset: {trip_text(cfg, reason)[0]}"
    if kind == "reset_refused":
        extra = d.get("detail")
        return f"Reset refused: {trip_text(cfg, reason)[0]}" + (f" ({extra})" if extra else "")
    if kind == "alarm":
        return f"Alarm: {ALARM_TITLES.get(reason, reason)}"
    if kind == "alarm_cleared":
        return f"Alarm cleared: {ALARM_TITLES.get(reason, reason)}"
    if kind == "command_refused":
        return f"Command refused: {refusal_text(reason)}"
    if kind == "link_connected":
        return "Heater board connected"
    if kind == "link_disconnected":
        return f"Heater board disconnected ({reason})" if reason else "Heater board disconnected"
    if kind == "board_fault":
        extra = d.get("detail")
        return "Heater board fault" + (f": {extra}" if extra else "")
    if kind == "events_dropped":
        return f"Events lost: {d.get('count', '?')} (the event log could not be written)"
    if kind.startswith("schedule"):
        return describe_schedule_event(kind, d)
    if kind == "controller_start":
        return "Controller started"
    if kind == "controller_stop":
        return "Controller stopped"
    return f"{kind} {reason}".strip()


def present_event(cfg: Config, e: dict[str, Any]) -> dict[str, Any]:
    t = _num(e.get("time"))
    return {
        "id": e.get("id"),
        "time": t,
        "time_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "",
        "kind": e.get("kind", "?"),
        "cushion": cushion_name(e.get("cushion")) if e.get("cushion") is not None else "",
        "actor": e.get("actor") or "",
        "who": actor_text(e.get("actor")),
        "cushion_index": e.get("cushion") if e.get("cushion") in (0, 1) else None,
        "text": describe_event(cfg, e),
        "level": "error" if e.get("kind") in ("trip", "reset_refused", "board_fault",
                                              "link_disconnected", "events_dropped") else
                 "warning" if e.get("kind") in ("alarm", "command_refused") else "info",
    }
