"""The therapist's tools and the trip alerts, under ``/api/``: presets, session timers,
energy used today, alert acknowledgement.  Separate from ``api.py`` (the table's own
commands) so each can change without the other; the same validation and errors.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from flask import Flask, jsonify
from flask_login import current_user, login_required

from .alerts import current_alerts
from .api import ApiError, _require_table, call, check_setpoint, json_body, query_args
from .context import Dashboard
from .plain import refusal_text
from .present import cushion_name
from .presets import PresetError, check_name
from .timers import ACTION_TEXTS, ACTIONS, MAX_MINUTES

#: a gap between history samples longer than this is "no data", not "the same output"
ENERGY_MAX_GAP_S = 120.0
ENERGY_NOTE = "estimated from the applied output × the rated heater power"


def _presets_body(dash: Dashboard, *, with_name: bool) -> tuple[str | None, list[float]]:
    fields = ("name", "setpoints") if with_name else ("setpoints",)
    body = json_body(fields, fields)
    name = None
    if with_name:
        try:
            name = check_name(body["name"])
        except PresetError as exc:
            raise ApiError(400, str(exc)) from None
    sps = body["setpoints"]
    if not isinstance(sps, list) or len(sps) != 2:
        raise ApiError(400, "setpoints must be a list of two numbers: "
                            "[upper body °C, lower body °C]")
    return name, [check_setpoint(dash, v) for v in sps]


def energy_kwh(samples: list[list[Any]], heater_w: float) -> tuple[float, float]:
    """(kWh, seconds covered) from history rows ``[time, water, setpoint, output]``:
    each interval's output (the earlier sample's) times the rated power; gaps longer
    than ENERGY_MAX_GAP_S count as unknown, not as heating."""
    joules = 0.0
    covered = 0.0
    prev: tuple[float, float] | None = None
    for row in samples:
        if not isinstance(row, list) or len(row) < 4:
            continue
        t, out = row[0], row[3]
        if not isinstance(t, int | float) or not math.isfinite(t):
            continue
        if prev is not None:
            dt = t - prev[0]
            if 0 < dt <= ENERGY_MAX_GAP_S:
                joules += prev[1] * heater_w * dt
                covered += dt
        o = float(out) if isinstance(out, int | float) and math.isfinite(out) else 0.0
        prev = (float(t), min(1.0, max(0.0, o)))
    return joules / 3.6e6, covered


def midnight(now: float) -> float:
    d = datetime.fromtimestamp(now)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def register_tools(app: Flask, dash: Dashboard) -> None:
    cfg = dash.cfg

    def user() -> str:
        return current_user.name

    # --- alerts --------------------------------------------------------------------------

    @app.get("/api/alerts")
    @login_required
    def alerts() -> Any:
        query_args(())
        return jsonify(alerts=current_alerts(dash.fleet.snapshot(), dash.acks))

    @app.post("/api/alerts/ack")
    @login_required
    def ack() -> Any:
        body = json_body(("key",), ("key",))
        key = body["key"]
        if not isinstance(key, str) or not 0 < len(key) <= 300:
            raise ApiError(400, "key must be the alert's key (text)")
        match = [a for a in current_alerts(dash.fleet.snapshot(), dash.acks)
                 if a["key"] == key]
        if not match:
            raise ApiError(404, "no such trip is latched now (reset already?)")
        row = dash.acks.acknowledge(key, user(), match[0])
        return jsonify(ok=True, acknowledged=row,
                       message=f"Alarm acknowledged by {row['user']}; the trip stays "
                               "latched until it is reset at the table.")

    # --- presets -------------------------------------------------------------------------

    @app.get("/api/presets")
    @login_required
    def presets() -> Any:
        query_args(())
        return jsonify(presets=dash.presets.all())

    @app.post("/api/presets")
    @login_required
    def preset_create() -> Any:
        name, sps = _presets_body(dash, with_name=True)
        assert name is not None
        try:
            dash.presets.put(name, sps, create=True)
        except PresetError as exc:
            raise ApiError(409 if "exists" in str(exc) else 400, str(exc)) from None
        return jsonify(ok=True, preset={"name": name, "setpoints": sps}), 201

    def _existing(name: str) -> str:
        try:
            name = check_name(name)
        except PresetError as exc:
            raise ApiError(400, str(exc)) from None
        if dash.presets.get(name) is None:
            raise ApiError(404, f"no preset named {name!r}")
        return name

    @app.put("/api/presets/<name>")
    @login_required
    def preset_update(name: str) -> Any:
        name = _existing(name)
        _, sps = _presets_body(dash, with_name=False)
        dash.presets.put(name, sps, create=False)
        return jsonify(ok=True, preset={"name": name, "setpoints": sps})

    @app.delete("/api/presets/<name>")
    @login_required
    def preset_delete(name: str) -> Any:
        name = _existing(name)
        dash.presets.delete(name)
        return jsonify(ok=True, deleted=name)

    @app.post("/api/tables/<table_id>/preset")
    @login_required
    def preset_apply(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = json_body(("name",), ("name",))
        if not isinstance(body["name"], str):
            raise ApiError(400, "name must be text")
        name = _existing(body["name"])
        sps = dash.presets.get(name) or []
        done = []
        for i, value in enumerate(sps):
            reply = call(dash, table_id, "setpoint",
                         {"cushion": i, "value": value, "actor": user()})
            if not reply.get("ok"):
                raise ApiError(409, f"{cushion_name(i)}: {refusal_text(reply.get('error'))}",
                               message=f"Preset {name!r} not fully applied: "
                                       f"{cushion_name(i)}: "
                                       f"{refusal_text(reply.get('error'))}")
            done.append(f"{cushion_name(i)} {value:.1f} °C")
        return jsonify(ok=True, message=f"Preset {name!r} applied: " + ", ".join(done))

    # --- session timers ------------------------------------------------------------------

    @app.get("/api/timers")
    @login_required
    def timers() -> Any:
        query_args(())
        return jsonify(timers=dash.timers.all(), now=time.time())

    @app.post("/api/tables/<table_id>/timer")
    @login_required
    def timer_start(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = json_body(("minutes", "action"), ("minutes",))
        minutes = body["minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                or not math.isfinite(minutes) or not 1 <= minutes <= MAX_MINUTES:
            raise ApiError(400, f"minutes must be a number 1–{MAX_MINUTES}, got {minutes!r}")
        action = body.get("action", "none")
        if action not in ACTIONS:
            raise ApiError(400, f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        t = dash.timers.start(table_id, float(minutes), action, user())
        return jsonify(ok=True, timer=t,
                       message=f"Session timer {minutes:g} min started; at the end: "
                               f"{ACTION_TEXTS[action]}.")

    @app.delete("/api/tables/<table_id>/timer")
    @login_required
    def timer_cancel(table_id: str) -> Any:
        query_args(())
        if not dash.timers.cancel(table_id):
            raise ApiError(404, f"no session timer runs for table {table_id}")
        return jsonify(ok=True, message="Session timer stopped.")

    # --- energy --------------------------------------------------------------------------

    @app.get("/api/tables/<table_id>/energy")
    @login_required
    def energy(table_id: str) -> Any:
        _require_table(dash, table_id)
        query_args(())
        now = time.time()
        since = midnight(now)
        per = []
        for i in (0, 1):
            reply = call(dash, table_id, "history",
                         {"cushion": i, "since": since, "max_points": 2000})
            if not reply.get("ok"):
                raise ApiError(409, f"the controller refused: {reply.get('error')}")
            kwh, covered = energy_kwh(reply.get("samples") or [], cfg.plant.heater_w)
            per.append({"cushion": i, "kwh": round(kwh, 4), "covered_s": round(covered)})
        total = sum(p["kwh"] for p in per)
        return jsonify(table_id=table_id, since=since, kwh=round(total, 4), cushions=per,
                       heater_w=cfg.plant.heater_w, note=ENERGY_NOTE,
                       text=f"Energy today ≈ {total:.2f} kWh ({ENERGY_NOTE}, "
                            f"{cfg.plant.heater_w:g} W per cushion)")


def timer_runner(dash: Dashboard) -> Any:
    """What a session timer's end does, from the timer thread (no request): ordinary
    commands to both cushions, with the actor ``session timer (<user>)``."""

    def run(table_id: str, action: str, user: str) -> str | None:
        if action == "none":
            return "Session over."
        if not dash.fleet.broker_connected:
            return None  # not yet: the timer thread tries again
        actor = f"session timer ({user})"[:64]
        done = []
        for i in (0, 1):
            if action == "standby":
                body: dict[str, Any] = {"cushion": i, "actor": actor,
                                        "value": dash.cfg.dashboard.standby_setpoint_c}
                name = "setpoint"
            else:
                body = {"cushion": i, "on": False, "actor": actor}
                name = "heat"
            try:
                reply = call(dash, table_id, name, body)
            except ApiError as exc:
                done.append(f"{cushion_name(i)}: not done ({exc.body['error']})")
                continue
            if reply.get("ok"):
                done.append(f"{cushion_name(i)}: "
                            + (f"standby {body['value']:.1f} °C" if name == "setpoint"
                               else "heating off"))
            else:
                done.append(f"{cushion_name(i)}: not done "
                            f"({refusal_text(reply.get('error'))})")
        return "Session over: " + "; ".join(done)

    return run
