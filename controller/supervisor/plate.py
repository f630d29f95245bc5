"""The plate model: how fast the water of a full cushion can rise for the heat that goes in.

Used by ``rules/rise_too_fast.py`` (a leak) and ``rules/rise_while_off.py`` (after one).

The plate model (``rise_too_fast`` for a leak; ``rise_while_off`` after one)
-------------------------------------------------------------------------------
A cushion that loses water heats faster for the same heat: at full power the water of a
full cushion rises ~0.15 °C/min, and the absolute 1.0 °C/min is reached only with ~4 kg
left.  By then the plate holds ~20 kJ above the water (2 kJ/K, ~10 K), which lifts what is
left, and the bag once it has drained, above 41 °C.  So the supervisor also judges the rate
against the heat that goes in, from the configuration's physics (``PlantConfig``: water,
specific heat, heater, plate capacity ``C_p``, plate-to-water conductance ``h``, loss
``UA``; the room estimate ``control.room_estimate_c``).  Nothing of the control law is used.

* **Plate**: per cushion, the plate's excess over the water, ``D``, is integrated from the
  output the board *reports it applied* (each report's value held until the next), once a
  second, exactly for the mean power ``P`` of that second: ``D`` relaxes towards ``P / h``
  with the time constant ``C_p / h`` (67 s), the update ``controller/control.py`` makes
  for ``T_p - T_w``.  At the first report it starts settled at the reported output.
* **Explained rate**: ``(h·D - UA·(T_w - T_room)) / C_w``, with ``C_w`` the heat capacity
  of the configured (full) cushion and ``T_w`` the sensors' 1 Hz mean.  The rate the rule
  grants is the highest of these over ``rise_too_fast_model_lookback_s`` (60 s): the
  measured rate (a 30 s slope behind a 10 s lag) shows what the water did 10-40 s ago, so
  a falling power must not lower the limit before the measurement can follow.
* **Limit**: ``rise_too_fast_model_ratio`` (1.5) × the explained rate (at least 0) +
  ``rise_too_fast_model_margin_c_per_min`` (0.1 °C/min), and never below
  ``rise_too_fast_model_floor`` (1.25) × the full heater's rate into a full cushion
  (``heater_w / C_w`` = 0.172 °C/min, so 0.215 °C/min).  At full power that is
  ~0.32 °C/min, 2.2 × the water's normal rate: the cushion holds less than ~45 % of its
  water.  Every sensor whose rate is known must be above the limit without a break for
  ``rise_too_fast_model_confirm_s`` (5 s); then ``rise_too_fast`` trips (that cushion
  off), its detail saying "faster than the model allows: leaking or empty cushion?".
* **What it must not take for a leak** (numbers at the defaults): a client (3-10 W/K
  towards 35.5 °C: at most ~0.03 °C/min on water above 30 °C, 0.12 °C/min on 15 °C
  water); a room 6 K off its estimate (UA × 6 K: 0.01-0.02 °C/min); the other cushion
  (~1 W/K: at most ~0.015 °C/min); a heater 20 % above its rating or a cushion filled 30 %
  short (proportional: the ratio, 1.5, and the margin); sensor noise (0.03 °C rms per
  report; the slope's is ~0.02 °C/min, a fifth of the margin); power steps either way
  (the model follows the power with the plate's own time constant, and the lookback
  covers the measurement's delay); setpoint changes and heat on/off (power steps to the
  model).  The floor is for the two things that heat the water while the board reports
  0 %: a welded relay (at most the full heater, ~0.15 °C/min on a full cushion, which
  ``rise_while_off`` must catch and answer by opening the master relay) and a plate that
  was hot before the supervisor started (a host restart: at most the same, decaying).
* **What it cannot do**: detection comes ~30 s after the water's rate crosses the limit,
  and a leak that drains the cushion within a few minutes while the plate is hot outruns
  it: an empty bag settles near the plate's temperature, and that heat is in the plate
  before the leak begins.  On the simulated plant, warming to 40 °C with the control law
  (96 states each: water 30-39.5 °C, leak after 1-25 min, rooms of 15, 21 and 28 °C):
  at 5 kg/min (a full cushion gone in 5 min) the water never passed 40.4 °C; at 7 kg/min
  it passed 41 °C in 6 states (up to 41.8 °C); at 10 kg/min whenever the leak began with
  the water above ~36.5 °C at full power, at 20 kg/min above ~33.5 °C (the plate then
  above ~43 °C).
* **After a ``rise_too_fast`` trip** the cushion holds an unknown amount of water, and
  the plate's leftover heat can lift it by up to ``D`` (the water cannot get hotter than
  the plate): while that trip is latched, ``rise_while_off`` subtracts the ``D`` of the
  moment its off-period minimum was read, so the leftover heat is not taken for a welded
  relay.  On a cushion without that trip nothing is subtracted (the plate's heat moves a
  full cushion by at most ~0.2 °C): welded-relay detection is exactly as before.
"""

