"""Closed-loop runs of a control law on the simulated plant, and the peers we compare with.

``closed_loop`` is the common test bench: the plant of ``sim/plant.py`` with its sensors
read as the board reads them (raw ADC counts every telemetry period, converted with the
same ``Thermistor`` the link uses), a control law asked for an output every control
period, and a per-second record of what really happened to the water (``Trace``).

A control law is any callable ``decide(cushion, t, measured_mean_c, applied) -> output``:
``measured_mean_c`` is the mean of the cushion's valid sensors at the latest board sample
(None when neither is valid), ``applied`` the fraction the heater actually got over the
last control period, and the result the fraction 0..1 to apply until the next call.

The laws, all on the same plant (``shared/reference.md``, "Peers the benchmarks run
against"):

* ``ours``: ``controller.control.CushionController``, one per cushion;
* ``thermostat_peer``: on/off with Home Assistant generic_thermostat's default tolerances;
* ``simple_pid_peer``: the ``simple-pid`` package, gains from a relay autotune and the
  Ziegler–Nichols rule, as Klipper's PID_CALIBRATE derives them (``relay_autotune``).

The physical limit (full power until the water reaches the setpoint) needs no loop:
``sim.plant.physical_minimum_warmup_s`` and ``physical_limit_curve``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from controller.control import CushionController
from firmware_bridge.thermistor import SensorStatus, Thermistor
from hydrotherm.config import CUSHIONS, Config
from sim.plant import Plant, physical_minimum_warmup_s, water_c_at

#: decide(cushion, t, measured_mean_c, applied_fraction) -> output fraction 0..1
Decide = Callable[[int, float, float | None, float], float]

#: The band the figures call "at the setpoint" (± °C), the figures' window for the
#: steady-state error, and the targets of the control-law issue.
BAND_C = 0.2
STEADY_WINDOW_S = 1800.0
TARGET_SETTLE_RATIO = 1.10
TARGET_OVERSHOOT_C = 0.2
TARGET_STEADY_ERROR_C = 0.1
TARGET_RECOVERY_S = 600.0

_JOULES_PER_WH = 3600.0
_RECORD_PERIOD_S = 1.0
_EPS_S = 1e-9


# --- the record of one run ---------------------------------------------------------------


@dataclass
class Trace:
    """What happened, once per second (index k is ``t_s[k]``); ``[cushion][k]`` lists."""

    setpoint_c: float
    room_c: float
    initial_c: float
    client_on_at_s: float | None
    t_s: list[float] = field(default_factory=list)
    water_c: list[list[float]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
    plate_c: list[list[float]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
    output: list[list[float]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
    energy_wh_at: list[float] = field(default_factory=list)  # cumulative, both heaters
    wall_s: float = 0.0

    # -- slicing helpers --

    def _cushions(self, cushion: int | None) -> range | tuple[int]:
        return range(CUSHIONS) if cushion is None else (cushion,)

    def _client_index(self) -> int:
        """Index of the first record at or after the client event (len if none)."""
        if self.client_on_at_s is None:
            return len(self.t_s)
        for k, t in enumerate(self.t_s):
            if t >= self.client_on_at_s - _EPS_S:
                return k
        return len(self.t_s)

    def _last_outside(self, water: list[float], lo: int, hi: int, band: float) -> int | None:
        """Index of the last record in [lo, hi) outside the band (None: never outside)."""
        sp = self.setpoint_c
        for k in range(hi - 1, lo - 1, -1):
            if abs(water[k] - sp) > band:
                return k
        return None

    # -- the figures --

    def settle_s(self, cushion: int | None = None, band: float = BAND_C,
                 min_hold_s: float = STEADY_WINDOW_S) -> float:
        """First time after which the water stays within ±band of the setpoint until the
        client event (or the end); the worse cushion when ``cushion`` is None.

        ``inf`` (never settled) if that stay lasts less than ``min_hold_s``: a law that
        keeps leaving the band (a thermostat's ±0.3 °C cycle) would otherwise "settle"
        at its last excursion, just before the client lies down."""
        end = self._client_index()
        if end == 0:
            return math.inf
        t_end = self.t_s[end - 1]
        worst = 0.0
        for i in self._cushions(cushion):
            k = self._last_outside(self.water_c[i], 0, end, band)
            if k is None:
                continue
            if k + 1 >= end or t_end - self.t_s[k + 1] < min_hold_s:
                return math.inf
            worst = max(worst, self.t_s[k + 1])
        return worst

    def overshoot_c(self, cushion: int | None = None) -> float:
        """Highest water temperature above the setpoint before the client event (0 if
        never above); the client's own disturbance is in ``client_*``."""
        end = self._client_index()
        top = max(max(self.water_c[i][:end], default=-math.inf)
                  for i in self._cushions(cushion))
        return max(0.0, top - self.setpoint_c)

    def _steady_slice(self, window_s: float) -> tuple[int, int]:
        end = self._client_index()
        t_end = self.t_s[end - 1] if end > 0 else 0.0
        start = end
        while start > 0 and self.t_s[start - 1] > t_end - window_s:
            start -= 1
        return start, end

    def steady_error_c(self, cushion: int | None = None,
                       window_s: float = STEADY_WINDOW_S) -> float:
        """Mean |water − setpoint| over the last ``window_s`` before the client event
        (the worse cushion when ``cushion`` is None)."""
        lo, hi = self._steady_slice(window_s)
        if hi <= lo:
            return math.nan
        return max(sum(abs(w - self.setpoint_c) for w in self.water_c[i][lo:hi]) / (hi - lo)
                   for i in self._cushions(cushion))

    def steady_max_error_c(self, cushion: int | None = None,
                           window_s: float = STEADY_WINDOW_S) -> float:
        """Largest |water − setpoint| over the same window as ``steady_error_c``."""
        lo, hi = self._steady_slice(window_s)
        if hi <= lo:
            return math.nan
        return max(abs(w - self.setpoint_c)
                   for i in self._cushions(cushion) for w in self.water_c[i][lo:hi])

    def client_recovery_s(self, cushion: int | None = None, band: float = BAND_C) -> float:
        """After the client lies down: time until the water is back within ±band and stays
        there to the end (0 if it never left; ``inf`` if outside at the end; NaN if there
        was no client event)."""
        if self.client_on_at_s is None:
            return math.nan
        lo = self._client_index()
        n = len(self.t_s)
        worst = 0.0
        for i in self._cushions(cushion):
            k = self._last_outside(self.water_c[i], lo, n, band)
            if k is None:
                continue
            if k + 1 >= n:
                return math.inf
            worst = max(worst, self.t_s[k + 1] - self.client_on_at_s)
        return worst

    def client_max_deviation_c(self, cushion: int | None = None) -> float:
        """Largest |water − setpoint| after the client lies down (NaN without a client)."""
        if self.client_on_at_s is None:
            return math.nan
        lo = self._client_index()
        return max((abs(w - self.setpoint_c)
                    for i in self._cushions(cushion) for w in self.water_c[i][lo:]),
                   default=math.nan)

    @property
    def energy_wh(self) -> float:
        """Heater energy of the whole run, both cushions."""
        return self.energy_wh_at[-1] if self.energy_wh_at else 0.0

    def output_range(self) -> tuple[float, float]:
        outs = [o for row in self.output for o in row]
        return min(outs), max(outs)

    def figures(self, physical_minimum_s: float | None = None) -> dict[str, float | None]:
        settle = self.settle_s()
        res: dict[str, float | None] = {
            "settle_s": settle,
            "overshoot_c": self.overshoot_c(),
            "steady_error_c": self.steady_error_c(),
            "steady_max_error_c": self.steady_max_error_c(),
            "client_recovery_s": self.client_recovery_s(),
            "client_max_deviation_c": self.client_max_deviation_c(),
            "energy_wh": self.energy_wh,
            "wall_s": self.wall_s,
        }
        if physical_minimum_s:
            res["settle_ratio"] = settle / physical_minimum_s
        return res


# --- scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One warm-up, hold and client run: the plant starts at rest at ``initial_c``."""

    name: str
    setpoint_c: float
    room_c: float
    initial_c: float
    client_on_at_s: float
    duration_s: float
    seed: int = 1

    def physical_minimum_s(self, cfg: Config) -> float:
        return physical_minimum_warmup_s(cfg.plant, self.initial_c, self.setpoint_c,
                                         self.room_c)


#: The reference run of the issue: 20 → 37 °C in a 21 °C room, the client at 3 h, 4.5 h.
REFERENCE = Scenario("reference", 37.0, 21.0, 20.0, 3 * 3600.0, 4.5 * 3600.0)


def scenario(cfg: Config, name: str, setpoint_c: float, room_c: float, initial_c: float,
             seed: int = 1, hold_s: float = 3600.0, after_client_s: float = 5400.0) -> Scenario:
    """A run long enough for the targets: the client lies down ``hold_s`` after the
    latest allowed settle time (``TARGET_SETTLE_RATIO`` × the physical minimum), on a
    whole minute but never before 3 h, and the run ends ``after_client_s`` later."""
    phys = physical_minimum_warmup_s(cfg.plant, initial_c, setpoint_c, room_c)
    client = max(REFERENCE.client_on_at_s,
                 math.ceil((TARGET_SETTLE_RATIO * phys + hold_s) / 60.0) * 60.0)
    return Scenario(name, setpoint_c, room_c, initial_c, client, client + after_client_s, seed)


def run_scenario(cfg: Config, sc: Scenario, decide: Decide,
                 control_period_s: float = 1.0) -> Trace:
    return closed_loop(cfg, decide, sc.duration_s, sc.setpoint_c, sc.room_c, sc.initial_c,
                       sc.seed, client_on_at_s=sc.client_on_at_s,
                       control_period_s=control_period_s)


# --- the bench ---------------------------------------------------------------------------


def closed_loop(cfg: Config, decide: Decide, duration_s: float, setpoint_c: float,
                room_c: float, initial_c: float, seed: int,
                client_on_at_s: float | None = None, control_period_s: float = 1.0) -> Trace:
    """Run ``decide`` on the plant for ``duration_s`` and record the truth every second.

    The plant is ``cfg.plant`` with its room set to ``room_c`` and both cushions (water and
    plate) at rest at ``initial_c``; the master relay stays closed.  Every board sample
    (``cfg.board.telemetry_period_s``) both sensors of each cushion are read as counts and
    converted; every ``control_period_s`` ``decide`` is asked, for each cushion in turn,
    with the latest sample's mean, and its output drives the heater until the next call.
    ``setpoint_c`` is what the figures measure against; the law knows its own setpoint.
    """
    wall0 = time.perf_counter()
    plant_cfg = replace(cfg.plant, room_c=room_c, initial_water_c=[initial_c] * CUSHIONS)
    plant = Plant(plant_cfg, cfg.sensor, random.Random(seed), cfg.true_plant)
    therm = Thermistor(cfg.sensor)
    heaters_w = [p.heater_w for p in plant.cushions]
    dt = cfg.board.telemetry_period_s
    trace = Trace(setpoint_c=setpoint_c, room_c=room_c, initial_c=initial_c,
                  client_on_at_s=client_on_at_s)

    drive = [0.0] * CUSHIONS
    measured: list[float | None] = [None] * CUSHIONS
    applied_sum = [0.0] * CUSHIONS
    applied_time = 0.0
    client_done = client_on_at_s is None
    next_control = 0.0
    next_record = 0.0
    steps = math.ceil(duration_s / dt - _EPS_S)

    sensor_counts = plant.sensor_counts
    convert = therm.read
    ok = SensorStatus.OK

    def read() -> None:
        for i in range(CUSHIONS):
            a = convert(sensor_counts(i, 0))
            b = convert(sensor_counts(i, 1))
            va = a.celsius if a.status is ok else None
            vb = b.celsius if b.status is ok else None
            if va is not None and vb is not None:
                measured[i] = 0.5 * (va + vb)
            else:
                measured[i] = va if va is not None else vb

    def record(t: float) -> None:
        trace.t_s.append(t)
        for i in range(CUSHIONS):
            trace.water_c[i].append(plant.water_c[i])
            trace.plate_c[i].append(plant.plate_c[i])
            trace.output[i].append(drive[i])
        trace.energy_wh_at.append(plant.energy().heater_in / _JOULES_PER_WH)

    read()
    for n in range(steps + 1):
        t = n * dt
        if not client_done and t >= client_on_at_s - _EPS_S:  # type: ignore[operator]
            for i in range(CUSHIONS):
                plant.set_client(i, True)
            client_done = True
        if t >= next_control - _EPS_S:
            for i in range(CUSHIONS):
                applied = applied_sum[i] / applied_time if applied_time > 0 else drive[i]
                out = float(decide(i, t, measured[i], applied))
                drive[i] = min(1.0, max(0.0, out))
            applied_sum = [0.0] * CUSHIONS
            applied_time = 0.0
            next_control += control_period_s
        if t >= next_record - _EPS_S:
            record(t)
            next_record += _RECORD_PERIOD_S
        if n == steps:
            break
        plant.step(dt, drive, True)
        for i in range(CUSHIONS):
            applied_sum[i] += (plant.power_w[i] / heaters_w[i] * dt if heaters_w[i] > 0
                               else 0.0)
        applied_time += dt
        read()
    trace.wall_s = time.perf_counter() - wall0
    return trace


def physical_limit_curve(cfg: Config, setpoint_c: float, room_c: float, initial_c: float,
                         t_s: list[float]) -> list[float]:
    """The physical limit as a curve: full power from rest until the water reaches the
    setpoint, then (ideally) held there.  Closed form, one cushion, coupling ignored."""
    plant = cfg.plant
    out = []
    reached = False
    for t in t_s:
        if not reached:
            w = water_c_at(plant, t, initial_c, initial_c, plant.heater_w, room_c)[1]
            reached = w >= setpoint_c
        out.append(setpoint_c if reached else w)
    return out


# --- the laws ----------------------------------------------------------------------------


class OurLaw:
    """``CushionController`` per cushion, heat on, the other cushion's latest measurement
    as ``other_c`` (for cushion 0 that is cushion 1's reading one control period old)."""

    def __init__(self, cfg: Config, setpoint_c: float | None = None) -> None:
        self.setpoints = ([setpoint_c] * CUSHIONS if setpoint_c is not None
                          else list(cfg.control.setpoint_c))
        self.laws = [CushionController(cfg.control, cfg.plant, cfg.sensor)
                     for _ in range(CUSHIONS)]
        self.last: list[float | None] = [None] * CUSHIONS

    def __call__(self, cushion: int, t: float, measured_c: float | None,
                 applied: float) -> float:
        self.last[cushion] = measured_c
        out = self.laws[cushion].step(t, measured_c, applied, self.setpoints[cushion], True,
                                      self.last[1 - cushion])
        return out.output


def ours(cfg: Config, setpoint_c: float | None = None) -> OurLaw:
    """Our model-based law (``controller/control.py``); the setpoint defaults to the
    configured one of each cushion."""
    return OurLaw(cfg, setpoint_c)


class Thermostat:
    """On/off: on at or below ``setpoint − cold``, off at or above ``setpoint + hot``, and
    a switch state held for at least ``min_cycle_s``.  No valid reading: off."""

    def __init__(self, setpoint_c: float, cold_tolerance_c: float = 0.3,
                 hot_tolerance_c: float = 0.3, min_cycle_s: float = 2.0) -> None:
        self.setpoint_c = setpoint_c
        self.cold = cold_tolerance_c
        self.hot = hot_tolerance_c
        self.min_cycle_s = min_cycle_s
        self.on = [False] * CUSHIONS
        self.switched_at = [-math.inf] * CUSHIONS

    def __call__(self, cushion: int, t: float, measured_c: float | None,
                 applied: float) -> float:
        on = self.on[cushion]
        if t - self.switched_at[cushion] >= self.min_cycle_s - _EPS_S:
            if measured_c is None:
                want = False
            elif on:
                want = measured_c < self.setpoint_c + self.hot
            else:
                want = measured_c <= self.setpoint_c - self.cold
            if want != on:
                self.on[cushion] = want
                self.switched_at[cushion] = t
        return 1.0 if self.on[cushion] else 0.0


def thermostat_peer(setpoint_c: float) -> Thermostat:
    """Home Assistant generic_thermostat defaults: cold and hot tolerance 0.3 °C; minimum
    cycle 2 s."""
    return Thermostat(setpoint_c)


# --- the textbook PID and its autotune ---------------------------------------------------


@dataclass(frozen=True)
class AutotuneResult:
    """A relay autotune and the Ziegler–Nichols gains derived from it (output in 0..1,
    temperatures in °C, times in s)."""

    relay_d: float  # half the relay's output swing
    amplitude_c: float  # half the measured peak-to-peak oscillation
    tu_s: float  # oscillation period
    ku: float  # ultimate gain, 4 d / (π a)
    kp: float
    ki: float
    kd: float
    cycles: int  # cycles averaged
    periods_s: tuple[float, ...] = ()  # each cycle's period
    swings_c: tuple[float, ...] = ()  # each cycle's peak-to-peak

    @property
    def ti_s(self) -> float:
        return self.kp / self.ki

    @property
    def td_s(self) -> float:
        return self.kd / self.kp


class _Relay:
    """Full power / off around the setpoint with a small hysteresis; records cushion 0's
    measurement at each call and the times it switched on and off."""

    def __init__(self, setpoint_c: float, hysteresis_c: float) -> None:
        self.sp = setpoint_c
        self.hyst = hysteresis_c
        self.on = [True] * CUSHIONS
        self.samples: list[tuple[float, float]] = []
        self.switches: list[tuple[float, bool]] = []  # cushion 0: (t, now on)

    def __call__(self, cushion: int, t: float, measured_c: float | None,
                 applied: float) -> float:
        if measured_c is None:
            self.on[cushion] = False
            return 0.0
        on = self.on[cushion]
        if on and measured_c >= self.sp + self.hyst:
            on = False
        elif not on and measured_c <= self.sp - self.hyst:
            on = True
        if cushion == 0:
            self.samples.append((t, measured_c))
            if on != self.on[0]:
                self.switches.append((t, on))
        self.on[cushion] = on
        return 1.0 if on else 0.0


def _smooth(values: list[float], half: int) -> list[float]:
    """Centred running mean over 2·half+1 samples (shorter at the ends)."""
    out = []
    n = len(values)
    for k in range(n):
        lo, hi = max(0, k - half), min(n, k + half + 1)
        out.append(sum(values[lo:hi]) / (hi - lo))
    return out


def relay_autotune(cfg: Config, setpoint_c: float, room_c: float | None = None,
                   initial_c: float | None = None, hysteresis_c: float = 0.1,
                   skip_cycles: int = 2, cycles: int = 4, seed: int = 7,
                   control_period_s: float = 1.0) -> AutotuneResult:
    """Relay autotune on the same plant model, then Ziegler–Nichols (classic PID).

    As Klipper's PID_CALIBRATE: the heater is driven full on below the setpoint and off
    above it (here with ±``hysteresis_c``), starting cold; the first ``skip_cycles``
    cycles are left to settle, then over ``cycles`` cycles the period ``Tu`` (on-switch to
    on-switch) and the amplitude ``a`` (half the peak-to-peak of the measured
    temperature, lightly smoothed against sensor noise) are averaged.  With the relay
    between 0 and 1 its amplitude is ``d = 0.5``, and the describing function gives
    ``Ku = 4 d / (π a)``.  Ziegler–Nichols: ``Kp = 0.6 Ku``, ``Ti = Tu / 2``,
    ``Td = Tu / 8``, so ``Ki = Kp / Ti`` and ``Kd = Kp · Td``.  (Klipper divides by the
    full peak-to-peak instead of half of it, which halves Ku; we use the textbook ``a``.)
    """
    room = cfg.plant.room_c if room_c is None else room_c
    start = cfg.plant.initial_water_c[0] if initial_c is None else initial_c
    relay = _Relay(setpoint_c, hysteresis_c)
    need = skip_cycles + cycles + 1
    # generous: the warm-up at full power, then a few cycles of a few minutes each
    duration = 4 * 3600.0
    closed_loop(cfg, relay, duration, setpoint_c, room, start, seed,
                control_period_s=control_period_s)
    ons = [t for t, on in relay.switches if on]
    if len(ons) < need:
        raise RuntimeError(f"relay autotune: only {len(ons)} cycles in {duration:.0f} s")
    ts = [t for t, _ in relay.samples]
    vs = _smooth([v for _, v in relay.samples], 2)
    periods = []
    swings = []
    for c in range(skip_cycles, skip_cycles + cycles):
        t0, t1 = ons[c], ons[c + 1]
        seg = [v for t, v in zip(ts, vs, strict=True) if t0 <= t < t1]
        periods.append(t1 - t0)
        swings.append(max(seg) - min(seg))
    tu = sum(periods) / len(periods)
    a = sum(swings) / len(swings) / 2.0
    d = 0.5
    ku = 4.0 * d / (math.pi * a)
    kp = 0.6 * ku
    ti = tu / 2.0
    td = tu / 8.0
    return AutotuneResult(relay_d=d, amplitude_c=a, tu_s=tu, ku=ku, kp=kp, ki=kp / ti,
                          kd=kp * td, cycles=cycles, periods_s=tuple(periods),
                          swings_c=tuple(swings))


_AUTOTUNES: dict[tuple[str, float], AutotuneResult] = {}


def autotune_for(cfg: Config, setpoint_c: float) -> AutotuneResult:
    """``relay_autotune`` with the configuration's room and start, memoised per process
    (keyed by the whole configuration and the setpoint)."""
    key = (repr(cfg), setpoint_c)
    if key not in _AUTOTUNES:
        _AUTOTUNES[key] = relay_autotune(cfg, setpoint_c)
    return _AUTOTUNES[key]


class SimplePidLaw:
    """One ``simple_pid.PID`` per cushion, fed the measured temperature at the control
    period (derivative on measurement, the package's default); no reading: output 0.

    ``input_filter_s`` > 0 first passes the measurement through a first-order low-pass
    of that time constant (not part of the textbook peer: a variant showing what the
    derivative term does once it is not fed raw sensor noise)."""

    def __init__(self, setpoint_c: float, kp: float, ki: float, kd: float,
                 sample_time_s: float, input_filter_s: float = 0.0) -> None:
        from simple_pid import PID  # a test/benchmark dependency only

        self.sample_time_s = sample_time_s
        self.input_filter_s = input_filter_s
        self.pids = [PID(kp, ki, kd, setpoint=setpoint_c, sample_time=sample_time_s,
                         output_limits=(0.0, 1.0)) for _ in range(CUSHIONS)]
        self.last_t: list[float | None] = [None] * CUSHIONS
        self.filtered: list[float | None] = [None] * CUSHIONS

    def __call__(self, cushion: int, t: float, measured_c: float | None,
                 applied: float) -> float:
        last = self.last_t[cushion]
        self.last_t[cushion] = t
        if measured_c is None:
            self.filtered[cushion] = None
            return 0.0
        dt = self.sample_time_s if last is None else max(t - last, self.sample_time_s)
        value = measured_c
        if self.input_filter_s > 0.0:
            prev = self.filtered[cushion]
            if prev is not None:
                value = prev + (measured_c - prev) * -math.expm1(-dt / self.input_filter_s)
            self.filtered[cushion] = value
        out = self.pids[cushion](value, dt=dt)
        return 0.0 if out is None else float(out)


def simple_pid_peer(cfg: Config, setpoint_c: float, tune: AutotuneResult | None = None,
                    control_period_s: float = 1.0,
                    input_filter_s: float = 0.0) -> SimplePidLaw:
    """The textbook PID: ``simple-pid``, output limits (0, 1), Ziegler–Nichols gains from
    a relay autotune on the same plant (``autotune_for`` unless ``tune`` is given),
    sample time = the control period, fed the raw measured mean (``input_filter_s`` = 0)."""
    if tune is None:
        tune = autotune_for(cfg, setpoint_c)
    return SimplePidLaw(setpoint_c, tune.kp, tune.ki, tune.kd, control_period_s,
                        input_filter_s)
