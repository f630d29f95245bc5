"""NTC thermistor in a divider, read by an ADC: counts <-> °C with the Beta equation.

Circuit (reference board): Vref — series resistor — ADC node — NTC — ground.  So a
hotter NTC (lower resistance) reads fewer counts; an open NTC pulls the node to the top
rail, a shorted one to the bottom rail.  Both the simulator (°C -> counts) and the link
(counts -> °C) use this one module, so they can never disagree about the circuit.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from hydrotherm.config import SensorConfig

KELVIN = 273.15


class SensorStatus(enum.Enum):
    OK = "ok"
    OPEN = "open"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One converted sensor: ``celsius`` is None unless the status is OK."""

    counts: int
    status: SensorStatus
    celsius: float | None


class Thermistor:
    """Conversion for one sensor type; parameters from ``[sensor]`` in the configuration."""

    def __init__(self, cfg: SensorConfig) -> None:
        self.r0 = cfg.nominal_ohm
        self.t0_k = cfg.nominal_c + KELVIN
        self.beta = cfg.beta_k
        self.rs = cfg.series_ohm
        self.full = (1 << cfg.adc_bits) - 1
        margin = cfg.rail_fraction * self.full
        self.low_rail = margin  # at or below: shorted
        self.high_rail = self.full - margin  # at or above: open
        self.valid_min_c = cfg.valid_min_c
        self.valid_max_c = cfg.valid_max_c

    def resistance_at(self, celsius: float) -> float:
        return self.r0 * math.exp(self.beta * (1.0 / (celsius + KELVIN) - 1.0 / self.t0_k))

    def counts_at(self, celsius: float) -> int:
        """The ADC counts an intact sensor at ``celsius`` gives (rounded, clamped)."""
        r = self.resistance_at(celsius)
        c = round(self.full * r / (r + self.rs))
        return min(self.full, max(0, c))

    def counts_exact(self, celsius: float) -> float:
        r = self.resistance_at(celsius)
        return self.full * r / (r + self.rs)

    def celsius_at(self, counts: float) -> float:
        """Inverse of ``counts_exact``; only meaningful strictly between the rails."""
        r = self.rs * counts / (self.full - counts)
        return 1.0 / (1.0 / self.t0_k + math.log(r / self.r0) / self.beta) - KELVIN

    def read_rails_only(self, counts: int) -> SensorReading:
        """Classify and convert a plate or room sensor (protocol 1.1): only a rail is a
        broken sensor.  The water's plausible range does not apply: a dry plate is
        legitimately far above 60 °C, and that is what the reading must show."""
        if counts >= self.high_rail:
            return SensorReading(counts, SensorStatus.OPEN, None)
        if counts <= self.low_rail:
            return SensorReading(counts, SensorStatus.SHORT, None)
        return SensorReading(counts, SensorStatus.OK, self.celsius_at(counts))

    def read(self, counts: int) -> SensorReading:
        """Classify and convert raw counts: near a rail or outside the valid range is a
        broken sensor (open when cold/high counts, short when hot/low counts)."""
        if counts >= self.high_rail:
            return SensorReading(counts, SensorStatus.OPEN, None)
        if counts <= self.low_rail:
            return SensorReading(counts, SensorStatus.SHORT, None)
        c = self.celsius_at(counts)
        if c < self.valid_min_c:
            return SensorReading(counts, SensorStatus.OPEN, None)
        if c > self.valid_max_c:
            return SensorReading(counts, SensorStatus.SHORT, None)
        return SensorReading(counts, SensorStatus.OK, c)
