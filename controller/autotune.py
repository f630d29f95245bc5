"""``hydrotherm autotune``: identify the plant on the running table and tune the law.

What is identified, and why only that
-------------------------------------
The model of ``sim/plant.py`` per cushion is::

    C_p dT_p/dt = P − h (T_p − T_w)
    C_w dT_w/dt = h (T_p − T_w) − UA (T_w − T_room) + K (T_o − T_w)

Only the water is measured.  From the heater power to the water temperature the
transfer function is ``h / (C_p C_w s² + (h C_w + h C_p + C_p UA) s + h UA)`` (taking
``K`` into ``UA`` for the moment): three numbers can be seen, four are unknown.  So:

* **The plate's heat capacity ``C_p`` is taken from the configuration** (it is a
  property of the heater plate, not of how the cushion was filled); the fit finds
  ``C_w`` (hence ``water_kg = C_w / c``), ``UA`` and the plate time constant
  ``τ_p = C_p / h`` (hence ``h``).  A wrong ``C_p`` is mostly absorbed by ``C_w``.
* **The heater power is taken from the configuration** (``plant.heater_w``, the
  nameplate), never identified: multiplying the power and every capacity and conductance
  by the same factor leaves the temperatures unchanged, so temperatures alone cannot tell
  them apart.  If the configured power is wrong by a factor α, the identified ``C_w``,
  ``UA`` and ``h`` all come out α times their true values — the law, whose gain is
  derived the same way (``kp = C_w / τ_cl``), then still behaves as designed, because it
  only ever uses those numbers in ratios with ``heater_w``.  The report says so.
* **The coupling ``K`` between the cushions is taken from the configuration** and used
  as a known input, with the other cushion's measured temperature; when both cushions
  are driven alike (the default) it hardly matters.
* **The room temperature is not identified**: it is ``control.room_estimate_c`` unless
  the caller passes ``room_c``.  The loss is judged from how fast the warmed water cools
  towards it, so an error of δ K in the room temperature makes ``UA`` wrong by about
  δ / (T_water − T_room) — some 20 % per kelvin after the default experiment from a cold
  start.  Measure the room if ``UA`` matters to you.

The experiment
--------------
Driven only through the supervisor's gate (``Supervisor.gate``), on the lag-compensated
mean of each cushion's valid sensors (``T_s + τ·dT_s/dt``, the controller's estimate):

1. ``connect``: wait for the link and a report without fault flags;
2. ``prepare``: refuse latched trips, arm the supervisor, close the master relay, refuse a
   cushion already too warm to heat a few kelvin safely;
3. ``hold``: 0 % for ``hold_s`` (300 s): the drift at rest (and a plate still warm from
   earlier heating shows here);
4. ``heat``: 100 % for ``heat_s`` (40 min), each cushion stopping early if its water
   would otherwise settle above ``setpoint_max_c − ceiling_margin_c`` (39 °C) once the
   plate's stored heat has moved into it; no power is ever asked above that;
5. ``cool``: 0 % for ``cool_s`` (30 min): the plate's heat moves into the water, then the
   water cools towards the room;
6. ``fit``: the whole record (hold, heat, cool) is fitted by the exact discrete 2-state
   model (Levenberg–Marquardt over ``ln C_w``, ``UA``, ``ln τ_p``, the initial water
   temperature and the initial plate excess), started from the closed-form estimates of
   the late heating slope ``(P − UA ΔT)/(C_w + C_p)`` and the cooling rate
   ``−UA ΔT/(C_w + C_p)``.  The uncertainties are 1σ from the fit's covariance, inflated
   for the residuals' autocorrelation; R² and the residual rms measure the fit.

Total: about 75 min plus the connection.  On any trip, a lost link, a fault flag, a sensor
at or above ``abort_c`` (39.5 °C), a broken sensor or an open cut-out the experiment
aborts at once: both outputs 0, master relay open, ``error`` says why.

The gains: the law's proportional gain acts on the stored-energy temperature, which
integrates the heater power through ``C_w``; ``kp = C_w / τ_cl`` gives that loop the
closed-loop time constant ``τ_cl`` (130 s, but at least 1.5 × (τ_p + sensor lag) so the
plate and the sensor stay faster than the loop), and ``ti = 7 τ_cl``.

It is clock- and poll-driven like the controller: call ``Autotuner.step()`` every poll
(every few milliseconds in real time, every simulation step in-process); nothing sleeps.
While it runs, nothing else may poll the controller (it must not be started): the tuner
is the control loop, feeding the supervisor and sending its heartbeats.  In real time
there is no host watchdog thread around it; the board's dead-man (3 s) is the layer
below.  A real-time driver (the CLI) looks like::

    tuner = Autotuner(controller)            # Controller built, not started
    try:
        while not tuner.done:
            tuner.step()
            show(tuner.progress)              # throttled by the caller
            clock.sleep(0.005)
    except KeyboardInterrupt:
        tuner.abort("interrupted")
        tuner.step()                          # push the 0 % and the open relay
    finally:
        controller.stop()
    if tuner.error: fail(tuner.error)
    print(format_report(tuner.result)); write_config(path, apply_result(cfg, tuner.result))

``autotune_in_process`` does the same on a simulated table (``--sim``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from firmware_bridge.link import BoardLink, BoardReading
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.clock import Clock
from hydrotherm.config import CUSHIONS, Config, ConfigError, from_mapping, to_toml

from .control import SlopeEstimator
from .service import water_mean
from .supervisor import Supervisor

PHASES = ("connect", "prepare", "hold", "heat", "cool", "fit", "done", "aborted")
_RUNNING = ("hold", "heat", "cool")
_ARMED = ("prepare", "hold", "heat", "cool", "fit")


class AutotuneError(RuntimeError):
    """The experiment was aborted or its result cannot be used; the message says why."""


class ControllerLike(Protocol):
    """What the tuner needs from ``controller.service.Controller``."""

    cfg: Config
    link: BoardLink
    clock: Clock
    supervisor: Supervisor


@dataclass(frozen=True)
class AutotuneSettings:
    """The experiment and the tuning rule (defaults: the module docstring)."""

    hold_s: float = 300.0
    heat_s: float = 2400.0
    cool_s: float = 1800.0
    #: no power is asked when the water would settle above setpoint_max_c minus this
    ceiling_margin_c: float = 1.0
    #: any sensor at or above this aborts the experiment
    abort_c: float = 39.5
    #: a cushion must be able to rise at least this much below the ceiling to start
    min_rise_c: float = 3.0
    connect_timeout_s: float = 15.0
    relay_timeout_s: float = 5.0
    #: resolution of the fitted record
    fit_bin_s: float = 5.0
    #: the law: closed-loop time constant of the energy loop, and its floor in units of
    #: (plate time constant + sensor lag)
    closed_loop_tau_s: float = 130.0
    min_tau_factor: float = 1.5
    ti_per_tau: float = 7.0
    kp_min_w_per_k: float = 50.0
    kp_max_w_per_k: float = 20000.0


@dataclass(frozen=True)
class Estimate:
    """An identified value and its 1σ uncertainty (same unit)."""

    value: float
    sigma: float

    @property
    def relative(self) -> float:
        return self.sigma / abs(self.value) if self.value else math.inf

    def __str__(self) -> str:
        return f"{_g(self.value)} ± {_g(self.sigma)}"


@dataclass(frozen=True)
class CushionFit:
    """What one cushion's record says."""

    cushion: int
    water_capacity_j_per_k: Estimate  # C_w
    water_kg: Estimate  # C_w / c
    loss_to_room_w_per_k: Estimate  # UA
    plate_time_constant_s: Estimate  # C_p / h
    plate_to_water_w_per_k: Estimate  # h, with C_p from the configuration
    r2: float  # of the water record
    residual_rms_c: float
    residual_max_c: float
    points: int
    iterations: int
    start_c: float
    peak_c: float
    heated_s: float
    #: the closed-form look at the record (°C/min; at the mean water temperature given)
    hold_rate_c_per_min: float
    heat_rate_c_per_min: float
    heat_rate_at_c: float
    cool_rate_c_per_min: float
    cool_rate_at_c: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutotuneResult:
    """The experiment's outcome: per-cushion fits, what would change in the configuration
    (``proposed``, dotted keys, next to ``previous``), and the assumptions it rests on."""

    fits: tuple[CushionFit, ...]
    proposed: dict[str, float]
    previous: dict[str, float]
    room_c: float
    heater_w: float
    plate_heat_capacity_j_per_k: float
    specific_heat_j_per_kg_k: float
    coupling_w_per_k: float
    closed_loop_tau_s: float
    duration_s: float
    warnings: tuple[str, ...] = ()
    #: reasons not to apply the result (empty: usable)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def fit(self, cushion: int) -> CushionFit:
        for f in self.fits:
            if f.cushion == cushion:
                return f
        raise KeyError(f"cushion {cushion} was not identified")


