"""``sensor_open`` / ``sensor_short`` (reference: "ADC within 1 % of a rail, or reading
outside 0-60 °C", that cushion off): the link's classification, at the first report.

An intermittent connector that reads a rail once is a reason to stop heating, not a
glitch to filter.  (The data path drops the broken sensor's histories: its rate and rise
are nobody's evidence any more.)
"""

from __future__ import annotations

from firmware_bridge.thermistor import SensorStatus

from ..history import SENSOR_NAMES
from ..latch import Latch
from .base import SENSOR_OK, Cause, Rule


class SensorBroken(Rule):
    reasons = ("sensor_open", "sensor_short")

    def on_sensor(self, c: int, s: int, status: SensorStatus, counts: int,
                  now: float) -> None:
        """Sensor ``s`` of cushion ``c`` does not read OK."""
        reason = "sensor_open" if status is SensorStatus.OPEN else "sensor_short"
        self.st.trip(reason, c, f"{SENSOR_NAMES[s]} sensor of cushion {c} is "
                                f"{status.value} ({counts} counts)", now, sensor=s)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every sensor the trip involved reads OK."""
        c = latch.trip.cushion
        assert c is not None
        bad = [f"{SENSOR_NAMES[s]} {st.value}" for s, st, _ in self.st.latest_sensors(c)
               if s in latch.sensors and st is not SENSOR_OK]
        if bad:
            return f"cushion {c}: {', '.join(bad)}", ""
        return None, "sensor reads OK again"
