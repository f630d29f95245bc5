"""The table as it really is, when it differs from the controller's model.

``[plant]`` of the configuration is the controller's *model* of the table (and, when
nothing else is said, the simulator's truth too).  ``[true_plant]`` says where the
simulated truth differs: any key of ``[plant]``, plus the physical keys of ``[sensor]``
(``lag_s``, ``noise_c``), each a number (both cushions) or a list of two (per cushion)::

    [true_plant]
    water_kg = [15.0, 35.0]    # the cushions were filled by hand, unevenly
    heater_w = 360.0           # high mains voltage
    room_c = 12.0              # a cold clinic in January
    lag_s = 20.0               # sensors in a thicker pocket

Only the simulator reads it (``sim/plant.py``); the controller and the supervisor never
see it.  That is the point: a tester runs a table whose physics the software does not
know, exactly as a real table is.

Why a separate small module: the configuration loader routes the section here, and the
simulator asks ``cushion_plant`` / ``cushion_sensor`` for each cushion's effective
parameters; nothing else needs to know how overrides are spelt.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: ``hydrotherm.config.PlantConfig`` / ``SensorConfig`` (not imported: config imports this)
PlantLike = TypeVar("PlantLike")

#: ``[sensor]`` keys that are physics of the sensor in the water (not its electronics or
#: the thermistor's calibration, which the link and the board share by construction).
SENSOR_KEYS = ("lag_s", "noise_c")
#: ``[plant]`` keys that are one value for the table, not per cushion.
TABLE_KEYS = ("coupling_w_per_k",)
_CUSHIONS = 2


@dataclass(frozen=True)
class TruePlantConfig:
    """Per-key overrides of the simulated truth: ``key -> (cushion 0, cushion 1)``."""

    overrides: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.overrides)

    def value(self, key: str, cushion: int, default: float) -> float:
        v = self.overrides.get(key)
        return default if v is None else v[cushion]

    def as_dict(self) -> dict[str, Any]:
        """For JSON and TOML: equal pairs as one number."""
        return {k: (v[0] if v[0] == v[1] else list(v)) for k, v in self.overrides.items()}


def allowed_keys(plant_type: type) -> tuple[str, ...]:
    """The ``[true_plant]`` keys: every ``[plant]`` key but the starting water, and the
    sensor keys."""
    return tuple(f.name for f in dataclasses.fields(plant_type)
                 if f.name != "initial_water_c") + SENSOR_KEYS


def parse(values: dict[str, Any], error: type[Exception], plant_type: type,
          sensor_type: type) -> TruePlantConfig:
    """Check a ``[true_plant]`` mapping; ``error(message)`` for the first problem (the
    message names the key as ``true_plant.KEY``).  Each value is checked against the range
    of the same key in ``[plant]``/``[sensor]`` (``plant_type``/``sensor_type``: their
    dataclasses, handed in by ``hydrotherm.config`` so this module does not import it)."""
    ranges = {f.name: f.metadata for f in dataclasses.fields(plant_type)}
    ranges.update({f.name: f.metadata for f in dataclasses.fields(sensor_type)
                   if f.name in SENSOR_KEYS})
    allowed = allowed_keys(plant_type)
    out: dict[str, tuple[float, float]] = {}
    for key, raw in values.items():
        name = f"true_plant.{key}"
        if key == "initial_water_c":
            raise error(f"{name}: the starting water is not a model parameter; set it in "
                        "[plant] (the simulator starts from it, the controller measures it)")
        if key not in allowed:
            raise error(f"{name}: unknown key (known: {', '.join(sorted(allowed))})")
        if isinstance(raw, list):
            if key in TABLE_KEYS:
                raise error(f"{name}: one conductance between the two cushions: give one "
                            "number, not a list")
            if len(raw) != _CUSHIONS:
                raise error(f"{name}: expected one number or a list of {_CUSHIONS}, got "
                            f"{len(raw)} values")
            vals = raw
        else:
            vals = [raw, raw]
        checked = []
        for i, v in enumerate(vals):
            where = name if not isinstance(raw, list) else f"{name}[{i}]"
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise error(f"{where}: expected a finite number, got {v!r}")
            meta = ranges[key]
            lo, hi = meta.get("lo"), meta.get("hi")
            if lo is not None and (v < lo or (meta.get("lo_open") and v == lo)):
                op = "greater than" if meta.get("lo_open") else "at least"
                raise error(f"{where} = {v!r} is refused: must be {op} {lo}")
            if hi is not None and v > hi:
                raise error(f"{where} = {v!r} is refused: must be at most {hi}")
            checked.append(float(v))
        out[key] = (checked[0], checked[1])
    for i in range(_CUSHIONS):
        lo_c = out.get("cutout_close_c", (None, None))[i]
        hi_c = out.get("cutout_open_c", (None, None))[i]
        if lo_c is not None and hi_c is not None and lo_c >= hi_c:
            raise error("true_plant.cutout_close_c must be below true_plant.cutout_open_c")
    return TruePlantConfig(out)


def cushion_plant(plant: PlantLike, truth: TruePlantConfig, cushion: int) -> PlantLike:
    """The physics of one cushion: ``plant`` with ``truth``'s values for that cushion."""
    changes = {k: v[cushion] for k, v in truth.overrides.items() if k not in SENSOR_KEYS}
    return dataclasses.replace(plant, **changes) if changes else plant


def cushion_sensor(sensor: PlantLike, truth: TruePlantConfig, cushion: int) -> PlantLike:
    """The sensors of one cushion: ``sensor`` with ``truth``'s lag and noise for it."""
    changes = {k: v[cushion] for k, v in truth.overrides.items() if k in SENSOR_KEYS}
    return dataclasses.replace(sensor, **changes) if changes else sensor
