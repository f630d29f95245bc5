"""The event page's filters and paging, read from its query string.

The page must never fail on a hand-edited address: an unknown value falls back to the
default (all kinds, both cushions, the last 24 h, the newest page).  Paging goes back in
time: "Older events" asks for the events before the oldest one shown (``before``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: one page of the event log (also the controller query's limit)
EVENTS_PER_PAGE = 500

#: filter name -> (label, event kinds; empty: every kind)
EVENT_GROUPS: dict[str, tuple[str, list[str]]] = {
    "all": ("Everything", []),
    "safety": ("Safety: trips, resets, alarms", ["trip", "trip_reset", "reset_refused",
                                                 "alarm", "alarm_cleared", "board_fault",
                                                 "link_disconnected"]),
    "settings": ("Setpoints and heating", ["setpoint", "heat"]),
    "refused": ("Refused commands", ["command_refused", "reset_refused"]),
    "system": ("Heater board and controller", ["link_connected", "link_disconnected",
                                               "board_fault", "controller_start",
                                               "controller_stop", "events_dropped",
                                               "autotune"]),
}


@dataclass(frozen=True)
class EventFilters:
    range: str
    kind: str
    cushion: int | None
    before: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"range": self.range, "kind": self.kind, "cushion": self.cushion,
                "before": self.before}


def event_filters(args: Mapping[str, str]) -> EventFilters:
    from .api import EVENT_RANGES

    rng = args.get("range", "24h")
    if rng not in EVENT_RANGES:
        rng = "24h"
    kind = args.get("kind", "all")
    if kind not in EVENT_GROUPS:
        kind = "all"
    cushion = {"0": 0, "1": 1}.get(args.get("cushion", ""))
    before: float | None = None
    try:
        b = float(args.get("before", ""))
        if math.isfinite(b) and b > 0:
            before = b
    except ValueError:
        pass
    return EventFilters(rng, kind, cushion, before)
