"""What the supervisor says: trip reasons and their reactions, trips, alarms, events and
the result of a reset.

These names are an interface (the event log, MQTT, the dashboard and the scenarios quote
them), so they live apart from the rules that raise them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reaction(enum.Enum):
    CUSHION_OFF = "cushion_off"  # that cushion's heater at 0 %
    ALL_OFF = "all_off"  # both heaters at 0 %
    RELAY_OPEN = "relay_open"  # both heaters at 0 % and the master relay open


#: The reaction of each trip reason (the ``reason`` names are an interface).
REACTIONS: dict[str, Reaction] = {
    "over_temperature": Reaction.RELAY_OPEN,
    "sensor_open": Reaction.CUSHION_OFF,
    "sensor_short": Reaction.CUSHION_OFF,
    "sensor_disagree": Reaction.CUSHION_OFF,
    "no_rise": Reaction.CUSHION_OFF,
    "rise_too_fast": Reaction.CUSHION_OFF,
    "rise_while_off": Reaction.RELAY_OPEN,
    "stale_telemetry": Reaction.ALL_OFF,
    "board_fault": Reaction.ALL_OFF,
    "control_stall": Reaction.ALL_OFF,
}

#: Reasons whose reaction covers the whole table.  ``over_temperature`` and
#: ``rise_while_off`` are detected on a cushion (``Trip.cushion`` says which, and their
#: reset is judged on that cushion's sensors) but switch off both; the others here are
#: not about a cushion at all (``Trip.cushion`` is None).
TABLE_WIDE: frozenset[str] = frozenset(
    r for r, x in REACTIONS.items() if x is not Reaction.CUSHION_OFF)

#: Table-wide reasons that are not detected on a cushion: their trips carry cushion None.
NO_CUSHION: frozenset[str] = frozenset({"stale_telemetry", "board_fault", "control_stall"})


@dataclass(frozen=True)
class Trip:
    reason: str
    cushion: int | None  # None: not about one cushion
    at: float  # clock time it was detected
    detail: str


@dataclass(frozen=True)
class Alarm:
    name: str  # "high_temperature"
    cushion: int
    since: float
    detail: str


@dataclass(frozen=True)
class SupervisorEvent:
    """kind: trip, trip_reset, reset_refused, alarm, alarm_cleared."""

    kind: str
    time: float
    cushion: int | None
    reason: str
    actor: str | None
    detail: str


@dataclass(frozen=True)
class ResetResult:
    ok: bool  # nothing was refused
    cleared: list[Trip]
    refused: list[tuple[Trip, str]]  # the trip, and what keeps its cause alive
