"""The last refused command, as one retained message a screen can show.

A refusal is answered on the result topic (and logged), but Home Assistant never reads
replies: it sends a setpoint and, when the table refuses it, would show nothing at all.
So every refusal the controller records — a command refused by the bridge or the
controller (``command_refused``) and a reset the supervisor refused (``reset_refused``)
— is also published, retained, on ``<prefix>/<table>/refusal``; Home Assistant shows it
as the "Last refused command" sensor.
"""

from __future__ import annotations

from typing import Any

REFUSAL_KINDS = ("command_refused", "reset_refused")
#: Home Assistant keeps at most 255 characters of a state
MAX_TEXT = 255


def refusal_payload(event: dict[str, Any]) -> dict[str, Any] | None:
    """The ``refusal`` message for an event-log entry, or None when it is no refusal."""
    kind = event.get("kind")
    if kind not in REFUSAL_KINDS:
        return None
    detail = event.get("detail") or {}
    if kind == "reset_refused":
        command = "reset"
        why = detail.get("detail") or ""
        error = f"reset of {event.get('reason')} refused" + (f": {why}" if why else "")
    else:
        command = detail.get("command") or "?"
        error = str(event.get("reason") or "refused")
    return {"time": event.get("time"), "command": command, "cushion": event.get("cushion"),
            "actor": event.get("actor"), "error": error[:MAX_TEXT],
            "table_id": event.get("table_id")}
