"""The JSON API under ``/api/`` (the page's own; described by ``/api/openapi.json``).

Every input is validated here with a reason a person can read (the controller validates
again): a body must be a JSON object with exactly the documented fields, a cushion is the
integer 0 or 1, a setpoint a number within the configured range on its 0.1 °C grid, a
boolean a real JSON boolean, and a body nests at most ``MAX_JSON_DEPTH`` levels.  Errors are
``{"error": reason}`` with 400 (bad input), 401 (not logged in), 403 (CSRF), 404 (unknown
table), 409 (the controller refused), 415 (not JSON), 502 (broker unreachable), 503 (table
offline) or 504 (no answer in time).

A heat-off is never refused because the table's status topic says ``offline`` (a status
can be stale or spoofed, and switching off is always safe): when in doubt, it is sent.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from flask_login import current_user, login_required

from controller.heat_state import trip_title
from controller.mqtt.fleet_payloads import json_depth

from .context import Dashboard
from .live import sse_stream
from .openapi import openapi_document
from .plain import refusal_text
from .present import cushion_name, present_event

#: chart ranges offered by the page (seconds of history)
HISTORY_RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600}
#: event page ranges
EVENT_RANGES = {"1h": 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600, "30d": 30 * 24 * 3600}
HISTORY_POINTS = 900
EVENTS_MAX = 1000
#: request bodies nest at most this deep (ours nest 2 levels; Python's parser would raise
#: RecursionError, a 500, for ~1000)
MAX_JSON_DEPTH = 8


class ApiError(Exception):
    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}


# --- validation ---------------------------------------------------------------------------

def json_body(allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "the body must be JSON (Content-Type: application/json)")
    depth = json_depth(request.get_data(cache=True).decode("utf-8", "replace"))
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, f"the body nests {depth} levels deep (at most {MAX_JSON_DEPTH})")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # not reachable after the depth check; never a 500 anyway
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(unknown)} "
                            f"(allowed: {', '.join(allowed) or 'none'})")
    missing = [k for k in required if k not in data]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    return data


def check_cushion(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
        raise ApiError(400, f"cushion must be 0 (upper body) or 1 (lower body), got {value!r}")
    return value


def check_setpoint(dash: Dashboard, value: Any) -> float:
    c = dash.cfg.control
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"setpoint must be a number in °C, got {value!r}")
    if not math.isfinite(value):
        raise ApiError(400, "setpoint must be a finite number")
    if not c.setpoint_min_c <= value <= c.setpoint_max_c:
        raise ApiError(400, f"setpoint {value:g} °C is outside {c.setpoint_min_c:g}–"
                            f"{c.setpoint_max_c:g} °C")
    # Judged on the number as written (its shortest decimal form), as JSON Schema's
    # multipleOf is: 37.3 is on the 0.1 grid, 37.300000000000004 is not.
    if Decimal(repr(value)) % Decimal(repr(c.setpoint_step_c)) != 0:
        raise ApiError(400, f"setpoint {value!r} °C is not a multiple of "
                            f"{c.setpoint_step_c:g} °C")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false, got {value!r}")
    return value


def query_args(allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)} "
                            f"(allowed: {', '.join(allowed)})")
    out = {}
    for key in request.args:
        values = request.args.getlist(key)
        if len(values) != 1:
            raise ApiError(400, f"{key} given {len(values)} times")
        out[key] = values[0]
    return out


def _query_number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number")
    return value


def _query_int(text: str, name: str, lo: int, hi: int) -> int:
    if not text.isdigit() or not text.isascii():
        raise ApiError(400, f"{name} must be a whole number {lo}–{hi}, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be a whole number {lo}–{hi}, got {value}")
    return value


# --- talking to a controller (through the FleetClient) -------------------------------------

def _require_table(dash: Dashboard, table_id: str) -> None:
    """404 for a table the broker never mentioned; with the broker unreachable nobody
    can tell, so that is a 502."""
    if dash.fleet.table(table_id) is None:
        if not dash.fleet.broker_connected:
            raise ApiError(502, f"broker unreachable: table {table_id!r} is not known yet")
        raise ApiError(404, f"no table {table_id!r} on the broker")


def always_sent(name: str, body: dict[str, Any]) -> bool:
    """Commands sent whatever the table's status topic says: switching heat off."""
    return name == "heat" and body.get("on") is False


