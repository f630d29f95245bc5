"""The OpenAPI 3.0 description of the dashboard's JSON API, built from the configuration
(the setpoint limits in the schema are the configured ones)."""

from __future__ import annotations

from typing import Any

from hydrotherm.config import Config

from .openapi_tools import tools_paths, tools_schemas
from .schedule_openapi import schedule_paths, schedule_schemas

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


ERRORS = {
    "400": "Invalid input; `error` says what is wrong.",
    "401": "Not logged in.",
    "403": "CSRF token missing or invalid (state-changing requests).",
    "404": "No such table on the broker.",
    "409": "The controller refused; `error` is its reason.",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
    "502": "The MQTT broker is unreachable; nothing was sent.",
    "503": "The table is offline; nothing was sent.",
    "504": "The controller did not answer in time.",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _error(ERRORS[code]) for code in codes}


def _command(summary: str, body: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "operationId": summary.lower().replace(" ", "_"),
            "security": [{"session": [], "csrf": []}],
            "parameters": [{"$ref": "#/components/parameters/table_id"}],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(body)}}},
            "responses": {
                "200": _json(_ref("CommandAccepted"), "The controller accepted it."),
                "409": _json(_ref("CommandRefused"), ERRORS["409"]),
                **_errors("400", "401", "403", "404", "413", "415", "502", "503", "504"),
            },
        }
    }


