"""What the rules judge: the latest report, the histories, the per-cushion state, the
plate model and the latches, kept up to date by the supervisor's data path.

A rule reads this and raises trips through ``trip()``; it never changes the histories
(that is the data path's job, once, for every rule), so two rules cannot disagree about
what the water did.
"""

from __future__ import annotations

import math

from firmware_bridge.link import BoardReading
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.config import CUSHIONS, PlantConfig, PlausibleConfig, SafetyConfig

from .envelope import Envelope
from .history import DECIMATION_S, CushionState, SensorTrack
from .latch import Latches


class SupervisorState:
    def __init__(self, cfg: SafetyConfig, plant: PlantConfig, plausible: PlausibleConfig,
                 latches: Latches, now: float) -> None:
        self.cfg = cfg
        self.latches = latches
        self.armed = False
        self.last_report_at = now  # before any report: from construction (or arm())
        self.last_heartbeat = now
        self.reports = 0
        self.last_reading: BoardReading | None = None
        hist_len = int(math.ceil(cfg.no_rise_window_s / DECIMATION_S)) + 5
        off_len = int(math.ceil(cfg.rise_while_off_window_s / DECIMATION_S)) + 5
        self.tracks = [[SensorTrack(hist_len, off_len) for _ in range(2)]
                       for _ in range(CUSHIONS)]
        self.env = Envelope(cfg, plant, plausible)
        self.cushions = [CushionState(hist_len) for _ in range(CUSHIONS)]

    def trip(self, reason: str, cushion: int | None, detail: str, now: float,
             sensor: int | None = None, flags: int = 0) -> None:
        """Latch a trip (see ``Latches.trip``)."""
        self.latches.trip(reason, cushion, detail, now, self.reports, sensor, flags)

    def rates(self, c: int) -> list[tuple[int, float]]:
        """(sensor, °C/min) of the sensors of cushion ``c`` whose rate is known."""
        out = []
        for s, tr in enumerate(self.tracks[c]):
            r = tr.slope()
            if r is not None:
                out.append((s, r * 60.0))
        return out

    def latest_sensors(self, c: int) -> list[tuple[int, SensorStatus, float | None]]:
        """(sensor, status, °C) of cushion ``c`` in the latest report."""
        r = self.last_reading
        assert r is not None
        cr = r.cushions[c]
        return [(0, cr.primary.status, cr.primary.celsius),
                (1, cr.redundant.status, cr.redundant.celsius)]
