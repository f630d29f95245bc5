"""Fault injection: one vocabulary for code, the CLI, the control socket and scenarios.

Each fault has a name (the names scenario files and the safety table use), the
parameters it takes, and how it is applied to and cleared from a simulated table.
Bad names or parameters raise ``FaultError`` with a message meant for a tester.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from firmware_bridge.protocol import ResetCause

from .board import BoardEmulator
from .plant import Plant, SensorFault


class FaultTarget(Protocol):
    """What a fault acts on: a table's plant and board, and its port's plug (``SimulatedTable``
    is one).  A protocol rather than an import of ``sim.table``, which imports this module
    to offer ``inject``."""

    plant: Plant
    board: BoardEmulator

    def unplug(self) -> None: ...

    def replug(self) -> None: ...

#: the water sensors by name; "plate" is the plate sensor of a protocol 1.1 board
SENSORS = {"primary": 0, "redundant": 1}
PLATE = "plate"


class FaultError(ValueError):
    """A fault request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class FaultSpec:
    name: str
    params: tuple[str, ...]
    doc: str


FAULTS: dict[str, FaultSpec] = {f.name: f for f in (
    FaultSpec("sensor_open", ("cushion", "sensor"), "a sensor wire breaks: reads the top rail"),
    FaultSpec("sensor_short", ("cushion", "sensor"), "a sensor shorts: reads the bottom rail"),
    FaultSpec("sensor_drift", ("cushion", "sensor", "offset_c"), "a sensor reads offset_c off"),
    FaultSpec("heater_stuck_on", ("cushion",), "the SSR welds: full power while the relay closes"),
    FaultSpec("heater_dead", ("cushion",), "the heater element is open: no power at all"),
    FaultSpec("cushion_leak", ("cushion", "kg_per_min"), "the cushion loses water"),
    FaultSpec("serial_noise", ("error_rate",), "each byte corrupted with this probability"),
    FaultSpec("serial_silence", ("duration_s",), "the board neither hears nor speaks for a while"),
    FaultSpec("board_reset", (), "the board reboots (watchdog)"),
    FaultSpec("unplug", (), "the serial cable is pulled"),
    FaultSpec("replug", (), "the serial cable is plugged back"),
)}

DEFAULTS: dict[str, Any] = {"sensor": "primary", "offset_c": 2.0, "kg_per_min": 2.0,
                            "error_rate": 0.01, "duration_s": 5.0}


def _number(name: str, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"{name}: {key} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise FaultError(f"{name}: {key} = {value} is outside {lo}..{hi}")
    return float(value)


def check(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate a fault request; returns the parameters with defaults filled in."""
    spec = FAULTS.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    extra = set(params) - set(spec.params)
    if extra:
        raise FaultError(f"{name}: unexpected parameter(s) {', '.join(sorted(extra))}; "
                         f"takes {', '.join(spec.params) or 'none'}")
    out = {k: params.get(k, DEFAULTS.get(k)) for k in spec.params}
    if "cushion" in out:
        c = out["cushion"]
        if c is None:
            raise FaultError(f"{name}: cushion is required (0 or 1)")
        if isinstance(c, bool) or c not in (0, 1):
            raise FaultError(f"{name}: cushion must be 0 or 1, got {c!r}")
    if "sensor" in out and out["sensor"] not in SENSORS and out["sensor"] != PLATE:
        raise FaultError(f"{name}: sensor must be primary, redundant or plate, got "
                         f"{out['sensor']!r}")
    if "offset_c" in out:
        out["offset_c"] = _number(name, "offset_c", out["offset_c"], -50.0, 50.0)
    if "kg_per_min" in out:
        out["kg_per_min"] = _number(name, "kg_per_min", out["kg_per_min"], 0.0, 100.0)
    if "error_rate" in out:
        out["error_rate"] = _number(name, "error_rate", out["error_rate"], 0.0, 1.0)
    if "duration_s" in out:
        out["duration_s"] = _number(name, "duration_s", out["duration_s"], 0.0, 86400.0)
    return out


def apply(table: FaultTarget, name: str, params: dict[str, Any], clear: bool = False) -> None:
    """Inject (or, with ``clear``, remove) one fault on a simulated table."""
    a = check(name, params)
    plant, board = table.plant, table.board
    f = plant.faults[a["cushion"]] if "cushion" in a else None
    plate = a.get("sensor") == PLATE
    s = SENSORS.get(a.get("sensor", ""), 0)
    if name in ("sensor_open", "sensor_short"):
        mode = SensorFault.OPEN if name == "sensor_open" else SensorFault.SHORT
        state = SensorFault.NONE if clear else mode
        if plate:
            f.plate_sensor = state  # type: ignore[union-attr]
        else:
            f.sensor[s] = state  # type: ignore[union-attr]
    elif name == "sensor_drift":
        offset = 0.0 if clear else a["offset_c"]
        if plate:
            f.plate_offset_c = offset  # type: ignore[union-attr]
        else:
            f.sensor_offset_c[s] = offset  # type: ignore[union-attr]
    elif name == "heater_stuck_on":
        f.heater_stuck_on = not clear  # type: ignore[union-attr]
    elif name == "heater_dead":
        f.heater_dead = not clear  # type: ignore[union-attr]
    elif name == "cushion_leak":
        f.leak_kg_per_min = 0.0 if clear else a["kg_per_min"]  # type: ignore[union-attr]
    elif name == "serial_noise":
        board.set_serial_noise(0.0 if clear else a["error_rate"])
    elif name == "serial_silence":
        board.silence(0.0 if clear else a["duration_s"])
    elif name == "board_reset":
        if not clear:
            board.reset(ResetCause.WATCHDOG)
    elif name == "unplug":
        table.replug() if clear else table.unplug()
    elif name == "replug":
        if not clear:
            table.replug()


def faults_now(table: FaultTarget) -> list[dict[str, Any]]:
    """The faults active on ``table`` now, each as ``{"fault": NAME, **params}`` in the
    vocabulary of ``FAULTS`` (what the tester panel and ``sim-status`` list)."""
    out: list[dict[str, Any]] = []
    for c, f in enumerate(table.plant.faults):
        for sensor, s in SENSORS.items():
            if f.sensor[s] is not SensorFault.NONE:
                name = "sensor_open" if f.sensor[s] is SensorFault.OPEN else "sensor_short"
                out.append({"fault": name, "cushion": c, "sensor": sensor})
            if f.sensor_offset_c[s]:
                out.append({"fault": "sensor_drift", "cushion": c, "sensor": sensor,
                            "offset_c": f.sensor_offset_c[s]})
        if f.heater_stuck_on:
            out.append({"fault": "heater_stuck_on", "cushion": c})
        if f.heater_dead:
            out.append({"fault": "heater_dead", "cushion": c})
        if f.leak_kg_per_min:
            out.append({"fault": "cushion_leak", "cushion": c, "kg_per_min": f.leak_kg_per_min})
    port = table.board.port
    rate = getattr(port, "error_rate", 0.0)
    if rate:
        out.append({"fault": "serial_noise", "error_rate": rate})
    left = getattr(port, "silent_until", float("-inf")) - table.board.clock.now()
    if left > 0:
        out.append({"fault": "serial_silence", "remaining_s": round(left, 1)})
    if getattr(getattr(table, "port", None), "plugged", True) is False:
        out.append({"fault": "unplug"})
    return out
