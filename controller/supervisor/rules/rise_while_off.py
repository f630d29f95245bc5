"""``rise_while_off`` (reference: "more than 0.5 °C in 5 min at 0 %", master relay open:
a welded relay).

While the board applies 0 % without a break, each sensor's latest 1 Hz mean minus its
lowest over the last ``rise_while_off_window_s`` of that off period; every sensor with
such history must exceed ``rise_while_off_c``.  The heater plate's stored heat (at most
~20 kJ into ~105 kJ/K of water, about 0.2 °C) stays well below the limit in a full cushion.
While a ``rise_too_fast`` trip of the cushion is latched, it may hold far less water, so
each sensor's rise is judged beyond the plate model's excess ``D`` at the moment of its
minimum (the water cannot get hotter than the plate was): the leftover heat of a leak trip
is not a welded relay.  (Known limits: a client lying on a cold, unheated cushion warms it
too; at 15 °C water and 10 W/K that approaches 0.5 °C.  A relay welding on a cushion
already tripped for a leak is seen only beyond that allowance, up to ~10 °C after full
power; ``over_temperature`` then opens the relay.  A stuck sensor could hide a welded
relay here; the other sensor then trips ``sensor_disagree``.)
"""

from __future__ import annotations

from ..events import Trip
from ..history import CushionState, fmt_rates
from ..latch import Latch
from .base import Cause, Rule, rate_cause


class RiseWhileOff(Rule):
    reasons = ("rise_while_off",)

    def on_second(self, c: int, cu: CushionState, now: float) -> None:
        if cu.off_empty:
            return
        st = self.st
        lost_water = ("rise_too_fast", c) in st.latches
        rises = []
        span = allow = 0.0
        for s, tr in enumerate(st.tracks[c]):
            if tr.offmin:
                t0, v0, plate_k = tr.offmin[0]
                a = plate_k if lost_water and plate_k > 0.0 else 0.0
                if cu.identifying and not lost_water:
                    a = self.cfg.identification_carry_scale * st.plate.carry_c(plate_k)
                rises.append((s, tr.last_v - v0 - a))
                span = max(span, tr.last_t - t0)
                allow = max(allow, a)
        lim = self.cfg.rise_while_off_c
        if rises and min(r for _, r in rises) > lim:
            why = (f", beyond the {allow:.2f} °C the plate's stored heat can explain"
                   if allow else "")
            st.trip("rise_while_off", c,
                    f"cushion {c} water rose more than {lim:g} °C within {span:.0f} s "
                    f"with the heater at 0 % ({fmt_rates(rises)} °C{why}; host commands "
                    f"{cu.commanded * 100:.0f} %): welded relay?", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every known sensor rate at most ``rise_while_off_c`` per
        ``rise_while_off_window_s`` (0.1 °C/min)."""
        c = latch.trip.cushion
        assert c is not None
        cfg = self.cfg
        return rate_cause(self.st, c, cfg.rise_while_off_c * 60.0 / cfg.rise_while_off_window_s)

    def after_reset(self, trip: Trip) -> None:
        c = trip.cushion
        assert c is not None
        for tr in self.st.tracks[c]:
            tr.offmin.clear()
        self.st.cushions[c].off_empty = True