# --- the tuner -------------------------------------------------------------------------------


@dataclass
class _Record:
    """Every report from the start of ``hold``: time, each cushion's sensor mean (None: no
    valid sensor) and applied fraction."""

    t: list[float] = field(default_factory=list)
    water: list[list[float | None]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
    applied: list[list[float]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])


class Autotuner:
    """The identification experiment as a state machine; see the module docstring.

    ``step()`` every poll; ``progress`` (text), ``phase``, ``percent``, ``elapsed_s`` while
    it runs; ``done`` once finished, then ``result`` (success) or ``error`` (aborted).
    ``abort(why)`` stops it at once (Ctrl-C): outputs 0, relay open.
    """

    def __init__(self, controller: ControllerLike, cushions: Sequence[int] = (0, 1),
                 room_c: float | None = None, settings: AutotuneSettings | None = None) -> None:
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
        self.room_c = self.cfg.control.room_estimate_c if room_c is None else float(room_c)
        s = self.settings
        plant = self.cfg.plant
        cw_cfg = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        # the plate holds C_p·P/h above the water at full power; once off, that heat lifts
        # the water by about C_p·P/(h·(C_w + C_p)): stop heating that much below the ceiling
        self._carry_c = (plant.plate_heat_capacity_j_per_k * plant.heater_w
                         / (plant.plate_to_water_w_per_k
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
        self._record = _Record()

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
        head = f"autotune {self.phase} {self.percent:3.0f} % ({_hms(self.elapsed_s)} elapsed"
        if self.phase in _RUNNING and self._t0 is not None:
            left = self._t0 + self._planned_s() - self.clock.now()
            head += f", about {_hms(max(0.0, left))} left"
        head += ")"
        waters = ", ".join(f"cushion {c} {_fmt_c(self._estimate[c])}" for c in self.cushions)
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
        self._safe_outputs()

    def _finish(self, now: float) -> None:
        try:
            self.result = analyse(self._record, self._t0 or 0.0, self._heat_start(),
                                  self._heat_end or now, self._heat_stopped_at,
                                  self.cushions, self.cfg, self.room_c, self.settings)
        except AutotuneError as exc:
            self._abort(f"identification failed: {exc}")
            return
        self.phase = "done"


# --- the analysis ----------------------------------------------------------------------------


@dataclass
class _Series:
    """A cushion's record on a uniform grid of ``dt`` seconds from ``t0``."""

    t0: float
    dt: float
    water: list[float]  # lag-compensated, mean over each bin
    power: list[float]  # W, mean over each bin
    other: list[float]  # the other cushion's compensated water


def _uniform(t: list[float], v: list[float | None], t0: float, dt: float, n: int) -> list[float]:
    """Means of ``v`` in bins ``[t0 + k dt, t0 + (k+1) dt)``; empty bins interpolated."""
    sums = [0.0] * n
    counts = [0] * n
    for ti, vi in zip(t, v, strict=True):
        if vi is None:
            continue
        k = int((ti - t0) // dt)
        if 0 <= k < n:
            sums[k] += vi
            counts[k] += 1
    out: list[float | None] = [sums[k] / counts[k] if counts[k] else None for k in range(n)]
    known = [k for k in range(n) if out[k] is not None]
    if not known:
        raise AutotuneError("no valid readings were recorded")
    first, last = known[0], known[-1]
    prev = first
    for k in range(n):
        if out[k] is not None:
            if k - prev > 1:
                a, b = out[prev], out[k]
                for j in range(prev + 1, k):
                    out[j] = a + (b - a) * (j - prev) / (k - prev)  # type: ignore[operator]
            prev = k
    for k in range(first):
        out[k] = out[first]
    for k in range(last + 1, n):
        out[k] = out[last]
    return out  # type: ignore[return-value]


def _centred_slopes(v: list[float], dt: float, half: int) -> list[float]:
    """Least-squares slope of ``v`` over ±``half`` samples around each one (shorter at the
    ends), O(n) with prefix sums.  Offline, so centred: no lag, unlike a live estimate."""
    n = len(v)
    pv = [0.0] * (n + 1)
    pkv = [0.0] * (n + 1)
    for k in range(n):
        pv[k + 1] = pv[k] + v[k]
        pkv[k + 1] = pkv[k] + k * v[k]
    out = []
    for k in range(n):
        lo, hi = max(0, k - half), min(n, k + half + 1)
        m = hi - lo
        if m < 3:
            out.append(0.0)
            continue
        sk = (lo + hi - 1) * m / 2.0
        skk = _sum_sq(hi - 1) - _sum_sq(lo - 1)
        sv = pv[hi] - pv[lo]
        skv = pkv[hi] - pkv[lo]
        den = m * skk - sk * sk
        out.append((m * skv - sk * sv) / den / dt if den > 0 else 0.0)
    return out


def _sum_sq(k: int) -> float:
    """0² + 1² + ... + k² (0 for k < 0)."""
    return k * (k + 1) * (2 * k + 1) / 6.0 if k > 0 else 0.0


def _compensated(rec: _Record, c: int, t0: float, n: int, lag_s: float,
                 window_s: float) -> list[float]:
    """1 s means of cushion ``c``'s sensor mean, corrected for the sensor lag."""
    raw = _uniform(rec.t, rec.water[c], t0, 1.0, n)
    slopes = _centred_slopes(raw, 1.0, max(1, int(round(window_s / 2.0))))
    return [r + lag_s * s for r, s in zip(raw, slopes, strict=True)]


def _bin(v: list[float], m: int) -> list[float]:
    return [sum(v[k:k + m]) / len(v[k:k + m]) for k in range(0, len(v) - m + 1, m)]


def _slope(t: list[float], v: list[float]) -> float:
    n = len(t)
    if n < 3:
        return 0.0
    mt = sum(t) / n
    mv = sum(v) / n
    den = sum((x - mt) ** 2 for x in t)
    return sum((x - mt) * (y - mv) for x, y in zip(t, v, strict=True)) / den if den else 0.0


def _f_of_a(a: tuple[float, float, float, float], dt: float,
            fn: Callable[[float], float]) -> tuple[float, float, float, float]:
    """``fn(A)`` for a 2×2 matrix with real distinct eigenvalues (Sylvester's formula)."""
    a00, a01, a10, a11 = a
    half_tr = 0.5 * (a00 + a11)
    det = a00 * a11 - a01 * a10
    disc = math.sqrt(max(half_tr * half_tr - det, 0.0))
    if disc <= 1e-15:
        raise AutotuneError("degenerate model (equal eigenvalues)")
    l1, l2 = half_tr + disc, half_tr - disc
    f1, f2 = fn(l1 * dt), fn(l2 * dt)
    d = l1 - l2
    # fn(A) = (f1 (A − l2 I) − f2 (A − l1 I)) / (l1 − l2)
    return ((f1 * (a00 - l2) - f2 * (a00 - l1)) / d, (f1 - f2) * a01 / d,
            (f1 - f2) * a10 / d, (f1 * (a11 - l2) - f2 * (a11 - l1)) / d)


def _expm1_over(z: float) -> float:
    """(e^z − 1)/z, accurate at 0."""
    return math.expm1(z) / z if abs(z) > 1e-8 else 1.0 + z / 2.0


@dataclass(frozen=True)
class _Known:
    cp: float
    k: float
    room: float


def _predict(theta: Sequence[float], s: _Series, known: _Known) -> list[float]:
    """The model's bin-mean water temperatures for parameters
    ``(ln C_w, UA, ln τ_p, T_w0, T_p0 − T_w0)``, inputs held over each bin (exact)."""
    ln_cw, ua, ln_tau, tw, d0 = theta
    cw = math.exp(ln_cw)
    cp = known.cp
    h = cp / math.exp(ln_tau)
    k = known.k
    a = (-h / cp, h / cp, h / cw, -(h + ua + k) / cw)
    dt = s.dt
    e00, e01, e10, e11 = _f_of_a(a, dt, math.exp)
    m00, m01, m10, m11 = (dt * x for x in _f_of_a(a, dt, _expm1_over))
    tp = tw + d0
    base = ua * known.room / cw
    kc = k / cw
    out = []
    for p, o in zip(s.power, s.other, strict=True):
        u0 = p / cp
        u1 = base + kc * o
        ntp = e00 * tp + e01 * tw + m00 * u0 + m01 * u1
        ntw = e10 * tp + e11 * tw + m10 * u0 + m11 * u1
        out.append(0.5 * (tw + ntw))
        tp, tw = ntp, ntw
    return out


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (small dense systems)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-300:
            raise ZeroDivisionError("singular")
        m[col], m[piv] = m[piv], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for j in range(col, n + 1):
                    m[r][j] -= f * m[col][j]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][j] * x[j] for j in range(r + 1, n))) / m[r][r]
    return x


