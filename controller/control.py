"""The control law of one cushion: model-based, close to the physical limit.

Why not a textbook PID: the cushion is a second-order plant (heater plate, then water)
seen through a sensor with a 10 s lag.  At full power the plate runs about 10 K above the
water and holds about 20 kJ; switching off when the water *reads* the setpoint lets that
heat (and the sensor lag) carry the water ~0.2 K past it.  A PID tuned to avoid that
arrives slowly.

What this law does instead, every control period:

1. **Water estimate**: the mean of the valid sensors, corrected for the sensor's
   first-order lag (``T_w ≈ T_s + τ·dT_s/dt``, the slope from a least-squares fit over
   ``slope_window_s``, which averages the 0.03 °C noise away).
2. **Plate estimate**: the plate has no sensor, so its temperature is integrated from
   the model with the power the board *actually applied* (telemetry), anchored to the
   water estimate: ``C_p dT_p/dt = P − h (T_p − T_w)``.
3. **Stored-energy temperature**: ``T_e = T_w + C_p (T_p − T_w − P_hold/h) / C_w`` — the
   water temperature the cushion will settle at if the heater goes to the holding power
   now.  ``C_w T_e`` is, up to a constant, the total heat in water + plate, so it responds
   to heater power as a pure integrator with no lag: a proportional law on it gives a
   first-order approach with no overshoot, at any gain the sampling allows.
4. **Power** = feed-forward of the losses at the setpoint (``UA (T_sp − T_room)`` plus the
   coupling to the other cushion; ``T_room`` measured by the board's room sensor where it
   has one, ``controller/room.py``) + ``kp·(T_sp − T_e)`` + an integral correction for what
   the model does not know (a client, a wrong room estimate, a weaker heater).  The
   integral runs only within ``integral_band_c`` of the setpoint and not while the output
   is saturated in the direction of the error (conditional integration), and is frozen
   while heat is off or the cushion is tripped.

Result on the reference plant: full power until the stored heat is exactly enough, then a
smooth hand-over to the holding power (see ``benchmarks/control.py``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from hydrotherm.config import ControlConfig, PlantConfig, SensorConfig

from .warmup import WarmupEstimator, WarmupPrior

#: "ready": the water within this of the setpoint (the figures' band, benchmarks/peers.py)
READY_BAND_C = 0.2


@dataclass(frozen=True, slots=True)
class ControlOutput:
    """One cycle's decision and the estimates behind it (for logs and MQTT)."""

    output: float  # fraction 0..1 requested
    water_c: float | None  # lag-compensated water estimate
    plate_c: float | None
    energy_c: float | None  # stored-energy temperature T_e
    integral_w: float
    ready_in_s: float | None  # warm-up estimate; 0 when ready, None when unknown