from __future__ import annotations

import math

from hydrotherm.config import PlantConfig, SafetyConfig

from .history import CushionState


class PlateModel:
    """Per cushion, ``C_w dT/dt = h (T_p - T_w) - UA (T_w - T_room)``, from the
    configuration's physics (``plant``) and room estimate; nothing of the control law."""

    __slots__ = ("cfg", "cw", "cp", "h", "ua", "room_c", "tau_p", "full_k", "floor")

    def __init__(self, cfg: SafetyConfig, plant: PlantConfig, room_estimate_c: float) -> None:
        self.cfg = cfg
        self.cw = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        self.h = plant.plate_to_water_w_per_k
        self.cp = plant.plate_heat_capacity_j_per_k
        self.ua = plant.loss_to_room_w_per_k
        self.room_c = room_estimate_c
        self.tau_p = plant.plate_heat_capacity_j_per_k / self.h
        self.full_k = plant.heater_w / self.h  # plate excess at full power, settled
        #: the model rule's lowest limit: a multiple of the full heater's rate into a full
        #: cushion, °C/min
        self.floor = cfg.rise_too_fast_model_floor * plant.heater_w / self.cw * 60.0

    def update(self, cu: CushionState) -> float:
        """Advance the plate model over the reports of the second just closed: the plate's
        excess over the water relaxes exactly (first order, ``C_p / h``) towards
        ``P / h`` for the mean applied power ``P``; returns the excess, K."""
        span = cu.span_s
        if span > 0.0:
            target = cu.heat_s / span * self.full_k
            cu.plate_k = target + (cu.plate_k - target) * math.exp(-span / self.tau_p)
            cu.heat_s = cu.span_s = 0.0
        return cu.plate_k

    def water_rate(self, plate_k: float, water_c: float) -> float:
        """The water's rate (°C/s) the model explains for a plate excess and a water
        temperature."""
        return (self.h * plate_k - self.ua * (water_c - self.room_c)) / self.cw

    def limit(self, cu: CushionState) -> tuple[float, float] | None:
        """(the rate the plate model explains, the model rule's limit), °C/min, or None
        before the model has seen a reading.  The explained rate is the highest the model
        gave over ``rise_too_fast_model_lookback_s``; the limit is
        ``rise_too_fast_model_ratio`` times it (at least 0) plus
        ``rise_too_fast_model_margin_c_per_min``, and at least ``rise_too_fast_model_floor``
        times the full heater's rate into a full cushion."""
        if not cu.model:
            return None
        cfg = self.cfg
        explained = cu.model[0][1] * 60.0
        lim = (cfg.rise_too_fast_model_ratio * max(explained, 0.0)
               + cfg.rise_too_fast_model_margin_c_per_min)
        lim = max(lim, self.floor)
        if cu.identifying:
            lim *= cfg.identification_rate_scale  # see identification.py
        return explained, lim

    def carry_c(self, plate_k: float) -> float:
        """How far the plate's excess ``plate_k`` can lift the water of the configured
        cushion once the heater is off (the heat ``C_p·D`` shared with ``C_w + C_p``)."""
        return max(0.0, plate_k) * self.cp / (self.cw + self.cp)
