"""One truthful heat state per cushion, derived once and shown the same everywhere.

A therapist reads one line per cushion — the dashboard, Home Assistant, a script on
MQTT, the terminal of ``hydrotherm run`` — and must be able to trust it: a cushion that
cannot heat must never say "Ready in 98 min" or "At temperature".  Whether it can heat is
not one fact but several, reported by different parts: the supervisor's latched trips
(its own and the table-wide ones), the board's master relay and latched fault flags as
the telemetry reports them, the link, and the person's heat on/off.  This module reads
them all from the controller's JSON snapshot (``Controller.snapshot()``, the MQTT state
payload) and gives each cushion exactly one of:

``heating``  heat on, nothing blocks it, the water below the ready band: warming up;
``ready``    heat on, nothing blocks it, the water within ``READY_BAND_C`` of the setpoint;
``holding``  heat on, nothing blocks it, the water above the band: the heater waits
             while the water cools to a lowered setpoint;
``off``      heat switched off by a person, and nothing else would stop it heating;
``blocked``  something other than the person's switch stops it heating: the reasons
             say what (``tripped: <reason>``, ``board fault``, ``master relay open``,
             ``link down``, and ``heat off`` as well when it is also switched off);
``unknown``  the controller cannot tell (no valid water temperature on a healthy link),
             or, for a consumer, the table itself is not heard from.

It is pure: no I/O, no clock, the same input gives the same state.  The controller puts
the result in its snapshot; consumers of an older payload can derive it with
``derive(snapshot)`` themselves.  The master relay is shared by both cushions, so an open
relay blocks the *other* cushion too, and its text says why the relay is open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATES = ("heating", "holding", "ready", "off", "blocked", "unknown")
#: the states in which a cushion can heat (a "Ready in" estimate means something)
CAN_HEAT = frozenset({"heating", "holding", "ready"})
#: |water - setpoint| within this counts as "at temperature" (the display's one decimal
#: and a thermostat's usual hysteresis; smaller than any safety margin)
READY_BAND_C = 0.3
#: once at temperature, the band is this much wider before it says heating or holding
#: again, so the water's noise at the band's edge cannot make the screens flicker
#: ("Ready in 1 min" / "At temperature"); the estimate's noise is a few hundredths of a °C
READY_HYSTERESIS_C = 0.1
#: an applied output above this is "the heater is on" (the board works in permille)
ACTIVE_OUTPUT = 0.005

#: the blocker names (the ``reason`` of a ``Blocker``; trips add ``tripped: <reason>``)
LINK_DOWN, BOARD_FAULT, RELAY_OPEN, HEAT_OFF = ("link down", "board fault",
                                                "master relay open", "heat off")

CUSHION_WORDS = ("upper body", "lower body")

#: Short, plain titles of the trip reasons (the dashboard's banner titles use these too).
TRIP_TITLES: dict[str, str] = {
    "over_temperature": "Water too hot",
    "sensor_open": "Sensor disconnected",
    "sensor_short": "Sensor short-circuited",
    "sensor_disagree": "Sensors disagree",
    "no_rise": "Water does not warm up",
    "rise_too_fast": "Water warms too fast",
    "rise_while_off": "Warming with the heater off",
    "stale_telemetry": "No readings from the board",
    "board_fault": "Heater board fault",
    "control_stall": "Control program stalled",
    "plate_dry": "Cushion emptying: client should get up",
}

#: What each latched board flag means, for a person (``{c}`` is the cushion's words).
FLAG_TEXTS: dict[str, str] = {
    "deadman": "the board switched the {c} heater off because the controller stopped "
               "refreshing it",
    "limit_hot": "the board's own hot-water limit tripped on the {c} cushion",
    "limit_sensor": "the board found the {c} sensor broken",
    "cutout": "the bimetal cut-out of the {c} cushion opened",
    "limit_plate": "the board's own plate limit tripped on the {c} cushion (heater plate too "
                   "hot: the cushion may be dry or emptying)",
    "reset": "the board restarted",
}


def trip_title(reason: str) -> str:
    return TRIP_TITLES.get(reason, f"Safety trip: {reason}")


def cushion_words(cushion: Any) -> str:
    if isinstance(cushion, int) and not isinstance(cushion, bool) \
            and 0 <= cushion < len(CUSHION_WORDS):
        return CUSHION_WORDS[cushion]
    return f"cushion {cushion}"


def flag_text(name: str) -> str:
    """``deadman_0`` -> "the board switched the upper body heater off ..."."""
    base, _, channel = name.rpartition("_")
    if base in FLAG_TEXTS and channel.isdigit():
        return FLAG_TEXTS[base].format(c=cushion_words(int(channel)))
    if name in FLAG_TEXTS:
        return FLAG_TEXTS[name].format(c="")
    return f"the board raised flag {name}"


@dataclass(frozen=True)
class Blocker:
    """One thing that stops a cushion heating: a short name and a sentence."""

    reason: str
    text: str


@dataclass(frozen=True)
class HeatState:
    state: str
    text: str
    blocked_by: tuple[Blocker, ...]
    hvac_action: str | None  # Home Assistant's word: heating, idle, off (None: unknown)

    @property
    def can_heat(self) -> bool:
        return self.state in CAN_HEAT

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "text": self.text, "hvac_action": self.hvac_action,
                "blocked_by": [{"reason": b.reason, "text": b.text} for b in self.blocked_by]}


def unknown(text: str) -> HeatState:
    """The state a consumer shows when it cannot hear the table (offline, no broker)."""
    return HeatState("unknown", text, (), None)


def _num(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and x == x:
        return float(x)
    return None


def _opens_relay(trip: Mapping[str, Any]) -> bool:
    """Whether this trip's reaction opens the master relay: the snapshot says so itself
    (``opens_relay``), so a consumer needs no copy of the supervisor's table."""
    return bool(trip.get("opens_relay"))


