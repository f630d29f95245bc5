"""The identification experiment as a state machine (connect, prepare, hold, heat, cool,
fit): it drives the controller's outputs through the supervisor's gate and records every
report.  The physics and why these phases: the package docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from controller.control import SlopeEstimator
from controller.room import RoomAverage
from controller.service import water_mean
from controller.supervisor import Supervisor
from firmware_bridge.link import BoardLink, BoardReading
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.clock import Clock
from hydrotherm.config import CUSHIONS, Config

from .fit import analyse
from .fmt import fmt_c, hms
from .results import AutotuneError, AutotuneResult, AutotuneSettings, Record

PHASES = ("connect", "prepare", "hold", "heat", "cool", "fit", "done", "aborted")
_RUNNING = ("hold", "heat", "cool")
_ARMED = ("prepare", "hold", "heat", "cool", "fit")


class ControllerLike(Protocol):
    """What the tuner needs from ``controller.service.Controller``."""

    cfg: Config
    link: BoardLink
    clock: Clock
    supervisor: Supervisor


class Autotuner:
    """The identification experiment as a state machine; see the module docstring.

    ``step()`` every poll; ``progress`` (text), ``phase``, ``percent``, ``elapsed_s`` while
    it runs; ``done`` once finished, then ``result`` (success) or ``error`` (aborted).
    ``abort(why)`` stops it at once (Ctrl-C): outputs 0, relay open.
    """

    def __init__(self, controller: ControllerLike, cushions: Sequence[int] = (0, 1),
                 room_c: float | None = None, settings: AutotuneSettings | None = None,
                 heater_w: float | None = None) -> None:
        """``room_c``: the room temperature measured by a person (None: identify it);
        ``heater_w``: the heater power measured (None: the nameplate ``plant.heater_w``)."""
        cushions = tuple(sorted(set(cushions)))
        if not cushions or any(isinstance(c, bool) or c not in range(CUSHIONS)
                               for c in cushions):
            raise ValueError(f"cushions must be a non-empty subset of 0..{CUSHIONS - 1}, "
                             f"got {cushions!r}")
        if getattr(controller, "running", False):
            raise AutotuneError("the controller is running: stop it first (the autotune "
                                "drives the heaters itself, through the supervisor)")
        self.controller = controller
        self.cfg = controller.cfg
        self.link = controller.link
        self.clock = controller.clock
        self.supervisor = controller.supervisor
        self.cushions = cushions
        self.settings = settings or AutotuneSettings()
        self.room_c = None if room_c is None else float(room_c)
        if heater_w is not None and not (math.isfinite(heater_w) and heater_w > 0):
            raise ValueError(f"heater_w must be a positive power in W, got {heater_w!r}")
        self.heater_w = None if heater_w is None else float(heater_w)
        s = self.settings
        plant = self.cfg.plant
        cw_cfg = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        # the plate holds C_p·P/h above the water at full power; once off, that heat lifts
        # the water by about C_p·P/(h·(C_w + C_p)): stop heating that much below the ceiling
        # judged for the worst table the configuration could be wrong about (a stronger
        # heater, a weaker plate coupling, less water: ``plausible_carry_factor``)
        self._carry_c = (s.plausible_carry_factor * plant.plate_heat_capacity_j_per_k
                         * plant.heater_w / (plant.plate_to_water_w_per_k
                                             * (cw_cfg + plant.plate_heat_capacity_j_per_k)))
        self.ceiling_c = self.cfg.control.setpoint_max_c - s.ceiling_margin_c
        self.heat_stop_c = self.ceiling_c - self._carry_c

        self.phase = "connect"
        self.error: str | None = None
        self.result: AutotuneResult | None = None
        self._t_created = self.clock.now()
        self._phase_at = self._t_created
        self._t0: float | None = None  # start of hold: the record's origin
        self._heat_at: float | None = None
        self._heat_end: float | None = None
        self._heating = [c in cushions for c in range(CUSHIONS)]
        self._heat_stopped_at: list[float | None] = [None] * CUSHIONS
        self._cmd = [0.0] * CUSHIONS
        self._last_reading: BoardReading | None = None
        self._relay_asked_at = -math.inf
        self._relay_open_sent = False
        self._slopes = [SlopeEstimator(self.cfg.control.slope_window_s) for _ in range(CUSHIONS)]
        self._estimate: list[float | None] = [None] * CUSHIONS
        self._record = Record()
        #: the board's room sensor over the record (protocol 1.1): the room, measured
        self.room_record = RoomAverage()

    # --- state -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.phase in ("done", "aborted")

    @property
    def elapsed_s(self) -> float:
        return self.clock.now() - self._t_created

    def _planned_s(self) -> float:
        s = self.settings
        heat = s.heat_s if self._heat_end is None else self._heat_end - self._heat_start()
        return s.hold_s + heat + s.cool_s

    def _heat_start(self) -> float:
        if self._heat_at is not None:
            return self._heat_at
        return (self._t0 or 0.0) + self.settings.hold_s

    @property
    def percent(self) -> float:
        if self.phase == "done":
            return 100.0
        if self._t0 is None:
            return 0.0
        frac = (self.clock.now() - self._t0) / self._planned_s()
        return max(0.0, min(99.0, 100.0 * frac))

    @property
    def progress(self) -> str:
        """One line: phase, percent, elapsed, what is happening."""
        head = f"autotune {self.phase} {self.percent:3.0f} % ({hms(self.elapsed_s)} elapsed"
        if self.phase in _RUNNING and self._t0 is not None:
            left = self._t0 + self._planned_s() - self.clock.now()
            head += f", about {hms(max(0.0, left))} left"
        head += ")"
        waters = ", ".join(f"cushion {c} {fmt_c(self._estimate[c])}" for c in self.cushions)
        if self.phase == "connect":
            return f"{head}: waiting for the board"
        if self.phase == "prepare":
            return f"{head}: arming the supervisor and closing the relay"
        if self.phase == "hold":
            return f"{head}: heaters at 0 %, measuring the drift; {waters}"
        if self.phase == "heat":
            on = [c for c in self.cushions if self._heating[c]]
            what = (f"heaters of cushion {', '.join(map(str, on))} at 100 %" if on
                    else "heaters off")
            return f"{head}: {what}; {waters}"
        if self.phase == "cool":
            return f"{head}: heaters at 0 %, measuring the cooling; {waters}"
        if self.phase == "fit":
            return f"{head}: fitting the model"
        if self.phase == "done":
            return f"{head}: identified"
        return f"{head}: ABORTED: {self.error}"

    # --- the loop ----------------------------------------------------------------------------

    def step(self) -> None:
        """Do what is due now.  Never blocks; safe to call after the end (keeps 0 %)."""
        link = self.link
        link.poll()
        now = self.clock.now()
        reading = link.latest
        fresh = reading is not None and reading is not self._last_reading
        if fresh:
            self._last_reading = reading
        if self.done:
            self._safe_outputs()
            return
        if fresh:
            self._observe(reading, now)  # type: ignore[arg-type]
        try:
            if self.phase in _ARMED:
                self.supervisor.check()
                why = self._unsafe(fresh)
                if why is not None:
                    self._abort(why)
                    return
            self._advance(now)
        except AutotuneError as exc:
            self._abort(str(exc))
            return
        if self.done:
            return
        if self.phase in _ARMED:
            self.supervisor.control_heartbeat()
        self._actuate()

    def abort(self, why: str = "stopped by the user") -> None:
        """Stop now: heaters 0 %, relay open, ``error`` = ``why``."""
        if not self.done:
            self._abort(why)

    def _observe(self, reading: BoardReading, now: float) -> None:
        heat_on = [self.phase in _RUNNING and c in self.cushions for c in range(CUSHIONS)]
        setpoints = [self.cfg.control.setpoint_max_c if heat_on[c]
                     else self.cfg.control.setpoint_c[c] for c in range(CUSHIONS)]
        self.supervisor.observe(reading, list(self._cmd), setpoints, heat_on)
        lag = self.cfg.sensor.lag_s
        for c in range(CUSHIONS):
            m = water_mean(reading, c)
            sl = self._slopes[c]
            if m is None:
                sl.clear()
                self._estimate[c] = None
            else:
                sl.add(now, m)
                # the lag correction once the slope is trustworthy (half a window of data)
                known = sl.span_s >= 0.5 * sl.window_s
                self._estimate[c] = m + lag * sl.slope if known else m
        if self._t0 is not None and self.phase in _RUNNING:
            rec = self._record
            rec.t.append(now)
            self.room_record.add(reading.room)
            for c in range(CUSHIONS):
                rec.water[c].append(water_mean(reading, c))
                rec.applied[c].append(reading.cushions[c].applied)

    def _unsafe(self, fresh: bool) -> str | None:
        """Why the experiment must stop now (None: carry on).  Trips and the link are
        judged on every poll, the report itself when a new one has arrived."""
        trips = self.supervisor.trips
        if trips:
            return "safety trip: " + "; ".join(
                f"{t.reason}" + (f" (cushion {t.cushion})" if t.cushion is not None else "")
                + f": {t.detail}" for t in trips)
        link = self.link
        if not link.healthy:
            return f"link lost ({link.state.value}{': ' + link.error if link.error else ''})"
        if not fresh:
            return None
        r = link.latest
        assert r is not None
        if r.faults:
            return f"the board reports faults: {', '.join(r.fault_names)}"
        for c in range(CUSHIONS):
            cr = r.cushions[c]
            if cr.cutout_open:
                return f"the heater cut-out of cushion {c} is open"
            for name, s in (("primary", cr.primary), ("redundant", cr.redundant)):
                if s.status is SensorStatus.OK and s.celsius is not None:
                    if s.celsius >= self.settings.abort_c:
                        return (f"{name} sensor of cushion {c} reads {s.celsius:.2f} °C, at "
                                f"or above the experiment's limit {self.settings.abort_c:g} °C")
                elif c in self.cushions:
                    return f"{name} sensor of cushion {c} is {s.status.value}"
            if c in self.cushions and self._estimate[c] is None:
                return f"no valid water reading on cushion {c}"
        return None

    def _enter(self, phase: str, now: float) -> None:
        self.phase = phase
        self._phase_at = now

    def _advance(self, now: float) -> None:
        s = self.settings
        in_phase = now - self._phase_at
        cmd = [0.0] * CUSHIONS
        if self.phase == "connect":
            r = self.link.latest
            if self.link.healthy and r is not None and not r.faults:
                self._enter("prepare", now)
            elif in_phase > s.connect_timeout_s:
                detail = (f"board reports faults {', '.join(r.fault_names)}"
                          if r is not None and r.faults and self.link.connected
                          else f"link {self.link.state.value}"
                          + (f": {self.link.error}" if self.link.error else ""))
                raise AutotuneError(f"no usable board within {s.connect_timeout_s:g} s "
                                    f"({detail})")
        elif self.phase == "prepare":
            self._prepare(now, in_phase)
        elif self.phase == "hold":
            if in_phase >= s.hold_s:
                self._heat_at = now
                self._enter("heat", now)
                self._heat_cmd(cmd, now)
        elif self.phase == "heat":
            if in_phase >= s.heat_s:
                self._end_heat(now)
            else:
                self._heat_cmd(cmd, now)
                if not any(self._heating):
                    self._end_heat(now)
        elif self.phase == "cool":
            if in_phase >= s.cool_s:
                # heaters stay off from here; the fit runs on the next step, so the
                # progress line can say so before the (sub-second) computation
                self._enter("fit", now)
                self._safe_outputs()
        elif self.phase == "fit":
            self._finish(now)
        self._cmd = cmd

    def _prepare(self, now: float, in_phase: float) -> None:
        sup = self.supervisor
        if sup.trips:
            raise AutotuneError("latched safety trips before the start: "
                                + ", ".join(t.reason for t in sup.trips)
                                + " (clear them with a reset, then retry)")
        r = self.link.latest
        assert r is not None
        for c in self.cushions:
            w = self._estimate[c]
            if w is None:
                raise AutotuneError(f"no valid water reading on cushion {c}")
            limit = self.heat_stop_c - self.settings.min_rise_c
            if w > limit:
                raise AutotuneError(
                    f"cushion {c} is at {w:.1f} °C, too warm for the experiment: it needs "
                    f"{self.settings.min_rise_c:g} °C of headroom below "
                    f"{self.heat_stop_c:.1f} °C; let it cool below {limit:.1f} °C")
        # wider, still safe bounds while the experiment runs (supervisor/identification.py)
        sup.begin_identification(self.cushions)
        if not sup.armed:
            sup.arm()
        if r.relay_closed:
            self._t0 = now
            self._enter("hold", now)
            return
        if not sup.relay_allowed:
            raise AutotuneError("the supervisor keeps the master relay open")
        if in_phase > self.settings.relay_timeout_s:
            raise AutotuneError(f"the master relay did not close within "
                                f"{self.settings.relay_timeout_s:g} s")
        if now - self._relay_asked_at >= 1.0:
            self._relay_asked_at = now
            self.link.set_relay(True)

    def _heat_cmd(self, cmd: list[float], now: float) -> None:
        """Full power for each driven cushion still below its stop temperature; a cushion
        that reached it stays off for the rest of the experiment."""
        r = self.link.latest
        for c in self.cushions:
            if not self._heating[c]:
                continue
            w = self._estimate[c]
            hottest = max((s.celsius for s in (r.cushions[c].primary, r.cushions[c].redundant)
                           if s.status is SensorStatus.OK and s.celsius is not None),
                          default=math.inf) if r is not None else math.inf
            if w is None or w >= self.heat_stop_c or hottest >= self.ceiling_c:
                self._heating[c] = False
                self._heat_stopped_at[c] = now
                continue
            cmd[c] = 1.0

    def _end_heat(self, now: float) -> None:
        for c in self.cushions:
            if self._heating[c]:
                self._heating[c] = False
                self._heat_stopped_at[c] = now
        self._heat_end = now
        self._enter("cool", now)

    def _actuate(self) -> None:
        gated = self.supervisor.gate(self._cmd)
        if not self.link.healthy:
            gated = (0.0, 0.0)
        self.link.set_outputs(*gated)

    def _safe_outputs(self) -> None:
        """0 % on both channels and the master relay open (asked once)."""
        self._cmd = [0.0] * CUSHIONS
        self.link.set_outputs(0.0, 0.0)
        if not self._relay_open_sent and self.link.connected:
            self._relay_open_sent = self.link.set_relay(False)

    def _abort(self, why: str) -> None:
        self.error = why
        self.phase = "aborted"
        self.supervisor.end_identification()
        self._safe_outputs()

    def _room_note(self, source: str) -> str:
        """For the report: how the room was measured, or why the board could not."""
        r = self.room_record
        if source == "measured":
            return (f"mean of {r.valid} reports over the experiment, "
                    f"{r.lo:.1f}–{r.hi:.1f} °C")
        if source == "identified":
            return f"the board could not measure it: {r.why_not}"
        return ""

    def _finish(self, now: float) -> None:
        self.supervisor.end_identification()
        # the room: given by a person (``room_c``), else measured by the board's room
        # sensor throughout the record, else identified by the fit (issue 10: never assumed)
        room_c, room_source = self.room_c, "given"
        if room_c is None:
            room_c = self.room_record.measured()
            room_source = "measured" if room_c is not None else "identified"
        try:
            self.result = analyse(self._record, self._t0 or 0.0, self._heat_start(),
                                  self._heat_end or now, self._heat_stopped_at,
                                  self.cushions, self.cfg, room_c, self.settings,
                                  self.heater_w, room_source=room_source,
                                  room_note=self._room_note(room_source))
        except AutotuneError as exc:
            self._abort(f"identification failed: {exc}")
            return
        self.phase = "done"


# --- the analysis ----------------------------------------------------------------------------

