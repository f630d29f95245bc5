"""What the page shows, in words: one place for the templates and the live updates.

The server turns a table's raw MQTT view (``TableView.as_dict()``) into a *presented*
view: display strings, plain-language trip and alarm texts, connection problems.  The
templates render it on first load and the Server-Sent Events carry the same structure,
so the browser only copies strings into elements and no wording lives in JavaScript.

The trip ``reason`` names are the interface names of the safety table (docs: the
supervisor); the numbers in the texts come from the configuration, never literals.
"""

from __future__ import annotations

import math
import time
from typing import Any

from hydrotherm.config import Config

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
            "Water too hot",
            f"The water is too hot: a sensor read above {_c(s.over_temperature_c)}. All heaters "
            "are off and the master relay is open. Take the client off the table, let the "
            f"water cool below {_c(s.over_temperature_c - s.over_temperature_reset_margin_c)}, "
            "then reset."),
        "sensor_open": (
            "Sensor disconnected",
            "A temperature sensor is disconnected (open circuit). Heating stopped. Check the "
            "sensor cable, then reset."),
        "sensor_short": (
            "Sensor short-circuited",
            "A temperature sensor is short-circuited. Heating stopped. Check the sensor and "
            "its cable, then reset."),
        "sensor_disagree": (
            "Sensors disagree",
            f"The two temperature sensors of this cushion differ by more than "
            f"{s.sensor_disagree_c:g} °C. Heating stopped. Check that both sensors sit in the "
            "water, then reset."),
        "no_rise": (
            "Water does not warm up",
            f"In {window_min} at high power the water warmed less than any working heater "
            "would have warmed it. Heating stopped. The heater or its relay may have "
            "failed: call service, then reset."),
        "rise_too_fast": (
            "Water warms too fast",
            "The water warmed faster than the heater can warm a full cushion (the limit is "
            f"{per_min}, or faster than any full cushion can warm, or faster than this "
            "cushion warmed before at the same power): the cushion may be empty or leaking, "
            "or the heater plate dry. Heating stopped. Check the cushion, then "
            "reset."),
        "rise_while_off": (
            "Warming with the heater off",
            f"With the heater off the water warmed more than {s.rise_while_off_c:g} °C "
            f"(within {off_min}) beyond what the heater plate's stored heat and the room "
            "can explain: a heater relay may be stuck on. The master relay is open. Call "
            "service before using the table again."),
        "stale_telemetry": (
            "No readings from the board",
            f"No readings arrived from the heater board for more than {s.stale_telemetry_s:g} s. "
            "All heaters are off. Check the board's cable and power, then reset."),
        "board_fault": (
            "Heater board fault",
            "The heater board reported a fault (see the detail). All heaters are off. Check the "
            "board, then reset."),
        "control_stall": (
            "Control program stalled",
            f"The control program did not run for {s.control_stall_s:g} s. All heaters are off. "
            "Reset; if it happens again, restart the controller and call service."),
    }


def alarm_texts(cfg: Config) -> dict[str, str]:
    s = cfg.safety
    return {
        "high_temperature": (
            f"The water is warm: more than {s.high_alarm_margin_c:g} °C above the setpoint, or "
            f"above {_c(s.high_alarm_c)}. Check that the client is comfortable."),
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


def _sensor_text(water: dict[str, Any], status: dict[str, Any]) -> str:
    parts = []
    for key in ("primary", "redundant"):
        v = _num(water.get(key))
        st = status.get(key, "unavailable")
        parts.append(f"{v:.2f}" if v is not None and st == "ok" else str(st))
    return f"Sensors {parts[0]} / {parts[1]} °C"


def present_cushion(cfg: Config, c: dict[str, Any], usable: bool) -> dict[str, Any]:
    """One cushion of a state snapshot, for display.  ``usable``: readings are current."""
    i = c.get("cushion", 0)
    water = _num((c.get("water_c") or {}).get("estimate")) if usable else None
    setpoint = _num(c.get("setpoint_c"))
    heat_on = bool(c.get("heat_on"))
    output = _num(c.get("output")) if usable else None
    ready_s = _num(c.get("ready_in_s")) if usable else None
    trips = [{"reason": t.get("reason", "?"),
              "title": trip_text(cfg, t.get("reason", "?"))[0],
              "text": trip_text(cfg, t.get("reason", "?"))[1],
              "detail": str(t.get("detail") or ""), "at": _clock(t.get("at"))}
             for t in c.get("trips") or []]
    alarms = [{"name": a.get("name", "?"), "text": alarm_text(cfg, a.get("name", "?")),
               "detail": str(a.get("detail") or "")} for a in c.get("alarms") or []]
    if trips:
        action = "Stopped by a safety trip"
    elif not heat_on:
        action = "Heating off"
    elif output is None:
        action = "Heating on, no readings"
    elif output > 0.005 or (_num(c.get("requested")) or 0.0) > 0.005:
        action = "Heating"  # what the controller asks for; the board follows within a window
    else:
        action = "Holding temperature"
    ready = ""
    if heat_on and not trips and ready_s is not None and water is not None:
        if ready_s >= 30:
            ready = f"Ready in {math.ceil(ready_s / 60)} min"
        elif setpoint is not None and water >= setpoint - 0.3:
            ready = "At temperature"
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
        "action_text": action,
        "ready_text": ready,
        "trips": trips,
        "alarms": alarms,
        "can_reset": bool(trips),
    }


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
    cushions = [present_cushion(cfg, c, readings_ok) for c in (state or {}).get("cushions", [])]
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
        "cushions": cushions,
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
        return f"Alarm: {reason}"
    if kind == "alarm_cleared":
        return f"Alarm cleared: {reason}"
    if kind == "command_refused":
        return f"Command refused: {reason}"
    if kind == "link_connected":
        return "Heater board connected"
    if kind == "link_disconnected":
        return f"Heater board disconnected ({reason})" if reason else "Heater board disconnected"
    if kind == "board_fault":
        extra = d.get("detail")
        return "Heater board fault" + (f": {extra}" if extra else "")
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
        "text": describe_event(cfg, e),
        "level": "error" if e.get("kind") in ("trip", "reset_refused", "board_fault",
                                              "link_disconnected") else
                 "warning" if e.get("kind") in ("alarm", "command_refused") else "info",
    }
