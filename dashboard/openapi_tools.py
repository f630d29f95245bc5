"""The OpenAPI description of the tools and alerts API (``tools_api.py``), merged into
``openapi.openapi_document`` so ``/api/openapi.json`` covers every route."""

from __future__ import annotations

from typing import Any

from hydrotherm.config import Config

from .presets import MAX_NAME
from .timers import ACTIONS, MAX_MINUTES

JSON = "application/json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


OK = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"},
                                                           "message": {"type": "string"}}}
WRITE = [{"session": [], "csrf": []}]
READ = [{"session": []}]
TABLE = {"$ref": "#/components/parameters/table_id"}
NAME = {"name": "name", "in": "path", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
                   "pattern": r"^[^/\x00-\x1f]+$"}}


def tools_schemas(cfg: Config) -> dict[str, Any]:
    c = cfg.control
    sp = {"type": "number", "minimum": c.setpoint_min_c, "maximum": c.setpoint_max_c,
          "multipleOf": c.setpoint_step_c}
    return {
        "Setpoints": {"type": "array", "items": sp, "minItems": 2, "maxItems": 2,
                      "description": "[upper body °C, lower body °C]"},
        "Preset": {"type": "object", "additionalProperties": False,
                   "required": ["name", "setpoints"],
                   "properties": {"name": {"type": "string", "minLength": 1,
                                           "maxLength": MAX_NAME, "pattern": r"^\S(.*\S)?$"},
                                  "setpoints": {"$ref": "#/components/schemas/Setpoints"}}},
        "PresetUpdate": {"type": "object", "additionalProperties": False,
                         "required": ["setpoints"],
                         "properties": {"setpoints": {"$ref": "#/components/schemas/Setpoints"}}},
        "PresetApply": {"type": "object", "additionalProperties": False, "required": ["name"],
                        "properties": {"name": {"type": "string", "minLength": 1,
                                                "maxLength": MAX_NAME}}},
        "TimerStart": {"type": "object", "additionalProperties": False,
                       "required": ["minutes"],
                       "properties": {"minutes": {"type": "number", "minimum": 1,
                                                  "maximum": MAX_MINUTES},
                                      "action": {"type": "string", "enum": list(ACTIONS)}}},
        "AlertAck": {"type": "object", "additionalProperties": False, "required": ["key"],
                     "properties": {"key": {"type": "string", "minLength": 1,
                                            "maxLength": 300}}},
    }


def tools_paths(errors: dict[str, str]) -> dict[str, Any]:
    """The paths; ``errors``: status -> the document's common description
    (``openapi.ERRORS``, passed in because ``openapi`` imports this module)."""

    def _errs(*codes: str) -> dict[str, Any]:
        return {c: _err(errors[c]) for c in codes}
    def body(name: str) -> dict[str, Any]:
        return {"required": True,
                "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    return {
        "/api/alerts": {"get": {
            "summary": "Latched trips of every table", "operationId": "get_alerts",
            "security": READ,
            "responses": {"200": _json({"type": "object", "required": ["alerts"],
                                        "properties": {"alerts": {"type": "array"}}},
                                       "Every latched trip, acknowledged or not."),
                          **_errs("400", "401")}}},
        "/api/alerts/ack": {"post": {
            "summary": "Acknowledge a trip alarm", "operationId": "ack_alert",
            "description": "Silences the alarm for this trip on every page and logs who "
                           "did it (the dashboard's own log, dashboard_acks.jsonl); the "
                           "trip stays latched until it is reset.",
            "security": WRITE, "requestBody": body("AlertAck"),
            "responses": {"200": _json(OK, "Acknowledged."),
                          "404": _err("No such trip is latched now."),
                          **_errs("400", "401", "403", "413", "415")}}},
        "/api/presets": {
            "get": {"summary": "Client presets", "operationId": "list_presets",
                    "security": READ,
                    "responses": {"200": _json({"type": "object", "required": ["presets"],
                                                "properties": {"presets": {"type": "array"}}},
                                               "Every preset."),
                                  **_errs("400", "401")}},
            "post": {"summary": "Save a new preset", "operationId": "create_preset",
                     "security": WRITE, "requestBody": body("Preset"),
                     "responses": {"201": _json(OK, "Saved."),
                                   "409": _err("A preset with this name exists."),
                                   **_errs("400", "401", "403", "413", "415")}}},
        "/api/presets/{name}": {
            "put": {"summary": "Change a preset", "operationId": "update_preset",
                    "security": WRITE, "parameters": [NAME], "requestBody": body("PresetUpdate"),
                    "responses": {"200": _json(OK, "Changed."),
                                  "404": _err("No such preset."),
                                  **_errs("400", "401", "403", "413", "415")}},
            "delete": {"summary": "Delete a preset", "operationId": "delete_preset",
                       "security": WRITE, "parameters": [NAME],
                       "responses": {"200": _json(OK, "Deleted."),
                                     "404": _err("No such preset."),
                                     **_errs("400", "401", "403")}}},
        "/api/tables/{table_id}/preset": {"post": {
            "summary": "Apply a preset", "operationId": "apply_preset",
            "description": "Sends both cushions' setpoints as ordinary setpoint commands.",
            "security": WRITE, "parameters": [TABLE], "requestBody": body("PresetApply"),
            "responses": {"200": _json(OK, "Both setpoints set."),
                          "409": _json({"type": "object"}, "The controller refused one."),
                          **_errs("400", "401", "403", "404", "413", "415", "502", "503",
                                  "504")}}},
        "/api/timers": {"get": {
            "summary": "Session timers", "operationId": "list_timers", "security": READ,
            "responses": {"200": _json({"type": "object", "required": ["timers"],
                                        "properties": {"timers": {"type": "object"},
                                                       "now": {"type": "number"}}},
                                       "Running timers by table, and finished ones."),
                          **_errs("400", "401")}}},
        "/api/tables/{table_id}/timer": {
            "post": {"summary": "Start a session timer", "operationId": "start_timer",
                     "description": "The dashboard server ends the session and carries "
                                    "out the end action, even with no page open.",
                     "security": WRITE, "parameters": [TABLE],
                     "requestBody": body("TimerStart"),
                     "responses": {"200": _json(OK, "Started."),
                                   **_errs("400", "401", "403", "404", "413", "415",
                                           "502")}},
            "delete": {"summary": "Stop a session timer", "operationId": "stop_timer",
                       "security": WRITE, "parameters": [TABLE],
                       "responses": {"200": _json(OK, "Stopped."),
                                     "404": _err("No timer runs for this table."),
                                     **_errs("400", "401", "403")}}},
        "/api/tables/{table_id}/energy": {"get": {
            "summary": "Energy used today (estimate)", "operationId": "get_energy",
            "description": "Estimated from the applied output × the rated heater power "
                           "(plant.heater_w) over the controller's history since local "
                           "midnight.",
            "security": READ, "parameters": [TABLE],
            "responses": {"200": _json({"type": "object", "required": ["kwh", "cushions"],
                                        "properties": {"kwh": {"type": "number"},
                                                       "cushions": {"type": "array"}}},
                                       "kWh today."),
                          **_errs("400", "401", "404", "409", "502", "503", "504")}}},
    }
