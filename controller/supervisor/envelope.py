"""The plausible envelope: what *any* real table in the plausible range can do.

Real tables are not the model: water 15-35 kg per cushion, heater 240-360 W, plate
coupling 21-39 W/K, loss 2-6 W/K, room 12-30 °C, sensor lag 5-20 s, a client of 0-10 W/K,
the other cushion through up to 2 W/K (``PlausibleConfig``, reference.md "Real tables
differ").  The rate rules used to judge the water against the *model's* cushion (25 kg,
300 W), and tripped falsely on light cushions with strong heaters (``rise_too_fast``) and
on heavy cushions with weak heaters in a cold room (``no_rise``).  They now judge against
the whole range, per cushion, once a second:

* **the plate** (the heater's heat reaches the water through a plate of capacity
  ``C_p``): the fraction of the heater's power reaching the water follows the applied
  output through a first-order lag ``C_p / h``, 51-95 s over the range.  Two filters run,
  the fastest and the slowest (``q_fast``, ``q_slow``); their maximum bounds the heat
  flowing in from above and their minimum from below, for any coupling in the range.
* **the fastest plausible rate** ``r_hi`` of the water (°C/s): the strongest heater into
  the lightest cushion, plus every gain the surroundings can give (a client of 10 W/K
  towards 35.5 °C, a 30 °C room through 6 W/K, the other cushion through 2 W/K), less the
  least loss (2 W/K to a 30 °C room).  ``rise_too_fast`` trips beyond ``ratio × r_hi +
  margin`` where ``r_hi`` assumes the heater at *full* power: a welded relay heats at full
  power whatever the board reports, and must be left to ``rise_while_off`` (which opens
  the master relay), not taken for a leak.
* **the slowest plausible rate** ``r_lo`` with a *working* heater at the applied output:
  the weakest heater into the heaviest cushion, less every loss (6 W/K to a 12 °C room, a
  client of 10 W/K above 35.5 °C, the other cushion).  ``no_rise`` trips when the water
  rose less over its window than ``r_lo`` summed over it (less a margin): a working heater
  on *any* plausible table would have done better.
* **the stored heat** a plate can still give after the heater stops: at most
  ``C_p · P_max · q_hi / h_min`` joules (the weakest coupling holds the most), 0.55 °C in
  the lightest cushion after full power.  ``rise_while_off`` allows it, and the
  surroundings' gains since the off-period's minimum (``gain_k``, a running integral of
  the largest gain into the lightest cushion).

Everything here is arithmetic on a few floats per cushion per second: the per-report hot
path only accumulates the applied output.
"""

from __future__ import annotations

import math

from hydrotherm.config import PlantConfig, PlausibleConfig, SafetyConfig

from .history import CushionState


class Envelope:
    """The plausible range as the rules use it; state lives in ``CushionState``."""

    __slots__ = ("cfg", "cp", "c", "cw_min", "cw_max", "p_min", "p_max", "h_min", "tau_fast",
                 "tau_slow", "ua_min", "ua_max", "room_min", "room_max", "g_max", "k_max",
                 "neutral_c", "lag_max_s", "full_rate_hi")

    def __init__(self, cfg: SafetyConfig, plant: PlantConfig, plausible: PlausibleConfig) -> None:
        self.cfg = cfg
        self.cp = plant.plate_heat_capacity_j_per_k
        self.c = plant.water_specific_heat_j_per_kg_k
        self.cw_min = plausible.water_kg[0] * self.c
        self.cw_max = plausible.water_kg[1] * self.c
        self.p_min, self.p_max = plausible.heater_w
        h_min, h_max = plausible.plate_to_water_w_per_k
        self.h_min = h_min
        self.tau_fast = self.cp / h_max
        self.tau_slow = self.cp / h_min
        self.ua_min, self.ua_max = plausible.loss_to_room_w_per_k
        self.room_min, self.room_max = plausible.room_c
        self.g_max = plausible.client_w_per_k[1]
        self.k_max = plausible.coupling_w_per_k[1]
        self.neutral_c = plant.client_neutral_c
        self.lag_max_s = plausible.sensor_lag_s[1]
        #: the strongest heater into the lightest cushion, °C/s
        self.full_rate_hi = self.p_max / self.cw_min

    # --- per second ------------------------------------------------------------------------

    def update(self, cu: CushionState) -> None:
        """Advance both plate filters over the reports of the second just closed, exactly
        (first order) for the mean applied output of that second."""
        span = cu.span_s
        if span > 0.0:
            u = cu.u = cu.heat_s / span
            cu.q_fast = u + (cu.q_fast - u) * math.exp(-span / self.tau_fast)
            cu.q_slow = u + (cu.q_slow - u) * math.exp(-span / self.tau_slow)
            cu.heat_s = cu.span_s = 0.0

    def gain_hi(self, water_c: float, other_c: float | None) -> float:
        """The most heat (W) the surroundings can give the water, at least the least they
        take (negative): room, client, other cushion."""
        room = self.room_max - water_c
        w = (self.ua_max if room > 0.0 else self.ua_min) * room
        client = self.neutral_c - water_c
        if client > 0.0:
            w += self.g_max * client
        if other_c is not None and other_c > water_c:
            w += self.k_max * (other_c - water_c)
        return w

    def loss_hi(self, water_c: float, other_c: float | None) -> float:
        """The most heat (W) the surroundings can take from the water (negative: the
        least they give)."""
        room = water_c - self.room_min
        w = (self.ua_max if room > 0.0 else self.ua_min) * room
        client = water_c - self.neutral_c
        if client > 0.0:
            w += self.g_max * client
        if other_c is not None and other_c < water_c:
            w += self.k_max * (water_c - other_c)
        return w

    def rate_hi(self, water_c: float, other_c: float | None) -> float:
        """The fastest plausible rate (°C/s) of a full cushion, heater at full power."""
        w = self.p_max + self.gain_hi(water_c, other_c)
        return w / self.cw_min if w > 0.0 else w / self.cw_max

    def rate_lo(self, cu: CushionState, water_c: float, other_c: float | None) -> float:
        """The slowest plausible rate (°C/s) with a working heater at the output applied
        (the slower plate filter: the least heat that can have arrived)."""
        w = self.p_min * min(cu.q_fast, cu.q_slow) - self.loss_hi(water_c, other_c)
        return w / self.cw_max if w > 0.0 else w / self.cw_min

    def stored_k(self, cu: CushionState, leaked: bool) -> float:
        """The most the plate's stored heat can still lift the water (K): into the lightest
        full cushion, or, after a leak trip (any water left), up to the plate's own excess
        (the water cannot get hotter than the plate)."""
        excess = self.p_max * max(cu.q_fast, cu.q_slow) / self.h_min
        return excess if leaked else self.cp * excess / self.cw_min

    def limit_c_per_min(self, water_c: float, other_c: float | None) -> float:
        """``rise_too_fast``'s plausible limit, °C/min."""
        cfg = self.cfg
        return (cfg.rise_too_fast_model_ratio * max(self.rate_hi(water_c, other_c), 0.0) * 60.0
                + cfg.rise_too_fast_model_margin_c_per_min)