def call(dash: Dashboard, table_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Send a command or query; return the controller's reply (``ok`` true or false) or
    raise ApiError 502/503/504 when it could not be asked or did not answer.  A table
    whose status says offline gets only a heat-off (``always_sent``)."""
    fleet = dash.fleet
    if not fleet.broker_connected:
        dash.metrics.commands.labels(name, "unreachable").inc()
        why = f" ({fleet.last_error})" if fleet.last_error else ""
        raise ApiError(502, f"broker unreachable{why}: nothing was sent")
    view = fleet.table(table_id)
    if view is not None and view.status == "offline" and not always_sent(name, body):
        dash.metrics.commands.labels(name, "offline").inc()
        raise ApiError(503, f"table {table_id} is offline: its controller is not running or "
                            "has lost the broker; nothing was sent")
    reply = fleet.command(table_id, name, body, timeout_s=dash.cfg.dashboard.command_timeout_s)
    if "command" not in reply:  # the FleetClient's own failure: not the controller's answer
        error = str(reply.get("error", "no reply"))
        if error.startswith("no reply"):
            dash.metrics.commands.labels(name, "timeout").inc()
            if always_sent(name, body):
                error = f"heat-off sent, but {error}: check the table"
            raise ApiError(504, error)
        dash.metrics.commands.labels(name, "unreachable").inc()
        raise ApiError(502, error)
    dash.metrics.commands.labels(name, "ok" if reply.get("ok") else "refused").inc()
    return reply


def command_message(name: str, cushion: int | None, reply: dict[str, Any]) -> str:
    who = cushion_name(cushion)
    if not reply.get("ok"):
        return f"{who}: the controller refused: {refusal_text(reply.get('error'))}"
    if name == "setpoint":
        return f"{who}: setpoint set to {reply.get('setpoint_c', 0):.1f} °C"
    if name == "heat":
        return f"{who}: heating switched {'on' if reply.get('heat_on') else 'off'}"
    cleared = reply.get("cleared") or []
    if not cleared:
        return f"{who}: reset accepted; no trip was latched"
    titles = [trip_title(str(c)) for c in cleared]
    return f"{who}: reset accepted; cleared: {', '.join(titles)}"


def command_response(name: str, cushion: int | None, reply: dict[str, Any]) -> Any:
    message = command_message(name, cushion, reply)
    if reply.get("ok"):
        return jsonify(ok=True, message=message, reply=reply)
    return jsonify(ok=False, error=str(reply.get("error", "refused")), message=message,
                   reply=reply), 409


#: what a flood of routine events (refused commands) must never push off the event page
SAFETY_KINDS = ["trip", "trip_reset", "reset_refused", "board_fault", "alarm",
                "alarm_cleared", "link_disconnected"]


def query_events(dash: Dashboard, table_id: str, since: float, limit: int,
                 until: float | None = None, kinds: list[str] | None = None
                 ) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Events for a page (presented, newest first), or (None, reason) when they cannot be
    had.  When the newest ``limit`` events do not reach back to ``since`` (600 refused
    commands would do that), the safety events of the range are asked for separately
    and merged in, so a trip is never pushed off the page.  ``until`` and ``kinds``
    narrow the query (the event page's filters and paging)."""
    if dash.fleet.table(table_id) is None:
        return None, f"no table {table_id!r} on the broker"
    narrow: dict[str, Any] = {}
    if until is not None:
        narrow["until"] = until
    if kinds:
        narrow["kinds"] = kinds
    try:
        reply = call(dash, table_id, "events", {"since": since, "limit": limit, **narrow})
    except ApiError as exc:
        return None, exc.body["error"]
    if not reply.get("ok"):
        return None, str(reply.get("error"))
    events = [e for e in reply.get("events", []) if isinstance(e, dict)]
    if len(events) >= limit:
        safety = [k for k in SAFETY_KINDS if not kinds or k in kinds]
        try:
            extra = call(dash, table_id, "events",
                         {"since": since, "limit": limit, **narrow, "kinds": safety}) \
                if safety else {}
        except ApiError:
            extra = {}
        seen = {e.get("id") for e in events}
        events += [e for e in extra.get("events", []) if isinstance(e, dict)
                   and e.get("id") not in seen] if extra.get("ok") else []
        events.sort(key=lambda e: (e.get("time") if isinstance(e.get("time"), int | float)
                                   else 0.0, e.get("id") or 0))
    return [present_event(dash.cfg, e) for e in reversed(events)], None


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- routes -------------------------------------------------------------------------------

def register_api(app: Flask, dash: Dashboard) -> None:
    cfg = dash.cfg

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return jsonify(exc.body), exc.status

    def actor() -> str:
        return current_user.name

    @app.get("/api/openapi.json")
    def openapi() -> Any:
        return jsonify(openapi_document(cfg, demo=dash.demo,
                                        example_table=dash.default_table()))

    @app.get("/api/tables")
    @login_required
    def tables() -> Any:
        query_args(())
        return jsonify(broker=dash.fleet.broker_connected, broker_error=dash.fleet.last_error,
                       tables=list(dash.fleet.snapshot().values()))

    @app.get("/api/tables/<table_id>")
    @login_required
    def table(table_id: str) -> Any:
        _require_table(dash, table_id)
        query_args(())
        view = dash.fleet.table(table_id)
        assert view is not None
        return jsonify(**view.as_dict(), broker=dash.fleet.broker_connected,
                       view=dash.presented(table_id))

    @app.delete("/api/tables/<table_id>")
    @login_required
    def remove_table(table_id: str) -> Any:
        """Forget a table that has been silent longer than dashboard.table_gone_after_min
        (a retired table, or a fake one); it comes back if it ever speaks again."""
        _require_table(dash, table_id)
        query_args(())
        view = dash.fleet.table(table_id)
        assert view is not None
        silent = view.silent_s()
        if silent < dash.gone_after_s:
            raise ApiError(409, f"table {table_id} is not gone: it was heard "
                                f"{_ago(silent)} ago; a table can be removed after "
                                f"{cfg.dashboard.table_gone_after_min:g} min of silence")
        dash.fleet.forget(table_id)
        return jsonify(ok=True, removed=table_id,
                       message=f"table {table_id} removed from the fleet (silent for "
                               f"{_ago(silent)}); it returns if it publishes again")

    @app.post("/api/tables/<table_id>/setpoint")
    @login_required
    def setpoint(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = _validated(lambda: json_body(("cushion", "value"), ("cushion", "value")),
                          "setpoint")
        cushion = _validated(lambda: check_cushion(body["cushion"]), "setpoint")
        value = _validated(lambda: check_setpoint(dash, body["value"]), "setpoint")
        reply = call(dash, table_id, "setpoint",
                     {"cushion": cushion, "value": value, "actor": actor()})
        return command_response("setpoint", cushion, reply)

    @app.post("/api/tables/<table_id>/heat")
    @login_required
    def heat(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = _validated(lambda: json_body(("cushion", "on"), ("cushion", "on")), "heat")
        cushion = _validated(lambda: check_cushion(body["cushion"]), "heat")
        on = _validated(lambda: check_bool(body["on"], "on"), "heat")
        reply = call(dash, table_id, "heat", {"cushion": cushion, "on": on, "actor": actor()})
        return command_response("heat", cushion, reply)

    @app.post("/api/tables/<table_id>/reset")
    @login_required
    def reset(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = _validated(lambda: json_body(("cushion",), ()), "reset")
        cushion = None
        if "cushion" in body:
            cushion = _validated(lambda: check_cushion(body["cushion"]), "reset")
        req: dict[str, Any] = {"actor": actor()}
        if cushion is not None:
            req["cushion"] = cushion
        reply = call(dash, table_id, "reset", req)
        return command_response("reset", cushion, reply)

    def _validated(fn: Any, name: str) -> Any:
        try:
            return fn()
        except ApiError:
            dash.metrics.commands.labels(name, "invalid").inc()
            raise

    @app.get("/api/tables/<table_id>/events")
    @login_required
    def events(table_id: str) -> Any:
        _require_table(dash, table_id)
        args = query_args(("since", "limit"))
        now = time.time()
        since = _query_number(args["since"], "since") if "since" in args else now - 86400
        limit = _query_int(args["limit"], "limit", 1, EVENTS_MAX) if "limit" in args else 200
        reply = call(dash, table_id, "events", {"since": since, "limit": limit})
        if not reply.get("ok"):
            raise ApiError(409, f"the controller refused: {reply.get('error')}")
        rows = [{**e, "text": present_event(cfg, e)["text"]} for e in reply.get("events", [])]
        return jsonify(table_id=table_id, since=since, events=rows)

    @app.get("/api/tables/<table_id>/history")
    @login_required
    def history(table_id: str) -> Any:
        _require_table(dash, table_id)
        args = query_args(("cushion", "range"))
        if "cushion" not in args:
            raise ApiError(400, "cushion is required: 0 (upper body) or 1 (lower body)")
        if args["cushion"] not in ("0", "1"):
            raise ApiError(400, f"cushion must be 0 or 1, got {args['cushion']!r}")
        cushion = int(args["cushion"])
        rng = args.get("range", "1h")
        if rng not in HISTORY_RANGES:
            raise ApiError(400, f"range must be one of {', '.join(HISTORY_RANGES)}, "
                                f"got {rng!r}")
        since = time.time() - HISTORY_RANGES[rng]
        reply = call(dash, table_id, "history",
                     {"cushion": cushion, "since": since, "max_points": HISTORY_POINTS})
        if not reply.get("ok"):
            raise ApiError(409, f"the controller refused: {reply.get('error')}")
        return jsonify(table_id=table_id, cushion=cushion, range=rng, since=since,
                       step=reply.get("step", 1), columns=reply.get("columns", []),
                       samples=reply.get("samples", []))

    def stream(table_id: str | None) -> Any:
        sub = dash.broadcaster.subscribe(table_id)
        if sub is None:
            resp = jsonify(error="too many live connections: close another dashboard tab or "
                                 "raise dashboard.threads")
            resp.status_code = 503
            resp.headers["Retry-After"] = "10"
            return resp
        body = sse_stream(dash.broadcaster, sub, table_id, dash.heartbeat_s)
        return Response(body, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/tables/<table_id>/stream")
    @login_required
    def table_stream(table_id: str) -> Any:
        if dash.fleet.table(table_id) is None and table_id != dash.default_table() \
                and dash.fleet.broker_connected:
            raise ApiError(404, f"no table {table_id!r} on the broker")
        return stream(table_id)

    @app.get("/api/stream")
    @login_required
    def all_stream() -> Any:
        return stream(None)

    @app.post("/api/demo/fault")
    @login_required
    def demo_fault() -> Any:
        if not dash.demo or dash.demo_actions is None:
            abort(404)
        body = json_body(("name", "params"), ("name",))
        name = body["name"]
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise ApiError(400, "name must be a fault name")
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise ApiError(400, "params must be a JSON object")
        result = dash.demo_actions(name, params)
        if not result.get("ok", False):
            raise ApiError(400, str(result.get("error", "refused")))
        return jsonify(ok=True, result=result)