def openapi_document(cfg: Config, demo: bool = False, example_table: str = "table0"
                     ) -> dict[str, Any]:
    c = cfg.control
    nullable_number = {"type": "number", "nullable": True}
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status", "broker", "tables"],
                   "properties": {"status": {"type": "string"},
                                  "broker": {"type": "boolean"},
                                  "tables": {"type": "integer", "minimum": 0}}},
        "TableView": {
            "type": "object",
            "required": ["table_id", "status", "readings", "state", "state_received_at",
                         "state_updates"],
            "properties": {
                "table_id": {"type": "string"},
                "status": {"type": "string", "description": "online, offline or unknown"},
                "readings": {"type": "string",
                             "description": "online while the board link is healthy"},
                "state": {"type": "object", "nullable": True,
                          "description": "The controller's latest snapshot (MQTT state "
                                         "topic, docs/mqtt.md); null before the first."},
                "state_received_at": nullable_number,
                "state_updates": {"type": "integer", "minimum": 0},
                "last_live_at": {**nullable_number,
                                 "description": "unix time of the last live (not retained) "
                                                "message; null if none since the "
                                                "dashboard started"},
            },
        },
        "TableList": {"type": "object", "required": ["broker", "tables"],
                      "properties": {"broker": {"type": "boolean"},
                                     "broker_error": {"type": "string"},
                                     "tables": {"type": "array", "items": _ref("TableView")}}},
        "Table": {"allOf": [_ref("TableView"), {
            "type": "object", "required": ["broker", "view"],
            "properties": {"broker": {"type": "boolean"},
                           "view": {"type": "object",
                                    "description": "The same table as the page shows it: "
                                                   "texts, problems, trips in plain words."}}}]},
        "SetpointRequest": {
            "type": "object", "additionalProperties": False, "required": ["cushion", "value"],
            "properties": {
                "cushion": _ref("Cushion"),
                "value": {"type": "number", "minimum": c.setpoint_min_c,
                          "maximum": c.setpoint_max_c, "multipleOf": c.setpoint_step_c,
                          "description": "°C"},
            },
        },
        "HeatRequest": {
            "type": "object", "additionalProperties": False, "required": ["cushion", "on"],
            "properties": {"cushion": _ref("Cushion"), "on": {"type": "boolean"}},
        },
        "ResetRequest": {
            "type": "object", "additionalProperties": False,
            "properties": {"cushion": _ref("Cushion")},
            "description": "Without cushion: every latched trip of the table.",
        },
        "Cushion": {"type": "integer", "enum": [0, 1],
                    "description": "0 upper body, 1 lower body"},
        "CommandAccepted": {
            "type": "object", "required": ["ok", "message", "reply"],
            "properties": {"ok": {"type": "boolean", "enum": [True]},
                           "message": {"type": "string"},
                           "reply": {"type": "object",
                                     "description": "The controller's reply (docs/mqtt.md)."}},
        },
        "CommandRefused": {
            "type": "object", "required": ["ok", "error", "message", "reply"],
            "properties": {"ok": {"type": "boolean", "enum": [False]},
                           "error": {"type": "string"}, "message": {"type": "string"},
                           "reply": {"type": "object"}},
        },
        "Event": {
            "type": "object", "required": ["id", "time", "kind", "text"],
            "properties": {
                "id": {"type": "integer"}, "time": {"type": "number"},
                "iso": {"type": "string"}, "kind": {"type": "string"},
                "cushion": {"type": "integer", "nullable": True},
                "actor": {"type": "string", "nullable": True},
                "reason": {"type": "string", "nullable": True},
                "detail": {"type": "object"},
                "text": {"type": "string", "description": "The event in words."},
            },
        },
        "EventList": {"type": "object", "required": ["table_id", "since", "events"],
                      "properties": {"table_id": {"type": "string"},
                                     "since": {"type": "number"},
                                     "events": {"type": "array", "items": _ref("Event")}}},
        "History": {
            "type": "object",
            "required": ["table_id", "cushion", "range", "since", "step", "columns", "samples"],
            "properties": {
                "table_id": {"type": "string"}, "cushion": _ref("Cushion"),
                "range": {"type": "string"}, "since": {"type": "number"},
                "step": {"type": "integer", "minimum": 1},
                "columns": {"type": "array", "items": {"type": "string"}},
                "samples": {"type": "array", "items": {"type": "array",
                                                       "items": nullable_number},
                            "description": "rows of [time, water_c, setpoint_c, output]"},
            },
        },
    }
    common_get = {"security": [{"session": []}],
                  "parameters": [{"$ref": "#/components/parameters/table_id"}]}
    paths: dict[str, Any] = {
        "/healthz": {"get": {
            "summary": "Health", "operationId": "health", "security": [],
            "responses": {"200": _json(_ref("Health"), "The broker is connected."),
                          "503": _json(_ref("Health"), "The broker is unreachable.")}}},
        "/api/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")}}},
        "/api/tables": {"get": {
            "summary": "Every table on the broker", "operationId": "list_tables",
            "security": [{"session": []}],
            "responses": {"200": _json(_ref("TableList"), "The tables and the broker state."),
                          **_errors("400", "401")}}},
        "/api/tables/{table_id}": {"get": {
            **common_get, "summary": "One table's latest state", "operationId": "get_table",
            "responses": {"200": _json(_ref("Table"), "Its latest state."),
                          **_errors("400", "401", "404", "502")}},
            "delete": {
                **common_get, "summary": "Remove a gone table", "operationId": "remove_table",
                "security": [{"session": [], "csrf": []}],
                "description": "Forget a table silent for longer than "
                               f"dashboard.table_gone_after_min "
                               f"({cfg.dashboard.table_gone_after_min:g} min); it returns "
                               "if it publishes again.",
                "responses": {"200": _json({"type": "object",
                                            "required": ["ok", "removed", "message"],
                                            "properties": {
                                                "ok": {"type": "boolean"},
                                                "removed": {"type": "string"},
                                                "message": {"type": "string"}}},
                                           "Removed."),
                              **_errors("400", "401", "403", "404", "502"),
                              "409": _error("The table is not gone: it was heard recently.")}}},
        "/api/tables/{table_id}/setpoint": _command(
            "Set setpoint", "SetpointRequest",
            f"Change a cushion's setpoint ({c.setpoint_min_c:g}–{c.setpoint_max_c:g} °C, "
            f"steps of {c.setpoint_step_c:g} °C)."),
        "/api/tables/{table_id}/heat": _command(
            "Set heat", "HeatRequest", "Switch a cushion's heating on or off."),
        "/api/tables/{table_id}/reset": _command(
            "Reset trips", "ResetRequest",
            "Ask the controller to clear latched trips; each clears only if its cause has "
            "gone (409 with the reason otherwise)."),
        "/api/tables/{table_id}/events": {"get": {
            **common_get, "summary": "Event log", "operationId": "get_events",
            "parameters": [
                {"$ref": "#/components/parameters/table_id"},
                {"name": "since", "in": "query", "required": False,
                 "description": "unix time (s); default: 24 h ago",
                 "schema": {"type": "number"}},
                {"name": "limit", "in": "query", "required": False,
                 "description": "the newest N (default 200)",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json(_ref("EventList"), "Events, oldest first."),
                          **_errors("400", "401", "404", "409", "502", "503", "504")}}},
        "/api/tables/{table_id}/history": {"get": {
            **common_get, "summary": "Temperature history", "operationId": "get_history",
            "parameters": [
                {"$ref": "#/components/parameters/table_id"},
                {"name": "cushion", "in": "query", "required": True,
                 "schema": _ref("Cushion")},
                {"name": "range", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["1h", "6h", "24h", "7d"],
                            "default": "1h"}}],
            "responses": {"200": _json(_ref("History"), "Samples, oldest first."),
                          **_errors("400", "401", "404", "409", "502", "503", "504")}}},
        "/api/tables/{table_id}/stream": {"get": {
            **common_get, "summary": "Live updates of one table",
            "operationId": "stream_table",
            "description": "Server-Sent Events: `table` (the table as the page shows it), "
                           "`event` (an event-log entry), `broker` (connected or not); a "
                           "comment line every 15 s when nothing happens.",
            "responses": {
                "200": {"description": "An endless event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                **_errors("401", "404"),
                "503": _error("Too many live connections."),
            }}},
        "/api/stream": {"get": {
            "summary": "Live updates of every table", "operationId": "stream_all",
            "security": [{"session": []}],
            "responses": {
                "200": {"description": "An endless event stream (as per table).",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                **_errors("401"),
                "503": _error("Too many live connections."),
            }}},
    }
    schemas.update(schedule_schemas(c))
    paths.update(schedule_paths(_json, _ref, _errors, _error))
    schemas.update(tools_schemas(cfg))
    paths.update(tools_paths(ERRORS))
    if demo:
        schemas["DemoFault"] = {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64},
                           "params": {"type": "object"}}}
        paths["/api/demo/fault"] = {"post": {
            "summary": "Tester panel: inject (params.clear: remove) a simulated fault; "
                       "name \"status\" answers the table's active faults",
            "operationId": "demo_fault",
            "security": [{"session": [], "csrf": []}],
            "requestBody": {"required": True,
                            "content": {JSON: {"schema": _ref("DemoFault")}}},
            "responses": {"200": _json({"type": "object"}, "Done."),
                          **_errors("400", "401", "403", "413", "415")}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Hydrotherm dashboard API", "version": "1",
                 "description": "The JSON API the therapist's dashboard page uses. Log in at "
                                "/login (session cookie); state-changing requests also need "
                                "the page's CSRF token in an X-CSRFToken header."},
        "servers": [{"url": "/"}],
        "security": [{"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {"table_id": {
                "name": "table_id", "in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                           "pattern": r"^[^/+#\s]+$", "example": example_table}}},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "hydrotherm_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
        },
    }
