"""The schedule's JSON API: ``GET`` and ``PUT /api/tables/<id>/schedule`` (the editor on
the table page uses it).  The body is validated here with the controller's own rules
(``controller.schedule.model``), so a bad entry is a 400 with the reason before anything
is sent; the controller validates again, stores it and replies (``cmd/schedule``)."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask_login import current_user, login_required

from controller.schedule.model import ScheduleError, parse_schedule

from .api import ApiError, _require_table, call, json_body, query_args
from .context import Dashboard
from .schedule_view import present_schedule


def register_schedule_api(app: Flask, dash: Dashboard) -> None:
    ctl = dash.cfg.control

    @app.get("/api/tables/<table_id>/schedule")
    @login_required
    def get_schedule(table_id: str) -> Any:
        _require_table(dash, table_id)
        query_args(())
        view = dash.fleet.table(table_id)
        state = view.as_dict().get("state") if view is not None else None
        sched = (state or {}).get("schedule")
        return jsonify(table_id=table_id, known=isinstance(sched, dict),
                       schedule=(sched or {}).get("schedule") if isinstance(sched, dict)
                       else None, view=present_schedule(state))

    @app.put("/api/tables/<table_id>/schedule")
    @login_required
    def put_schedule(table_id: str) -> Any:
        _require_table(dash, table_id)
        body = json_body(("enabled", "entries"), ("entries",))
        try:
            sched = parse_schedule(body, ctl.setpoint_min_c, ctl.setpoint_max_c)
        except ScheduleError as exc:
            dash.metrics.commands.labels("schedule", "invalid").inc()
            raise ApiError(400, str(exc)) from None
        reply = call(dash, table_id, "schedule",
                     {**sched.as_dict(), "actor": current_user.name})
        if reply.get("ok"):
            n = len(sched.entries)
            return jsonify(ok=True, schedule=reply.get("schedule"),
                           message=f"Schedule saved: {n} entr{'y' if n == 1 else 'ies'}"
                                   + ("" if sched.enabled else " (switched off)"))
        return jsonify(ok=False, error=str(reply.get("error", "refused")),
                       message=f"Refused by the table: {reply.get('error')}",
                       reply=reply), 409