class SlopeEstimator:
    """Least-squares slope of (t, value) over a sliding time window, O(1) per sample."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._pts: deque[tuple[float, float]] = deque()
        self._n = 0
        self._st = self._sv = self._stt = self._stv = 0.0
        self._t0: float | None = None  # times relative to this, for conditioning

    def clear(self) -> None:
        self._pts.clear()
        self._n = 0
        self._st = self._sv = self._stt = self._stv = 0.0
        self._t0 = None

    def add(self, t: float, v: float) -> None:
        if self._t0 is None:
            self._t0 = t
        x = t - self._t0
        self._pts.append((x, v))
        self._n += 1
        self._st += x
        self._sv += v
        self._stt += x * x
        self._stv += x * v
        limit = x - self.window_s
        while self._pts and self._pts[0][0] < limit:
            ox, ov = self._pts.popleft()
            self._n -= 1
            self._st -= ox
            self._sv -= ov
            self._stt -= ox * ox
            self._stv -= ox * ov

    @property
    def slope(self) -> float:
        n = self._n
        if n < 3:
            return 0.0
        den = n * self._stt - self._st * self._st
        if den <= 1e-12:
            return 0.0
        return (n * self._stv - self._st * self._sv) / den

    @property
    def span_s(self) -> float:
        return self._pts[-1][0] - self._pts[0][0] if self._n >= 2 else 0.0


class CushionController:
    """The law above for one cushion.  Pure computation: no I/O, no clock of its own."""

    def __init__(self, control: ControlConfig, plant: PlantConfig, sensor: SensorConfig,
                 room_c: float | None = None) -> None:
        """``room_c``: the room to start from (None: ``control.room_estimate_c``); the
        controller passes the measured room with ``set_room`` (``controller/room.py``)."""
        self.cfg = control
        #: the room the feed-forward and the warm-up prior use (``set_room``)
        self.room_c = float(control.room_estimate_c if room_c is None else room_c)
        self.c_w = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        self.c_p = plant.plate_heat_capacity_j_per_k
        self.h = plant.plate_to_water_w_per_k
        self.ua = plant.loss_to_room_w_per_k
        self.k_couple = plant.coupling_w_per_k
        self.p_max = plant.heater_w
        self.lag_s = sensor.lag_s
        self.slope = SlopeEstimator(control.slope_window_s)
        # the warm-up estimate learns the table's full-power rise (controller/warmup.py);
        # it waits for the plate to settle after the power went full: three model plate
        # time constants but at least 5 min (three of a plate coupled a third weaker than
        # the nominal model, as a real one may be) and twice the model's sensor lag
        self._warmup_settle_s = (max(3.0 * self.c_p / self.h, 300.0) + 2.0 * sensor.lag_s
                                 + control.slope_window_s / 2)
        self.warmup = self._new_warmup(self.room_c)
        self.plate_c: float | None = None
        self.integral_w = 0.0
        self._last_t: float | None = None

    def _new_warmup(self, room_c: float) -> WarmupEstimator:
        self._warmup_room_c = room_c
        return WarmupEstimator(
            WarmupPrior.from_model(self.p_max, self.c_w + self.c_p, self.ua, room_c),
            settle_s=self._warmup_settle_s)

    def set_room(self, room_c: float) -> None:
        """The room in use from now on (the measured one, or the configured fallback).
        The feed-forward follows at once; the warm-up prior only while it has learnt
        nothing yet (afterwards the observed rise already holds the room's effect)."""
        self.room_c = float(room_c)
        if self.warmup.samples == 0 and abs(room_c - self._warmup_room_c) > 0.1:
            self.warmup = self._new_warmup(self.room_c)

    def reset_estimates(self) -> None:
        """Forget the sensor history (after a link loss); the integral is kept."""
        self.slope.clear()
        self.plate_c = None
        self._last_t = None

    def holding_power(self, setpoint_c: float, other_c: float | None) -> float:
        p = self.ua * (setpoint_c - self.room_c)
        if other_c is not None:
            p += self.k_couple * (setpoint_c - other_c)
        return p

    def step(self, now: float, measured_c: float | None, applied: float, setpoint_c: float,
             enabled: bool, other_c: float | None = None) -> ControlOutput:
        """One control cycle.

        ``measured_c``: mean of the valid sensors (None: no valid reading → 0 %).
        ``applied``: the output fraction the board reports it applied since the last cycle.
        ``enabled``: heat on and the supervisor permits this cushion; when False the
        output is 0 and the integral is frozen.
        """
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        if measured_c is None:
            self.reset_estimates()
            return ControlOutput(0.0, None, None, None, self.integral_w, None)
        self.slope.add(now, measured_c)
        # Until the window is half full, a slope from a few noisy points times the 10 s lag
        # would add more noise than the lag it corrects: use the raw mean meanwhile.
        slope = self.slope.slope if self.slope.span_s >= self.slope.window_s / 2 else 0.0
        water = measured_c + self.lag_s * slope
        # plate model, anchored to the water estimate
        if self.plate_c is None:
            self.plate_c = water + applied * self.p_max / self.h
        elif dt > 0:
            # exact for the held power over dt (first order towards water + P/h)
            target = water + applied * self.p_max / self.h
            a = math.exp(-dt * self.h / self.c_p)
            self.plate_c = target + (self.plate_c - target) * a
        p_hold = max(0.0, self.holding_power(setpoint_c, other_c))
        energy_c = water + self.c_p * (self.plate_c - water - p_hold / self.h) / self.c_w
        error_e = setpoint_c - energy_c
        self.warmup.add(now, water, applied)
        ready = self._ready_in(water, energy_c, setpoint_c, p_hold)
        if not enabled:
            return ControlOutput(0.0, water, self.plate_c, energy_c, self.integral_w, ready)
        p_ff = self.holding_power(setpoint_c, other_c)
        raw = p_ff + self.cfg.kp_w_per_k * error_e + self.integral_w
        power = min(self.p_max, max(0.0, raw))
        # conditional integration on the water error
        error_w = setpoint_c - water
        if dt > 0 and abs(error_w) < self.cfg.integral_band_c:
            saturated_up = raw >= self.p_max and error_w > 0
            saturated_down = raw <= 0.0 and error_w < 0
            if not (saturated_up or saturated_down):
                ki = self.cfg.kp_w_per_k / self.cfg.ti_s
                lim = self.cfg.integral_limit_w
                self.integral_w = min(lim, max(-lim, self.integral_w + ki * error_w * dt))
        return ControlOutput(power / self.p_max if self.p_max > 0 else 0.0, water,
                             self.plate_c, energy_c, self.integral_w, ready)

    def _ready_in(self, water: float, energy_c: float, setpoint_c: float,
                  p_hold: float) -> float:
        """Seconds until the water is within the ready band: 0 when already there; inf
        when the heater cannot get there.  Three parts, each for what this law does:

        * the plate still charging (from cold): the water starts rising at the settled
          rate only once the plate holds its full-power excess, ``C_p·(T_w + P/h − T_p)/P``
          seconds of full power from now;
        * full power until the stored-energy temperature is ``e = (P − P_hold)/kp`` below
          the setpoint (where the law leaves saturation) — for the water, ``e`` plus the
          plate's excess over holding ``C_p·(P − P_hold)/(h·C_w)`` below it — at the
          rise the table has shown (``controller/warmup.py``);
        * then the law's first-order approach with ``τ_cl = C_w/kp``: the plate, emptying
          its excess with ``τ_p = C_p/h`` as the power falls, keeps the water's error at
          about ``g = τ_cl/(τ_cl − τ_p)`` times the energy error, so the tail is
          ``τ_cl·ln(g·e/band)`` (once handing over, ``τ_cl·ln((T_sp − T_w)/band)``).
        """
        band = READY_BAND_C
        if abs(setpoint_c - water) <= band:
            return 0.0
        deficit_k = setpoint_c - energy_c
        if deficit_k <= 0:
            return 0.0
        p = self.p_max
        kp = self.cfg.kp_w_per_k
        # the approach runs in the model's watts: on a table that heats faster or slower
        # than the model at full power, its time constant scales accordingly
        tau_cl = self.c_w / kp / self.warmup.heating_rate_ratio(self.room_c)
        p_hold = min(max(p_hold, 0.0), p)
        e = max((p - p_hold) / kp, band)
        # where the proportional action alone would settle: below the setpoint by the
        # holding power the table needs (as learnt) beyond the law's feed-forward, over kp
        # (the integral closes the rest, slowly: floor the remaining gap at band/5)
        need = self.warmup.holding_fraction(setpoint_c, self.room_c)
        off = 0.0 if need is None else (need * p - p_hold) / kp
        gap = max(band - off, 0.2 * band)
        if deficit_k <= e:  # already handing over: the approach only
            return tau_cl * math.log(max(setpoint_c - water - off, gap) / gap)
        tau_p = self.c_p / self.h
        g = min(3.0, tau_cl / (tau_cl - tau_p)) if tau_cl > 1.5 * tau_p else 3.0
        carry = self.c_p * (p - p_hold) / (self.h * self.c_w)
        plate = self.plate_c if self.plate_c is not None else water
        charge = self.c_p * max(0.0, water + p / self.h - plate) / p if p > 0 else 0.0
        full = self.warmup.remaining_s(water, setpoint_c - e - carry)
        return charge + full + tau_cl * math.log(max(g * e - off, gap) / gap)