def _trip_blocker(t: Mapping[str, Any], cushion: int) -> Blocker:
    reason = str(t.get("reason", "?"))
    title = trip_title(reason)
    where = t.get("cushion")
    detail = str(t.get("detail") or "")
    if where is None or where == cushion:
        text = f"Safety trip: {title}" + (f" ({detail})" if detail else "")
    else:
        text = (f"Safety trip on the {cushion_words(where)} cushion: {title}; it stops "
                "the whole table")
    return Blocker(f"tripped: {reason}", text)


def _relay_blocker(all_trips: list[Mapping[str, Any]], faults: list[str]) -> Blocker:
    for t in all_trips:
        if _opens_relay(t):
            where = t.get("cushion")
            on = f" on the {cushion_words(where)} cushion" if where is not None else ""
            return Blocker(RELAY_OPEN, "The master relay, shared by both cushions, is open "
                           f"because of a safety trip{on} ({trip_title(str(t['reason']))})")
    if faults:
        return Blocker(RELAY_OPEN, "The master relay, shared by both cushions, is open "
                       "because the heater board latched a fault")
    return Blocker(RELAY_OPEN, "The master relay, shared by both cushions, is open: the "
                   "board reports it open and the controller has not closed it")


def cushion_state(c: Mapping[str, Any], snap: Mapping[str, Any],
                  previous: str | None = None) -> HeatState:
    """The heat state of one cushion ``c`` of the snapshot ``snap``; ``previous``, the
    state derived last time (if any), widens the ready band once it has been reached."""
    i = c.get("cushion", 0)
    link = snap.get("link") or {}
    board = snap.get("board") or {}
    healthy = bool(link.get("healthy"))
    heat_on = bool(c.get("heat_on"))
    cushions = snap.get("cushions") or []
    any_heat = any(bool(x.get("heat_on")) for x in cushions)
    trips = list(c.get("trips") or [])
    all_trips = [t for x in cushions for t in (x.get("trips") or [])]
    faults = list(board.get("faults") or []) if healthy else []

    blockers: list[Blocker] = []
    if not healthy:
        why = link.get("error") or link.get("state") or "no telemetry"
        blockers.append(Blocker(LINK_DOWN, f"No readings from the heater board ({why}): "
                                "its heaters stay off until readings return"))
    blockers += [_trip_blocker(t, i) for t in trips]
    if faults:
        blockers.append(Blocker(BOARD_FAULT, "The heater board latched a fault: "
                                + "; ".join(flag_text(f) for f in faults)))
    if healthy and board.get("relay_closed") is False and any_heat \
            and not board.get("relay_closing"):
        blockers.append(_relay_blocker(all_trips, faults))
    hard = list(blockers)  # everything but the person's own switch
    if not heat_on:
        blockers.append(Blocker(HEAT_OFF, "Heating is switched off for this cushion"))

    if hard:
        return HeatState("blocked", "Cannot heat: " + "; ".join(b.text for b in blockers),
                         tuple(blockers), "off")
    if not heat_on:
        return HeatState("off", "Heating off", tuple(blockers), "off")
    water = _num((c.get("water_c") or {}).get("estimate"))
    setpoint = _num(c.get("setpoint_c"))
    output = _num(c.get("output"))
    action = None if output is None else ("heating" if output > ACTIVE_OUTPUT else "idle")
    if water is None or setpoint is None:
        return HeatState("unknown", "Heating on, but there is no valid water temperature",
                         (), action)
    band = READY_BAND_C + (READY_HYSTERESIS_C if previous == "ready" else 0.0)
    if water < setpoint - band:
        return HeatState("heating", "Heating", (), action)
    if water > setpoint + band:
        return HeatState("holding", "Above the setpoint: the heater waits while the water "
                         "cools", (), action)
    return HeatState("ready", "At temperature", (), action)


def derive(snap: Mapping[str, Any]) -> list[HeatState]:
    """Every cushion's heat state, in the snapshot's order."""
    return [cushion_state(c, snap) for c in snap.get("cushions") or []]


def reset_allowed(trips: Iterable[Mapping[str, Any]]) -> bool:
    """A reset is offered to a therapist when at least one latched trip is one a therapist
    may reset (not ``service_only``: the supervisor's ``SERVICE_ONLY`` decides); the
    supervisor still judges each trip's cause."""
    return any(not t.get("service_only") for t in trips)
