"""The per-value topics of one cushion (``<prefix>/<table>/cushion/<i>/<name>``), as text.

One function from a cushion of the state snapshot to its retained single values, so a
display, a PLC, a shell script and Home Assistant read the same truth as the JSON state.

Numeric topics carry a number or the word ``None`` (Home Assistant's "unknown": it
parses it without an error, where ``unavailable`` made it log one on every outage);
whether the readings are available at all is the ``readings`` availability topic's job.
``action`` is Home Assistant's ``hvac_action`` from the derived heat state: ``off`` while
the cushion is off *or blocked* (never ``idle`` for a cushion that cannot heat).
"""

from __future__ import annotations

import json
import math
from typing import Any

from controller.heat_state import cushion_state

NONE = "None"  # Home Assistant's payload for "no value" (PAYLOAD_NONE)


def cushion_values(c: dict[str, Any], snap: dict[str, Any]) -> dict[str, str]:
    """The single-value topics of cushion ``c`` of snapshot ``snap``, as strings."""
    hs = c.get("heat_state") or cushion_state(c, snap).as_dict()
    w = c["water_c"]["estimate"]
    out = c["output"]
    trips = [t["reason"] for t in c["trips"]]
    ready = c["ready_in_s"] if hs["state"] == "heating" else None
    allowed = c.get("reset_allowed")
    return {
        "water_c": f"{w:.2f}" if w is not None else NONE,
        "setpoint_c": f"{c['setpoint_c']:.1f}",
        "heat": "ON" if c["heat_on"] else "OFF",
        "mode": "heat" if c["heat_on"] else "off",
        "action": hs["hvac_action"] or NONE,
        "output_pct": f"{100 * out:.0f}" if out is not None else NONE,
        "ready_in_min": f"{math.ceil(ready / 60)}" if ready is not None else NONE,
        "trip": ",".join(trips) if trips else "none",
        "trip_reason": trips[0] if trips else "none",
        "problem": "ON" if trips else "OFF",
        "alarm": ",".join(a["name"] for a in c["alarms"]) or "none",
        "heat_state": hs["state"],
        "heat_state_detail": json.dumps({"text": hs["text"],
                                         "blocked_by": [b["reason"] for b in hs["blocked_by"]],
                                         "reasons": hs["blocked_by"]}),
        "reset_allowed": "ON" if allowed else "OFF",
    }