def _inverse(a: list[list[float]]) -> list[list[float]]:
    n = len(a)
    cols = [_solve(a, [1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
    return [[cols[j][i] for j in range(n)] for i in range(n)]


@dataclass
class _FitOut:
    theta: list[float]
    residuals: list[float]
    cov: list[list[float]] | None
    iterations: int


def _levenberg_marquardt(resid: Callable[[list[float]], list[float]], x0: list[float],
                         steps: list[float], lo: list[float], hi: list[float],
                         max_iter: int = 80) -> _FitOut:
    """Minimise the sum of squared residuals; forward-difference Jacobian, Marquardt's
    diagonal damping, parameters kept within [lo, hi]."""
    n = len(x0)

    def jacobian(x: list[float], r: list[float]) -> list[list[float]]:
        """Columns d r / d x_j (forward differences, backward at an upper bound)."""
        cols = []
        for j in range(n):
            xj = list(x)
            hj = steps[j] if x[j] + steps[j] <= hi[j] else -steps[j]
            xj[j] += hj
            rj = resid(xj)
            cols.append([(b - a) / hj for a, b in zip(r, rj, strict=True)])
        return cols

    def normal(jac: list[list[float]]) -> list[list[float]]:
        return [[sum(p * q for p, q in zip(jac[i], jac[j], strict=True)) for j in range(n)]
                for i in range(n)]

    x = list(x0)
    r = resid(x)
    sse = sum(v * v for v in r)
    lam = 1e-3
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        jac = jacobian(x, r)
        jtj = normal(jac)
        jtr = [sum(p * q for p, q in zip(jac[i], r, strict=True)) for i in range(n)]
        improved = False
        while lam < 1e12:
            a = [[jtj[i][j] + (lam * jtj[i][i] if i == j else 0.0) for j in range(n)]
                 for i in range(n)]
            for i in range(n):
                a[i][i] += 1e-300
            try:
                dx = _solve(a, [-v for v in jtr])
            except ZeroDivisionError:
                lam *= 10.0
                continue
            xn = [min(hi[i], max(lo[i], x[i] + dx[i])) for i in range(n)]
            rn = resid(xn)
            ssen = sum(v * v for v in rn)
            if ssen < sse:
                small = all(abs(xn[i] - x[i]) < 1e-6 * steps[i] for i in range(n))
                rel = (sse - ssen) / max(sse, 1e-300)
                x, r, sse = xn, rn, ssen
                lam = max(lam / 5.0, 1e-9)
                improved = True
                if small or rel < 1e-10:
                    improved = False  # converged
                break
            lam *= 4.0
        if not improved:
            break
    try:
        cov: list[list[float]] | None = _inverse(normal(jacobian(x, r)))
    except ZeroDivisionError:
        cov = None
    return _FitOut(x, r, cov, it)


def _window(v: list[float], t0: float, a: float, b: float) -> tuple[list[float], list[float]]:
    """(times, values) of a 1 s series between a and b seconds (absolute clock)."""
    lo = max(0, int(math.ceil(a - t0)))
    hi = min(len(v), int(b - t0))
    ts = [t0 + k + 0.5 for k in range(lo, hi)]
    return ts, v[lo:hi]


def analyse(rec: _Record, t0: float, heat_start: float, heat_end: float,
            heat_stopped_at: Sequence[float | None], cushions: Sequence[int], cfg: Config,
            room_c: float, settings: AutotuneSettings) -> AutotuneResult:
    """Fit each driven cushion's record and derive the configuration changes."""
    if len(rec.t) < 10:
        raise AutotuneError("too few reports were recorded")
    plant = cfg.plant
    c_spec = plant.water_specific_heat_j_per_kg_k
    cp = plant.plate_heat_capacity_j_per_k
    heater = plant.heater_w
    lag = cfg.sensor.lag_s
    n1 = int((rec.t[-1] - t0) // 1.0) + 1
    comp = [_compensated(rec, c, t0, n1, lag, cfg.control.slope_window_s)
            for c in range(CUSHIONS)]
    applied = [_uniform(rec.t, list(rec.applied[c]), t0, 1.0, n1) for c in range(CUSHIONS)]
    m = max(1, int(round(settings.fit_bin_s)))
    known = _Known(cp, plant.coupling_w_per_k, room_c)
    tau_cfg = cp / plant.plate_to_water_w_per_k
    fits = []
    for c in cushions:
        fits.append(_fit_cushion(c, comp, applied, m, t0, heat_start, heat_end,
                                 heat_stopped_at[c] or heat_end, known, heater, c_spec,
                                 tau_cfg, plant.water_kg * c_spec,
                                 plant.loss_to_room_w_per_k, cfg.control.slope_window_s))
    return _result(fits, cfg, room_c, settings, rec.t[-1] - t0)


def _fit_cushion(c: int, comp: list[list[float]], applied: list[list[float]], m: int,
                 t0: float, heat_start: float, heat_end: float, stopped: float,
                 known: _Known, heater: float, c_spec: float, tau_cfg: float,
                 cw_cfg: float, ua_cfg: float, window_s: float) -> CushionFit:
    w1 = comp[c]
    o1 = comp[1 - c]
    series = _Series(t0, float(m), _bin(w1, m), [heater * a for a in _bin(applied[c], m)],
                     _bin(o1, m))
    n = len(series.water)
    if n < 20:
        raise AutotuneError(f"cushion {c}: the record is too short to fit")
    warnings: list[str] = []
    # --- the closed-form look: hold drift, late heating slope, late cooling slope ---
    settle = max(120.0, 5.0 * tau_cfg)
    hold_t, hold_v = _window(w1, t0, t0 + 60.0, heat_start)
    hold_rate = _slope(hold_t, hold_v)
    heated = stopped - heat_start
    a = max(heat_start + settle, stopped - max(600.0, 0.5 * heated))
    heat_t, heat_v = _window(w1, t0, min(a, stopped - 60.0), stopped)
    heat_rate = _slope(heat_t, heat_v)
    heat_at = sum(heat_v) / len(heat_v) if heat_v else math.nan
    end = t0 + len(w1) - 1
    cool_from = min(stopped + settle, end - 120.0)
    cool_t, cool_v = _window(w1, t0, cool_from, end)
    cool_rate = _slope(cool_t, cool_v)
    cool_at = sum(cool_v) / len(cool_v) if cool_v else math.nan
    # initial guess: UA/C from the cooling, C from the heating (coupling ignored here)
    ctot0 = cw_cfg + known.cp
    ua0 = ua_cfg
    dt_cool = cool_at - known.room
    if abs(dt_cool) > 1.0 and cool_rate < 0:
        a_loss = -cool_rate / dt_cool
        net = heat_rate + a_loss * (heat_at - known.room)
        if net > 0:
            ctot0 = heater / net
            ua0 = a_loss * ctot0
    cw0 = max(ctot0 - known.cp, 0.2 * cw_cfg)
    theta0 = [math.log(cw0), max(0.0, ua0), math.log(tau_cfg), series.water[0], 0.0]
    half = int(math.ceil(window_s / 2.0 / m))
    lo_k, hi_k = half, n - half  # the compensation is one-sided at the ends: left out
    data = series.water

    def resid(theta: list[float]) -> list[float]:
        pred = _predict(theta, series, known)
        return [pred[k] - data[k] for k in range(lo_k, hi_k)]

    lo = [math.log(1e3), 0.0, math.log(2.0), -50.0, -60.0]
    hi = [math.log(2e6), 200.0, math.log(5000.0), 150.0, 60.0]
    steps = [1e-4, 1e-3, 1e-4, 1e-4, 1e-4]
    out = _levenberg_marquardt(resid, theta0, steps, lo, hi)
    r = out.residuals
    npts = len(r)
    sse = sum(v * v for v in r)
    part = data[lo_k:hi_k]
    mean = sum(part) / npts
    sst = sum((v - mean) ** 2 for v in part)
    r2 = 1.0 - sse / sst if sst > 0 else 0.0
    rms = math.sqrt(sse / npts)
    # 1σ from the covariance, inflated for correlated residuals (lag-1 autocorrelation)
    rho = 0.0
    if npts > 2 and sse > 0:
        rho = sum(r[k] * r[k + 1] for k in range(npts - 1)) / sse
    rho = min(0.98, max(0.0, rho))
    inflate = math.sqrt((1.0 + rho) / (1.0 - rho))
    s2 = sse / max(1, npts - len(out.theta))
    if out.cov is not None:
        sig = [math.sqrt(max(0.0, out.cov[i][i] * s2)) * inflate for i in range(len(out.theta))]
    else:
        sig = [math.inf] * len(out.theta)
        warnings.append("the fit's covariance is singular: uncertainties unknown")
    ln_cw, ua, ln_tau = out.theta[0], out.theta[1], out.theta[2]
    cw = math.exp(ln_cw)
    tau = math.exp(ln_tau)
    h = known.cp / tau
    cw_est = Estimate(cw, cw * sig[0])
    tau_est = Estimate(tau, tau * sig[2])
    peak = max(series.water)
    start = series.water[0]
    if heated < 600.0:
        warnings.append(f"cushion {c} was heated only {heated:.0f} s")
    if abs(cool_at - known.room) < 2.0:
        warnings.append(f"cushion {c} cooled within {abs(cool_at - known.room):.1f} K of the "
                        "room: the loss to the room is poorly determined")
    for i, label in ((1, "loss to the room"), (2, "plate time constant")):
        if min(abs(out.theta[i] - lo[i]), abs(out.theta[i] - hi[i])) < 1e-9:
            warnings.append(f"cushion {c}: the {label} ended at the fit's bound")
    if r2 < 0.999 or rms > 0.05:
        warnings.append(f"cushion {c}: the model fits the record poorly "
                        f"(R² {r2:.5f}, rms {rms:.3f} °C)")
    return CushionFit(
        cushion=c, water_capacity_j_per_k=cw_est,
        water_kg=Estimate(cw / c_spec, cw_est.sigma / c_spec),
        loss_to_room_w_per_k=Estimate(ua, sig[1]),
        plate_time_constant_s=tau_est,
        plate_to_water_w_per_k=Estimate(h, h * sig[2]),
        r2=r2, residual_rms_c=rms, residual_max_c=max(abs(v) for v in r), points=npts,
        iterations=out.iterations, start_c=start, peak_c=peak, heated_s=heated,
        hold_rate_c_per_min=60.0 * hold_rate, heat_rate_c_per_min=60.0 * heat_rate,
        heat_rate_at_c=heat_at, cool_rate_c_per_min=60.0 * cool_rate, cool_rate_at_c=cool_at,
        warnings=tuple(warnings))


_KEYS = ("plant.water_kg", "plant.loss_to_room_w_per_k", "plant.plate_to_water_w_per_k",
         "control.kp_w_per_k", "control.ti_s")


def _get(cfg: Config, key: str) -> Any:
    sec, name = key.split(".")
    return getattr(getattr(cfg, sec), name)


def _result(fits: list[CushionFit], cfg: Config, room_c: float, settings: AutotuneSettings,
            duration_s: float) -> AutotuneResult:
    """Combine the cushions (the configuration has one plant for both) and tune."""
    warnings = [w for f in fits for w in f.warnings]
    problems: list[str] = []

    def mean(get: Callable[[CushionFit], Estimate]) -> float:
        return sum(get(f).value for f in fits) / len(fits)

    kg = mean(lambda f: f.water_kg)
    ua = mean(lambda f: f.loss_to_room_w_per_k)
    h = mean(lambda f: f.plate_to_water_w_per_k)
    if len(fits) == 2:
        for label, get in (("water", lambda f: f.water_kg),
                           ("loss to the room", lambda f: f.loss_to_room_w_per_k),
                           ("plate time constant", lambda f: f.plate_time_constant_s)):
            a, b = get(fits[0]).value, get(fits[1]).value
            if abs(a - b) > 0.15 * max(abs(a), abs(b), 1e-9):
                warnings.append(f"the cushions differ in {label} ({_g(a)} vs {_g(b)}); the "
                                "configuration holds one value for both: the mean is used")
    for f in fits:
        if f.r2 < 0.99:
            problems.append(f"cushion {f.cushion}: the fit is unusable (R² {f.r2:.4f})")
        if f.water_kg.relative > 0.2:
            problems.append(f"cushion {f.cushion}: the water capacity is undetermined "
                            f"({f.water_kg})")
    plant = cfg.plant
    cw = kg * plant.water_specific_heat_j_per_kg_k
    tau_p = plant.plate_heat_capacity_j_per_k / h if h > 0 else math.inf
    tau_cl = max(settings.closed_loop_tau_s,
                 settings.min_tau_factor * (tau_p + cfg.sensor.lag_s))
    kp = min(settings.kp_max_w_per_k, max(settings.kp_min_w_per_k, cw / tau_cl))
    ti = settings.ti_per_tau * tau_cl
    proposed = {
        "plant.water_kg": round(kg, 2),
        "plant.loss_to_room_w_per_k": round(ua, 2),
        "plant.plate_to_water_w_per_k": round(h, 1),
        "control.kp_w_per_k": float(round(kp)),
        "control.ti_s": float(round(ti / 10.0) * 10.0),
    }
    previous = {k: float(_get(cfg, k)) for k in _KEYS}
    try:
        _checked(cfg, proposed)
    except ConfigError as exc:
        problems.append(f"the identified values are outside the configuration's ranges: {exc}")
    return AutotuneResult(
        fits=tuple(fits), proposed=proposed, previous=previous, room_c=room_c,
        heater_w=plant.heater_w, plate_heat_capacity_j_per_k=plant.plate_heat_capacity_j_per_k,
        specific_heat_j_per_kg_k=plant.water_specific_heat_j_per_kg_k,
        coupling_w_per_k=plant.coupling_w_per_k, closed_loop_tau_s=tau_cl,
        duration_s=duration_s, warnings=tuple(warnings), problems=tuple(problems))


# --- applying and reporting ------------------------------------------------------------------


def _checked(cfg: Config, changes: dict[str, float]) -> Config:
    """``cfg`` with ``changes`` (dotted keys), checked as a loaded file would be."""
    data = dataclasses.asdict(cfg)
    for key, value in changes.items():
        sec, name = key.split(".")
        if sec not in data or name not in data[sec]:
            raise ConfigError(f"{key}: unknown key")
        data[sec][name] = value
    return from_mapping(data)


def apply_result(cfg: Config, result: AutotuneResult) -> Config:
    """A new configuration: ``cfg`` with the identified plant and the tuned gains
    (``result.proposed``); everything else unchanged.  Raises ``AutotuneError`` when the
    result has problems, ``ConfigError`` if a value is out of range."""
    if result.problems:
        raise AutotuneError("the result is not usable: " + "; ".join(result.problems))
    return _checked(cfg, result.proposed)


def write_config(path: str | os.PathLike[str], cfg: Config) -> Path | None:
    """Write ``cfg`` as TOML (``hydrotherm.config.to_toml``) to ``path``; an existing file
    is first copied to ``path.bak`` (replacing an older backup), and the new file is
    written to a temporary name and renamed, so a crash leaves either the old or the new
    file.  Returns the backup's path (None if there was no file).  Comments of the old
    file survive only in the backup."""
    p = Path(path)
    text = to_toml(cfg)
    from_mapping(tomllib.loads(text))  # never write what could not be loaded back
    backup = None
    if p.exists():
        backup = p.with_name(p.name + ".bak")
        backup.write_bytes(p.read_bytes())
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return backup


def format_report(result: AutotuneResult) -> str:
    """What was found, how well, on what assumptions, and what changes."""
    lines = [f"Autotune: {len(result.fits)} cushion(s) identified in "
             f"{_hms(result.duration_s)} of experiment."]
    for f in result.fits:
        lines += [
            f"cushion {f.cushion}: water {f.start_c:.2f} -> {f.peak_c:.2f} °C, heated "
            f"{f.heated_s / 60:.0f} min",
            f"  water           {f.water_kg.value:8.2f} ± {_g(f.water_kg.sigma)} kg "
            f"(C_w {f.water_capacity_j_per_k.value / 1000:.1f} kJ/K)",
            f"  loss to room    {f.loss_to_room_w_per_k.value:8.2f} ± "
            f"{_g(f.loss_to_room_w_per_k.sigma)} W/K",
            f"  plate time const{f.plate_time_constant_s.value:8.1f} ± "
            f"{_g(f.plate_time_constant_s.sigma)} s (plate-to-water "
            f"{f.plate_to_water_w_per_k.value:.1f} W/K)",
            f"  fit             R² {f.r2:.6f}, residual rms {f.residual_rms_c * 1000:.1f} mK, "
            f"max {f.residual_max_c * 1000:.1f} mK, {f.points} points, "
            f"{f.iterations} iterations",
            f"  rates           hold {f.hold_rate_c_per_min:+.4f} °C/min; heating "
            f"{f.heat_rate_c_per_min:+.4f} °C/min at {f.heat_rate_at_c:.2f} °C; cooling "
            f"{f.cool_rate_c_per_min:+.4f} °C/min at {f.cool_rate_at_c:.2f} °C",
        ]
    lines.append(f"Assumed (not identified): heater {result.heater_w:g} W, plate heat capacity "
                 f"{result.plate_heat_capacity_j_per_k:g} J/K, room {result.room_c:g} °C, "
                 f"coupling {result.coupling_w_per_k:g} W/K, specific heat "
                 f"{result.specific_heat_j_per_kg_k:g} J/(kg·K).  A heater power wrong by a "
                 "factor scales the water, loss and plate-to-water values by that factor "
                 "(the tuned law is unaffected); a room wrong by 1 K skews the loss.")
    lines.append(f"Tuning: closed-loop time constant {result.closed_loop_tau_s:.0f} s.")
    lines.append("Configuration:")
    for key, new in result.proposed.items():
        old = result.previous.get(key)
        lines.append(f"  {key:32s} {_g(old) if old is not None else '?':>9} -> {_g(new)}")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    for pr in result.problems:
        lines.append(f"NOT USABLE: {pr}")
    return "\n".join(lines)


# --- in-process (tests, ``hydrotherm autotune --sim``) ---------------------------------------


def autotune_in_process(cfg: Config, seed: int = 0,
                        progress: Callable[[str], None] | None = None, *,
                        sim_cfg: Config | None = None, cushions: Sequence[int] = (0, 1),
                        room_c: float | None = None, settings: AutotuneSettings | None = None,
                        step_s: float = 0.05) -> AutotuneResult:
    """Run the whole experiment on a simulated table in-process (``InProcessHarness`` +
    ``Controller`` on a ``SimClock``), as fast as the CPU allows.

    ``cfg`` is the configuration being tuned (what the controller and the tuner believe);
    ``sim_cfg`` is the simulated table's truth (default: ``cfg``).  ``progress`` receives
    the progress line whenever its phase or whole percent changes.  Raises
    ``AutotuneError`` if the experiment aborts."""
    from sim.harness import InProcessHarness

    from .service import Controller

    harness = InProcessHarness(sim_cfg or cfg, seed=seed, step_s=step_s)
    controller = Controller(cfg, harness.link, harness.clock)
    tuner = Autotuner(controller, cushions, room_c, settings)
    shown: tuple[str, int] | None = None
    while not tuner.done:
        harness.step()
        tuner.step()
        if progress is not None:
            key = (tuner.phase, int(tuner.percent))
            if key != shown:
                shown = key
                progress(tuner.progress)
    # let the board apply the 0 % and the open relay before leaving
    harness.run(1.0, each_step=tuner.step)
    if tuner.error is not None:
        raise AutotuneError(tuner.error)
    assert tuner.result is not None
    return tuner.result


# --- formatting helpers ------------------------------------------------------------------------


def _hms(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fmt_c(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} °C"


def _g(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.0f}"
