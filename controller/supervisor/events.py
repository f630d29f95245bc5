"""What the supervisor says: trip reasons and their reactions, trips, alarms, events and
the result of a reset.

These names are an interface (the event log, MQTT, the dashboard and the scenarios quote
them), so they live apart from the rules that raise them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware_bridge import protocol as p


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
    "plate_dry": Reaction.CUSHION_OFF,
}

#: Reasons whose reaction covers the whole table.  ``over_temperature`` and
#: ``rise_while_off`` are detected on a cushion (``Trip.cushion`` says which, and their
#: reset is judged on that cushion's sensors) but switch off both; the others here are
#: not about a cushion at all (``Trip.cushion`` is None).
TABLE_WIDE: frozenset[str] = frozenset(
    r for r, x in REACTIONS.items() if x is not Reaction.CUSHION_OFF)

#: Table-wide reasons that are not detected on a cushion: their trips carry cushion None.
NO_CUSHION: frozenset[str] = frozenset({"stale_telemetry", "board_fault", "control_stall"})


#: Trips a therapist may not reset (not from the dashboard, MQTT nor Home Assistant): their
#: cause cannot be shown to have gone while the master relay is open, so a reset judged on
#: the data would be accepted and the fault would come back with the heat.  Only a named
#: service person can reset them (``hydrotherm service reset --reason ...`` on the
#: controller's machine), and while one is latched the master relay stays open.  Keys: a
#: trip reason, or a board flag family (the flags of a ``board_fault`` trip); values: why,
#: in words a therapist reads.  The one place this set is defined.
SERVICE_ONLY: dict[str, str] = {
    "rise_while_off": (
        "the water warmed with the heater off, so a heater relay (SSR) may be welded on; with "
        "the master relay open it cannot heat, so nothing can show it has been repaired"),
    "LIMIT_HOT": (
        "the heater board's own hot-water limit switched a heater off: the controller's own "
        "limit did not stop the water first, or a heater relay is welded on"),
    "CUTOUT": (
        "a heater plate's bimetal cut-out opened (the plate overheated): the plate may be dry "
        "or a heater relay welded on; the cut-out closes again as it cools, which proves "
        "nothing"),
}


def _family_bits(family: str) -> int:
    return int(sum(int(f) for f in p.Fault if (f.name or "").rsplit("_", 1)[0] == family))


#: The board flags (bits) of the service-only flag families.
SERVICE_ONLY_FLAGS: int = sum(_family_bits(k) for k in SERVICE_ONLY if k.isupper())


def service_why(reason: str, flags: int = 0) -> str | None:
    """Why a trip needs a service person (``SERVICE_ONLY``), or None when a therapist may
    reset it.  ``flags``: the board flags a ``board_fault`` trip has seen."""
    why = SERVICE_ONLY.get(reason)
    if why is not None:
        return why
    if reason == "board_fault" and flags & SERVICE_ONLY_FLAGS:
        return "; ".join(w for k, w in SERVICE_ONLY.items()
                         if k.isupper() and flags & _family_bits(k))
    return None


@dataclass(frozen=True)
class Trip:
    reason: str
    cushion: int | None  # None: not about one cushion
    at: float  # clock time it was detected
    detail: str
    flags: int = 0  # board fault flags seen while latched (``board_fault`` only)

    @property
    def service(self) -> str | None:
        """Why only a service person may reset this trip, or None (see ``SERVICE_ONLY``)."""
        return service_why(self.reason, self.flags)


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
    flags: int = 0  # a trip's board fault flags (``board_fault``)
    service: str | None = None  # a trip: why only a service person may reset it


@dataclass(frozen=True)
class ResetResult:
    ok: bool  # nothing was refused
    cleared: list[Trip]
    refused: list[tuple[Trip, str]]  # the trip, and what keeps its cause alive
