"""The schedule's part of the OpenAPI document (``openapi.py`` adds it): the paths of
``schedule_api`` and their schemas, with the configured setpoint range."""

from __future__ import annotations

from typing import Any

from hydrotherm.config import ControlConfig

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
         "example": "08:45"}


def schedule_schemas(c: ControlConfig) -> dict[str, Any]:
    sp = {"type": "number", "minimum": c.setpoint_min_c, "maximum": c.setpoint_max_c,
          "description": "°C, rounded to 0.1"}
    return {
        "ScheduleEntry": {
            "type": "object", "additionalProperties": False,
            "required": ["ready_at", "setpoint_c"],
            "properties": {
                "ready_at": {**_HHMM, "description": "local wall-clock time"},
                "setpoint_c": sp,
                "cushion": {"type": "integer", "enum": [0, 1], "nullable": True,
                            "description": "omitted or null: both cushions"},
                "days": {"type": "array", "minItems": 1, "maxItems": 7, "uniqueItems": True,
                         "items": {"type": "string", "enum": _DAYS},
                         "description": "omitted: every day"},
                "until": {**_HHMM, "nullable": True,
                          "description": "then heat off, or standby_c"},
                "standby_c": {**sp, "nullable": True,
                              "description": "with until: below setpoint_c"},
            }},
        "Schedule": {
            "type": "object", "additionalProperties": False, "required": ["entries"],
            "properties": {"enabled": {"type": "boolean", "default": True},
                           "entries": {"type": "array", "maxItems": 28,
                                       "items": {"$ref": "#/components/schemas/"
                                                         "ScheduleEntry"}}}},
        "ScheduleSaved": {
            "type": "object", "required": ["ok", "schedule", "message"],
            "properties": {"ok": {"type": "boolean", "enum": [True]},
                           "schedule": {"type": "object"}, "message": {"type": "string"}}},
        "ScheduleView": {
            "type": "object", "required": ["table_id", "known", "schedule", "view"],
            "properties": {"table_id": {"type": "string"}, "known": {"type": "boolean"},
                           "schedule": {"type": "object", "nullable": True,
                                        "description": "the schedule as stored"},
                           "view": {"type": "object",
                                    "description": "the plan per cushion in words"}}},
    }


def schedule_paths(json_: Any, ref: Any, errors: Any, error: Any) -> dict[str, Any]:
    """``json_``, ``ref``, ``errors``, ``error``: ``openapi.py``'s helpers."""
    params = [{"$ref": "#/components/parameters/table_id"}]
    return {"/api/tables/{table_id}/schedule": {
        "get": {"summary": "The ready-by schedule and its plan", "operationId": "get_schedule",
                "security": [{"session": []}], "parameters": params,
                "responses": {"200": json_(ref("ScheduleView"), "The schedule and the plan."),
                              **errors("400", "401", "404", "502")}},
        "put": {"summary": "Replace the ready-by schedule", "operationId": "put_schedule",
                "security": [{"session": [], "csrf": []}], "parameters": params,
                "description": "Validated here and by the controller, which stores it "
                               "(docs/schedule.md).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": ref("Schedule")}}},
                "responses": {"200": json_(ref("ScheduleSaved"), "Saved by the controller."),
                              "409": json_(ref("CommandRefused"), "The controller refused."),
                              **errors("400", "401", "403", "404", "413", "415", "502",
                                       "503", "504")}},
    }}
