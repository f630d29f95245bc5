"""The one-line status ``hydrotherm run`` prints every few seconds, from the snapshot.

It says what the dashboard and Home Assistant say: each cushion's derived heat state
(``controller/heat_state.py``), with the reasons when it cannot heat, and a warm-up
estimate only while the cushion is actually warming up.
"""

from __future__ import annotations

import math
from typing import Any

from .heat_state import cushion_state, cushion_words, trip_title

#: the heat states in the words the dashboard uses (the codes stay in the payload)
STATE_WORDS = {"heating": "heating", "ready": "READY", "holding": "above the setpoint",
               "off": "heating off", "blocked": "cannot heat", "unknown": "state unknown"}


def blocker_words(reason: str) -> str:
    """``tripped: sensor_open`` -> ``Sensor disconnected``; the others are words already."""
    if reason.startswith("tripped: "):
        return trip_title(reason[len("tripped: "):])
    return reason


def status_line(snap: dict[str, Any]) -> str:
    """``upper body:  34.02 °C -> 38.5 heating, out 100.0 %, ready in 32 min | lower body: ...``

    Cushions by name, as on the dashboard; a blocked cushion lists its reasons' words; at
    the end the room in use (``room: measured 12.3 °C`` or ``room: configured 21 °C (no
    room sensor: a protocol 1.0 board)``)."""
    link = snap["link"]
    parts = []
    if not link["healthy"]:
        parts.append(f"link {link['state']}: readings unavailable"
                     + (f" ({link['error']})" if link["error"] else ""))
    for c in snap["cushions"]:
        hs = c.get("heat_state") or cushion_state(c, snap).as_dict()
        w = c["water_c"]["estimate"]
        out = c["output"]
        text = (f"{cushion_words(c['cushion'])}: "
                + (f"{w:6.2f}" if w is not None else "  --  ") + " °C"
                + f" -> {c['setpoint_c']:.1f} {STATE_WORDS.get(hs['state'], hs['state'])}")
        if hs["state"] == "blocked":
            text += " (" + ", ".join(blocker_words(b["reason"]) for b in hs["blocked_by"]) + ")"
        if any(t.get("service_only") for t in c.get("trips") or []):
            text += " CALL SERVICE"
        if out is not None:
            text += f", out {100 * out:5.1f} %"
        ready = c["ready_in_s"]
        if hs["state"] == "heating" and ready is not None:
            text += f", ready in {math.ceil(ready / 60)} min"
        parts.append(text)
    room = snap.get("room")
    # the room the law and the schedule use, and whether it was measured or assumed
    return " | ".join(parts) + (f"  ({room['text']})" if room else "")
