"""``over_temperature`` (reference: "any sensor above 41.0 °C", all heaters off and master
relay open): one report of one intact sensor above ``over_temperature_c`` trips at once.

One reading is enough: the frames are CRC-checked, so the counts are what the ADC
measured, and the sensor noise (0.03 °C rms) is some thirty times smaller than the margin.
A sensor that reads above 41 °C for one report is a reason to stop heating, not a glitch to
filter (detection in one report, 0.2 s; the board's own 4-sample filter is a later layer).
"""

from __future__ import annotations

from ..history import SENSOR_NAMES
from ..latch import Latch
from ..state import SupervisorState
from .base import SENSOR_OK, Cause, Rule


class OverTemperature(Rule):
    reasons = ("over_temperature",)

    def __init__(self, st: SupervisorState) -> None:
        super().__init__(st)
        #: the level the data path compares every intact reading with
        self.limit_c = st.cfg.over_temperature_c

    def on_sensor(self, c: int, s: int, v: float, now: float) -> None:
        """Sensor ``s`` of cushion ``c`` read ``v`` °C, above ``limit_c``."""
        self.st.trip("over_temperature", c,
                     f"{SENSOR_NAMES[s]} sensor of cushion {c} reads {v:.2f} °C, above "
                     f"{self.cfg.over_temperature_c:g} °C", now, sensor=s)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every intact sensor of that cushion below ``over_temperature_c -
        over_temperature_reset_margin_c`` (41.0 - 0.5), and at least one intact sensor
        (broken ones are their own trips)."""
        cfg = self.cfg
        c = latch.trip.cushion
        assert c is not None
        below = cfg.over_temperature_c - cfg.over_temperature_reset_margin_c
        ok = [(s, v) for s, st, v in self.st.latest_sensors(c) if st is SENSOR_OK and v is not None]
        if not ok:
            return f"no intact sensor on cushion {c} to confirm the water cooled", ""
        hot = [f"{SENSOR_NAMES[s]} {v:.2f} °C" for s, v in ok if v >= below]
        if hot:
            return (f"cushion {c} still at {', '.join(hot)}, not below {below:.2f} °C"), ""
        return None, f"cushion {c} sensors below {below:.2f} °C"
